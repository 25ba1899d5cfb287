"""sqlfluff lint of migration files, as findings of family ``lint``.

sqlfluff runs in-process (``sqlfluff.core.Linter`` + ``FluffConfig``, never the CLI) with the
postgres dialect.  Its configuration is schemagate's defaults (``sqlfluff_defaults.cfg``: rules
that find bugs, no layout/capitalisation noise -- the file says how to turn more on), overlaid by
the project's own sqlfluff configuration (``.sqlfluff``, ``[tool.sqlfluff]`` in pyproject.toml,
setup.cfg, tox.ini) found in each directory from the project root down to the migration's
directory.  The user's home directory is deliberately not read: CI and a laptop must agree.

Results are cached by file checksum + sqlfluff version + configuration (``lint_cache``), and
computing the cache key does not import sqlfluff, so a run where every file is cached never pays
for sqlfluff at all.  Files that are not cached are linted in worker processes when there are enough
of them to pay for the workers (sqlfluff is pure Python and single-threaded).

``[tool.schemagate.lint]`` keys read here::

    enabled = true             # false (or `validate --no-lint`) skips sqlfluff
    severity = "warning"       # severity of lint findings ("error" makes them block the bundle)
    cache = true               # false: lint every file every run
    cache_dir = ".schemagate/cache/lint"   # relative to the project root
    processes = 0              # 0: automatic; 1: never start workers; N: at most N workers
    report_unparsable = false  # also report sqlfluff's own parse errors (pglast is the authority)
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata, resources
from multiprocessing.connection import Connection
from multiprocessing.context import DefaultContext, ForkContext
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, cast

from executor.errors import ConfigurationError, SchemagateError
from validator.config import ValidatorConfig
from validator.findings import ERROR, SEVERITIES, WARNING, Finding
from validator.lint_cache import DEFAULT_CACHE_DIR, LintCache, Violation, config_key, prune

if TYPE_CHECKING:  # sqlfluff is imported where it runs: a run answered from the cache never loads it
    from sqlfluff.core import Linter

DEFAULTS_RESOURCE = "sqlfluff_defaults.cfg"
FORCED_DIALECT = "postgres"
# sqlfluff's own "could not parse / lex / template" pseudo rules
UNPARSABLE_CODES = frozenset({"PRS", "LXR", "TMP"})
# the sqlfluff configuration files read in each directory, lowest precedence first (as sqlfluff)
CONFIG_FILES = ("setup.cfg", "tox.ini", "pep8.ini", ".sqlfluff", "pyproject.toml")
RULES_DOCS = "https://docs.sqlfluff.com/en/stable/reference/rules.html"
# below this many uncached files one process is faster than starting workers (measured with
# bench/validate.py on 2 cores: a worker costs ~0.1 s, a small migration ~0.03-0.05 s)
MIN_FILES_PER_WORKER = 8


@dataclass(frozen=True)
class LintTarget:
    """One file to lint: its path relative to the migrations directory, text and checksum."""

    rel: str
    text: str
    checksum: str


@dataclass
class LintStats:
    files: int = 0  # files asked for
    cached: int = 0  # answered from the cache
    linted: int = 0  # given to sqlfluff this run
    processes: int = 0  # worker processes started (0: linted in this process, or nothing to lint)
    seconds: float = 0.0


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    stats: LintStats = field(default_factory=LintStats)


# ---------------------------------------------------------------------------------------------
# configuration


def sqlfluff_version() -> str:
    try:
        return metadata.version("sqlfluff")
    except metadata.PackageNotFoundError:
        raise ConfigurationError(
            "sqlfluff is not installed, so migrations cannot be linted",
            remedy="pip install 'schemagate[lint]', or run `schemagate validate --no-lint`",
            rule="lint",
        ) from None


def defaults_text() -> str:
    return resources.files("validator").joinpath(DEFAULTS_RESOURCE).read_text(encoding="utf-8")


def config_directories(config: ValidatorConfig, directory: Path) -> list[Path]:
    """Directories whose sqlfluff configuration applies to files in ``directory``, outermost first."""
    return _config_directories(config.project_root, config.migrations, directory)


def _config_directories(project_root: Path, migrations: Path, directory: Path) -> list[Path]:
    directory = directory.resolve()
    root = project_root.resolve()
    if directory != root and root not in directory.parents:
        root = migrations.resolve()
        if directory != root and root not in directory.parents:
            return [directory]
    chain = [directory]
    while chain[-1] != root:
        chain.append(chain[-1].parent)
    return list(reversed(chain))


def _pyproject_sqlfluff_table(path: Path) -> Any:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return data.get("tool", {}).get("sqlfluff")


def _config_files(
    project_root: Path, migrations: Path, directory: Path, config_root: Path | None
) -> list[tuple[str, Path]]:
    """(label, path) of each sqlfluff configuration file that applies to files in ``directory``,
    lowest precedence first.  The label is the file's path relative to the project root (it goes
    into the cache key, so where the checkout lies does not matter); the path is where it is read:
    under ``config_root`` when the configuration is the base ref's copy (``ValidatorConfig.
    lint_config_root``), else in the project."""
    root = project_root.resolve()
    found = []
    for d in _config_directories(project_root, migrations, directory):
        for name in CONFIG_FILES:
            path = d / name
            try:
                label = path.relative_to(root).as_posix()
            except ValueError:  # outside the project (migrations elsewhere): read where it is
                label = str(path)
            else:
                if config_root is not None:
                    path = config_root / label
            if path.is_file():
                found.append((label, path))
    return found


def config_file_candidates(config: ValidatorConfig, directories: Iterable[Path]) -> list[str]:
    """Paths (relative to the project root) where a sqlfluff configuration file for files in
    ``directories`` may be, whether or not one is there; the project's pyproject.toml first."""
    root = config.project_root.resolve()
    out = ["pyproject.toml"]
    for directory in directories:
        for d in _config_directories(config.project_root, config.migrations, directory):
            for name in CONFIG_FILES:
                try:
                    rel = (d / name).relative_to(root).as_posix()
                except ValueError:
                    continue
                if rel not in out:
                    out.append(rel)
    return out


def config_sources(config: ValidatorConfig, directory: Path) -> list[tuple[str, Any]]:
    """What the effective configuration is made of, cheaply (no sqlfluff import): the defaults and
    every project configuration file's content.  The cache key is a hash of this."""
    sources: list[tuple[str, Any]] = [
        ("<schemagate defaults>", defaults_text()),
        ("<forced>", FORCED_DIALECT),
    ]
    files = _config_files(config.project_root, config.migrations, directory, config.lint_config_root)
    for label, path in files:
        if path.name == "pyproject.toml":
            table = _pyproject_sqlfluff_table(path)
            if table is not None:
                sources.append((label, table))
        else:
            try:
                sources.append((label, path.read_text(encoding="utf-8", errors="replace")))
            except OSError:
                continue
    return sources


def effective_sqlfluff_config(config: ValidatorConfig, directory: Path) -> dict[str, Any]:
    """The nested sqlfluff configuration mapping used for files in ``directory`` (imports sqlfluff)."""
    return _effective_config(config.project_root, config.migrations, directory, config.lint_config_root)


def _effective_config(
    project_root: Path, migrations: Path, directory: Path, config_root: Path | None = None
) -> dict[str, Any]:
    from sqlfluff.core.config.file import load_config_file_as_dict
    from sqlfluff.core.config.loader import load_config_string
    from sqlfluff.core.helpers.dict import nested_combine

    # sqlfluff caches files by path for the life of the process; a long-lived caller (tests,
    # `schemagate run`) must see an edited .sqlfluff, so read them uncached
    load_file = getattr(load_config_file_as_dict, "__wrapped__", load_config_file_as_dict)
    configs = load_config_string(defaults_text(), working_path=str(project_root))
    for _, path in _config_files(project_root, migrations, directory, config_root):
        configs = nested_combine(configs, load_file(str(path)))
    cast(dict[str, Any], configs.setdefault("core", {}))["dialect"] = FORCED_DIALECT
    return configs


def lint_severity(config: ValidatorConfig) -> str:
    severity = config.lint.get("severity", WARNING)
    if severity not in SEVERITIES:
        raise ConfigurationError(
            f"[tool.schemagate.lint] severity: {severity!r} is neither 'error' nor 'warning'",
            remedy='severity = "warning"',
            file="pyproject.toml",
        )
    return str(severity)


def cache_directory(config: ValidatorConfig) -> Path | None:
    if config.lint.get("cache", True) is False:
        return None
    configured = config.lint.get("cache_dir")
    path = Path(configured) if configured else DEFAULT_CACHE_DIR
    return path if path.is_absolute() else config.project_root / path


# ---------------------------------------------------------------------------------------------
# the worker side: everything here runs in the worker processes (or in this one)


@dataclass(frozen=True)
class ConfigSpec:
    """Where the sqlfluff configuration of one directory comes from (picklable, cheap)."""

    project_root: Path
    migrations: Path
    directory: Path
    key: str  # hash of the configuration sources (the cache key)
    config_root: Path | None = None  # ValidatorConfig.lint_config_root


_LINTERS: dict[str, Linter] = {}


def _linter(spec: ConfigSpec) -> Linter:
    linter = _LINTERS.get(spec.key)
    if linter is None:
        from sqlfluff.core import FluffConfig, Linter
        from sqlfluff.core.errors import SQLFluffUserError

        _without_tqdm_monitor()
        configs = _effective_config(spec.project_root, spec.migrations, spec.directory, spec.config_root)
        try:
            linter = Linter(config=FluffConfig(configs=configs))
        except SQLFluffUserError as exc:
            raise ConfigurationError(
                f"the sqlfluff configuration is invalid: {exc}",
                remedy="fix the project's .sqlfluff / [tool.sqlfluff] (see validator/sqlfluff_defaults.cfg)",
                rule="lint",
            ) from None
        _LINTERS[spec.key] = linter
    return linter


def _violations(linter: Linter, rel: str, text: str) -> list[Violation]:
    try:
        linted = linter.lint_string(text, fname=rel)
    except Exception as exc:  # a sqlfluff crash on one file must not hide the other findings
        return [
            {
                "code": "CRASH",
                "line": None,
                "column": None,
                "name": "sqlfluff",
                "description": f"sqlfluff failed on this file: {type(exc).__name__}: {exc}",
                "warning": True,
            }
        ]
    out: list[Violation] = []
    for v in linted.get_violations():
        rule = getattr(v, "rule", None)
        out.append(
            {
                "code": v.rule_code(),
                "line": v.line_no or None,
                "column": v.line_pos or None,
                "description": v.desc(),
                "name": getattr(rule, "name", "") or "",
                "warning": bool(getattr(v, "warning", False)),
            }
        )
    return out


def _lint_chunk(spec: ConfigSpec, items: list[tuple[str, str]]) -> list[list[Violation]] | str:
    """Violations per item; a configuration problem comes back as its message (a str)."""
    try:
        linter = _linter(spec)
    except ConfigurationError as exc:
        return exc.message
    return [_violations(linter, rel, text) for rel, text in items]


# ---------------------------------------------------------------------------------------------
# orchestration


def _worker_cap(config: ValidatorConfig, processes: int | None) -> int:
    configured = int(processes if processes is not None else config.lint.get("processes", 0) or 0)
    return (os.cpu_count() or 1) if configured <= 0 else configured


def _split(items: list[tuple[int, str, str]], parts: int) -> list[list[tuple[int, str, str]]]:
    """Balance chunks by text size (largest first, each to the lightest chunk)."""
    chunks: list[list[tuple[int, str, str]]] = [[] for _ in range(parts)]
    weights = [0] * parts
    for item in sorted(items, key=lambda it: len(it[2]), reverse=True):
        i = weights.index(min(weights))
        chunks[i].append(item)
        weights[i] += len(item[2]) + 200
    return [c for c in chunks if c]


def _worker_context() -> ForkContext | DefaultContext:
    # fork: workers start in milliseconds and inherit what this process already imported
    if sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods():
        _without_tqdm_monitor()
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _without_tqdm_monitor() -> None:
    """No tqdm monitor thread in a process that forks lint workers.

    sqlfluff's parser opens a tqdm progress bar for every file it lints (a disabled one, which
    tqdm still counts).  The first one starts tqdm's monitor thread, which takes tqdm's lock every
    ten seconds.  A worker forked while that thread holds the lock inherits it held and waits
    forever at its first bar: a process that had linted in-process (the serial path, or a test)
    and then forked workers hung that way.  ``monitor_interval = 0`` is tqdm's documented switch;
    a monitor that is running already is stopped."""
    std = sys.modules.get("tqdm.std")  # sqlfluff imports tqdm; before that there is nothing to stop
    if std is None:
        return
    bar = std.tqdm
    bar.monitor_interval = 0
    monitor, bar.monitor = bar.monitor, None
    if monitor is not None:
        monitor.exit()


def _own_tqdm_lock() -> None:
    """A lint worker takes tqdm's lock for itself alone (``tqdm.set_lock``, tqdm's documented way).

    The lock every bar takes (sqlfluff opens a disabled one per file) is by default a
    multiprocessing lock, made in the process that forked the workers and shared by all of them.
    A worker stopped while it held it (``LintJob.close`` terminates the workers of an abandoned
    run) left it taken for good, and the next workers of that process, and the process itself,
    waited for it forever at their first bar: a hung suite.  A worker's own lock dies with it."""
    std = sys.modules.get("tqdm.std")  # inherited through fork; imported later, it starts unshared
    if std is not None:
        std.tqdm.set_lock(threading.RLock())


def _config_error(message: str) -> ConfigurationError:
    return ConfigurationError(
        message,
        remedy="fix the project's .sqlfluff / [tool.sqlfluff] (see validator/sqlfluff_defaults.cfg)",
        rule="lint",
    )


Task = tuple[ConfigSpec, list[tuple[str, str]]]  # what a worker lints: a configuration, (rel, text)s


def _work(tasks: list[Task], answers: Connection) -> None:
    """A worker process's whole life: lint its tasks in order, send the answers back, and end."""
    # the caller stops its workers (terminate() on Ctrl-C or an error): a handler inherited
    # through fork must not delay SIGTERM, and Ctrl-C must not print a traceback per worker
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _own_tqdm_lock()
    answers.send([_lint_chunk(spec, items) for spec, items in tasks])
    answers.close()


class LintWorker:
    """One worker process with its share of the files; its answers come back through a pipe.

    A worker is a plain ``multiprocessing.Process`` so that stopping it is the public
    ``terminate()``/``kill()``, and one that dies (an OOM kill) is seen at once: its pipe ends
    without an answer."""

    def __init__(self, context: ForkContext | DefaultContext, tasks: list[Task]) -> None:
        self._answers, send = context.Pipe(duplex=False)
        self.process = context.Process(target=_work, args=(tasks, send), daemon=True, name="schemagate-lint")
        self.process.start()
        send.close()  # the worker holds the only write end: its end is the pipe's end
        self.answered = False

    def answers(self) -> list[list[list[Violation]] | str]:
        """Wait for this worker's answers (one per task, in order)."""
        try:
            answers: list[list[list[Violation]] | str] = self._answers.recv()
        except (EOFError, OSError):
            raise SchemagateError(
                "a sqlfluff worker process died before it finished (killed, or out of memory)",
                remedy="run again; if it recurs set [tool.schemagate.lint] processes = 1, "
                "or validate with --no-lint",
                rule="lint",
            ) from None
        finally:
            self._answers.close()
        self.answered = True
        return answers

    def stop(self, deadline: float) -> None:
        """Terminate the process (if it still runs) and reap it by ``deadline`` (time.monotonic)."""
        if self.answered:  # it ends by itself once it has answered
            self.process.join(timeout=max(0.0, deadline - time.monotonic()))
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=max(0.0, deadline - time.monotonic()))
        if self.process.is_alive():  # SIGTERM not acted on (yet): a worker must not outlive the run
            self.process.kill()
            self.process.join(timeout=1)


class LintJob:
    """Lint work under way: cache hits are resolved, misses run in worker processes (or run in
    ``result()`` when there are too few to be worth a worker).  Call ``result()`` once, or
    ``close()`` to abandon it (workers are terminated)."""

    def __init__(
        self,
        config: ValidatorConfig,
        targets: list[LintTarget],
        *,
        skip_codes: Iterable[str],
        processes: int | None,
        background: bool,
    ) -> None:
        self.started = time.perf_counter()
        self.config = config
        self.targets = targets
        self.severity = lint_severity(config)
        self.skip = {c.upper() for c in skip_codes}
        self.report_unparsable = bool(config.lint.get("report_unparsable", False))
        self.stats = LintStats(files=len(targets))
        self.violations: dict[int, list[Violation]] = {}
        self.workers: list[LintWorker] = []
        # (cache, chunk of (index, rel, text)); linted here, or by self.workers[w] as its task t
        self._pending: list[tuple[LintCache, ConfigSpec, list[tuple[int, str, str]], tuple[int, int] | None]]
        self._pending = []
        version = sqlfluff_version()
        cache_dir = cache_directory(config)

        # group by directory: nested .sqlfluff files may configure sub-directories differently
        groups: dict[Path, list[int]] = {}
        for i, t in enumerate(targets):
            groups.setdefault((config.migrations / PurePosixPath(t.rel)).parent, []).append(i)
        work: list[tuple[LintCache, ConfigSpec, list[tuple[int, str, str]]]] = []
        used: set[str] = set()
        for directory, indexes in groups.items():
            key = config_key(version, {"sources": config_sources(config, directory)})
            used.add(key)
            cache = LintCache(cache_dir, key)
            misses = []
            for i in indexes:
                cached = cache.get(targets[i].checksum)
                if cached is None:
                    misses.append((i, targets[i].rel, targets[i].text))
                else:
                    self.violations[i] = cached
            self.stats.cached += len(indexes) - len(misses)
            if misses:
                spec = ConfigSpec(
                    config.project_root, config.migrations, directory, key, config.lint_config_root
                )
                work.append((cache, spec, misses))
        total = sum(len(m) for _, _, m in work)
        self.stats.linted = total
        prune(cache_dir, used)  # drop the entries of configurations nobody used for a month
        if not total:
            return
        cap = _worker_cap(config, processes)
        if background:
            workers = max(1, min(cap, -(-total // MIN_FILES_PER_WORKER)))
        else:
            workers = max(1, min(cap, total // MIN_FILES_PER_WORKER))
            if workers > 1:
                for _, spec, _ in work:  # forked workers inherit the built linter and the imports
                    self._check(_lint_chunk(spec, []))
        if workers == 1 and not background:
            self._pending = [(cache, spec, misses, None) for cache, spec, misses in work]
            return
        # each configuration's files are split over the workers (the next chunk to the next
        # worker, round the ring); worker w lints its chunks in order
        tasks: list[list[Task]] = [[] for _ in range(workers)]
        turn = 0
        for cache, spec, misses in work:
            for chunk in _split(misses, workers):
                w, turn = turn % workers, turn + 1
                self._pending.append((cache, spec, chunk, (w, len(tasks[w]))))
                tasks[w].append((spec, [(r, t) for _, r, t in chunk]))
        context = _worker_context()
        try:
            # fewer chunks than workers (a single file): no process for nothing
            self.workers = [LintWorker(context, share) for share in tasks if share]
        except BaseException:
            self.close()
            raise
        self.stats.processes = len(self.workers)

    @staticmethod
    def _check(answer: list[list[Violation]] | str) -> list[list[Violation]]:
        if isinstance(answer, str):
            raise _config_error(answer)
        return answer

    def result(self) -> LintResult:
        try:
            answers = [worker.answers() for worker in self.workers]
            for cache, spec, chunk, place in self._pending:
                if place is None:
                    answer = _lint_chunk(spec, [(r, t) for _, r, t in chunk])
                else:
                    answer = answers[place[0]][place[1]]
                for (i, _, _), found in zip(chunk, self._check(answer), strict=True):
                    self.violations[i] = found
                    cache.put(self.targets[i].checksum, found)
        finally:
            self.close()
        findings: list[Finding] = []
        for i, found in sorted(self.violations.items()):
            for v in found:
                code = str(v.get("code") or "").upper()
                if code in self.skip or (code in UNPARSABLE_CODES and not self.report_unparsable):
                    continue
                findings.append(violation_finding(v, self.targets[i].rel, self.severity))
        findings.sort(key=Finding.sort_key)
        self.stats.seconds = time.perf_counter() - self.started
        return LintResult(findings=findings, stats=self.stats)

    @property
    def running(self) -> int:
        """How many of this job's worker processes are alive."""
        return sum(worker.process.is_alive() for worker in self.workers)

    def close(self) -> None:
        """Stop the workers (at once: an abandoned job must not hold the caller's exit)."""
        deadline = time.monotonic() + 5
        for worker in self.workers:
            worker.stop(deadline)


def violation_finding(v: Violation, rel: str, severity: str) -> Finding:
    code = str(v.get("code") or "")
    name = str(v.get("name") or "")
    label = f"{code} ({name})" if name else code
    return Finding(
        rule=f"lint-{code}",
        family="lint",
        severity=WARNING if v.get("warning") else severity,
        file=rel,
        line=v.get("line"),
        column=v.get("column"),
        message=str(v.get("description") or code),
        help=(
            f"sqlfluff rule {label}: change the statement, silence this line with `-- noqa: {code}`, "
            "or configure the rule in the project's .sqlfluff"
        ),
        docs=f"{RULES_DOCS}#sqlfluff.rules.sphinx.Rule_{code}"
        if code[:2].isalpha() and code[2:].isdigit()
        else RULES_DOCS,
    )


def start_lint(
    config: ValidatorConfig,
    targets: Iterable[LintTarget],
    *,
    skip_codes: Iterable[str] = (),
    processes: int | None = None,
    background: bool = True,
) -> LintJob:
    """Start linting ``targets``; the caller does other work and then calls ``job.result()``.

    With ``background`` every uncached file goes to worker processes at once (even one file:
    importing sqlfluff in a worker overlaps with the caller's parsing and safety checks).
    """
    return LintJob(config, list(targets), skip_codes=skip_codes, processes=processes, background=background)


def lint_files(
    config: ValidatorConfig,
    targets: Iterable[LintTarget],
    *,
    skip_codes: Iterable[str] = (),
    processes: int | None = None,
) -> LintResult:
    """Lint ``targets`` (files under ``config.migrations``) and return their findings.

    ``skip_codes``: sqlfluff codes whose problems another check already reports (see
    ``validator.safety.sqlfluff_overlap``); their violations are dropped.  Fewer than
    ``MIN_FILES_PER_WORKER`` uncached files per worker are linted in this process.
    """
    return LintJob(
        config, list(targets), skip_codes=skip_codes, processes=processes, background=False
    ).result()


def effective_rules(config: ValidatorConfig, directory: Path | None = None) -> list[str]:
    """The sqlfluff rule codes that run for files in ``directory`` (for docs and tests)."""
    directory = directory or config.migrations
    key = config_key(sqlfluff_version(), {"sources": config_sources(config, directory)})
    linter = _linter(
        ConfigSpec(config.project_root, config.migrations, directory, key, config.lint_config_root)
    )
    return sorted(rule.code for rule in linter.get_rulepack().rules)


__all__ = [
    "ERROR",
    "WARNING",
    "LintJob",
    "LintResult",
    "LintStats",
    "LintTarget",
    "effective_rules",
    "effective_sqlfluff_config",
    "lint_files",
    "start_lint",
]
