"""sqlfluff lint of migration files, as findings of family ``lint``.

sqlfluff runs in-process (``sqlfluff.core.Linter`` + ``FluffConfig``, never the CLI) with the
postgres dialect.  Its configuration is schemagate's defaults (``sqlfluff_defaults.cfg``: rules
that find bugs, no layout/capitalisation noise -- the file says how to turn more on), overlaid by
the project's own sqlfluff configuration (``.sqlfluff``, ``[tool.sqlfluff]`` in pyproject.toml,
setup.cfg, tox.ini) found in each directory from the project root down to the migration's
directory.  The user's home directory is deliberately not read: CI and a laptop must agree.

Results are cached by file checksum + sqlfluff version + configuration (``lint_cache``), and
computing the cache key does not import sqlfluff, so a run where every file is cached never pays
for sqlfluff at all.  Files that are not cached are linted in a process pool when there are enough
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

import hashlib
import json
import multiprocessing
import os
import sys
import time
import tomllib
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path, PurePosixPath
from typing import Any

from executor.errors import ConfigurationError
from validator.config import ValidatorConfig
from validator.findings import ERROR, SEVERITIES, WARNING, Finding
from validator.lint_cache import DEFAULT_CACHE_DIR, LintCache, Violation, config_key

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
    directory = directory.resolve()
    root = config.project_root.resolve()
    if directory != root and root not in directory.parents:
        root = config.migrations.resolve()
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


def config_sources(config: ValidatorConfig, directory: Path) -> list[tuple[str, Any]]:
    """What the effective configuration is made of, cheaply (no sqlfluff import): the defaults and
    every project configuration file's content.  The cache key is a hash of this."""
    sources: list[tuple[str, Any]] = [
        ("<schemagate defaults>", defaults_text()),
        ("<forced>", FORCED_DIALECT),
    ]
    for d in config_directories(config, directory):
        for name in CONFIG_FILES:
            path = d / name
            if not path.is_file():
                continue
            if name == "pyproject.toml":
                table = _pyproject_sqlfluff_table(path)
                if table is not None:
                    sources.append((str(path), table))
            else:
                try:
                    sources.append((str(path), path.read_text(encoding="utf-8", errors="replace")))
                except OSError:
                    continue
    return sources


def effective_sqlfluff_config(config: ValidatorConfig, directory: Path) -> dict[str, Any]:
    """The nested sqlfluff configuration mapping used for files in ``directory`` (imports sqlfluff)."""
    from sqlfluff.core.config.file import load_config_file_as_dict
    from sqlfluff.core.config.loader import load_config_string
    from sqlfluff.core.helpers.dict import nested_combine

    # sqlfluff caches files by path for the life of the process; a long-lived caller (tests,
    # `schemagate run`) must see an edited .sqlfluff, so read them uncached
    load_file = getattr(load_config_file_as_dict, "__wrapped__", load_config_file_as_dict)
    configs = load_config_string(defaults_text(), working_path=str(config.project_root))
    for d in config_directories(config, directory):
        for name in CONFIG_FILES:
            if (d / name).is_file():
                configs = nested_combine(configs, load_file(str(d / name)))
    configs.setdefault("core", {})["dialect"] = FORCED_DIALECT
    return configs


def lint_severity(config: ValidatorConfig) -> str:
    severity = config.lint.get("severity", WARNING)
    if severity not in SEVERITIES:
        raise ConfigurationError(
            f"[tool.schemagate.lint] severity: {severity!r} is neither 'error' nor 'warning'",
            remedy='severity = "warning"',
            file="pyproject.toml",
        )
    return severity


def cache_directory(config: ValidatorConfig) -> Path | None:
    if config.lint.get("cache", True) is False:
        return None
    configured = config.lint.get("cache_dir")
    path = Path(configured) if configured else DEFAULT_CACHE_DIR
    return path if path.is_absolute() else config.project_root / path


# ---------------------------------------------------------------------------------------------
# the worker side: everything here runs in the pool's processes (or in this one)

_LINTERS: dict[str, Any] = {}


def _linter(key: str, configs: dict[str, Any]) -> Any:
    linter = _LINTERS.get(key)
    if linter is None:
        from sqlfluff.core import FluffConfig, Linter
        from sqlfluff.core.errors import SQLFluffUserError

        try:
            linter = Linter(config=FluffConfig(configs=configs))
        except SQLFluffUserError as exc:
            raise ConfigurationError(
                f"the sqlfluff configuration is invalid: {exc}",
                remedy="fix the project's .sqlfluff / [tool.sqlfluff] (see validator/sqlfluff_defaults.cfg)",
                rule="lint",
            ) from None
        _LINTERS[key] = linter
    return linter


def _violations(linter: Any, rel: str, text: str) -> list[Violation]:
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


def _lint_chunk(key: str, configs: dict[str, Any], items: list[tuple[str, str]]) -> list[list[Violation]]:
    linter = _linter(key, configs)
    return [_violations(linter, rel, text) for rel, text in items]


# ---------------------------------------------------------------------------------------------
# orchestration


def _worker_count(config: ValidatorConfig, misses: int, processes: int | None = None) -> int:
    configured = int(processes if processes is not None else config.lint.get("processes", 0) or 0)
    cpus = os.cpu_count() or 1
    ceiling = cpus if configured <= 0 else configured
    return max(1, min(ceiling, misses // MIN_FILES_PER_WORKER))


def _split(items: list[tuple[int, str, str]], parts: int) -> list[list[tuple[int, str, str]]]:
    """Balance chunks by text size (largest first, each to the lightest chunk)."""
    chunks: list[list[tuple[int, str, str]]] = [[] for _ in range(parts)]
    weights = [0] * parts
    for item in sorted(items, key=lambda it: len(it[2]), reverse=True):
        i = weights.index(min(weights))
        chunks[i].append(item)
        weights[i] += len(item[2]) + 200
    return [c for c in chunks if c]


def _run_sqlfluff(
    key: str, configs: dict[str, Any], items: list[tuple[int, str, str]], workers: int
) -> dict[int, list[Violation]]:
    # build the linter here first: forked workers inherit it (and sqlfluff's imports)
    _linter(key, configs)
    if workers <= 1:
        return {
            i: v
            for (i, _, _), v in zip(
                items, _lint_chunk(key, configs, [(r, t) for _, r, t in items]), strict=True
            )
        }
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods and sys.platform == "linux" else None)
    results: dict[int, list[Violation]] = {}
    chunks = _split(items, workers)
    with ProcessPoolExecutor(max_workers=len(chunks), mp_context=context) as pool:
        futures = [
            (chunk, pool.submit(_lint_chunk, key, configs, [(r, t) for _, r, t in chunk])) for chunk in chunks
        ]
        for chunk, future in futures:
            for (i, _, _), violations in zip(chunk, future.result(), strict=True):
                results[i] = violations
    return results


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


def lint_files(
    config: ValidatorConfig,
    targets: Iterable[LintTarget],
    *,
    skip_codes: Iterable[str] = (),
    processes: int | None = None,
) -> LintResult:
    """Lint ``targets`` (files under ``config.migrations``) and return their findings.

    ``skip_codes``: sqlfluff codes whose problems another check already reports (see
    ``validator.safety.sqlfluff_overlap``); their violations are dropped.
    """
    started = time.perf_counter()
    targets = list(targets)
    severity = lint_severity(config)
    skip = {c.upper() for c in skip_codes}
    report_unparsable = bool(config.lint.get("report_unparsable", False))
    version = sqlfluff_version()
    cache_dir = cache_directory(config)
    stats = LintStats(files=len(targets))

    # group by directory: nested .sqlfluff files may configure sub-directories differently
    groups: dict[Path, list[int]] = {}
    for i, t in enumerate(targets):
        directory = (config.migrations / PurePosixPath(t.rel)).parent
        groups.setdefault(directory, []).append(i)

    violations: dict[int, list[Violation]] = {}
    for directory, indexes in groups.items():
        sources_key = config_key(version, {"sources": config_sources(config, directory)})
        cache = LintCache(cache_dir, sources_key)
        misses: list[tuple[int, str, str]] = []
        for i in indexes:
            cached = cache.get(targets[i].checksum)
            if cached is None:
                misses.append((i, targets[i].rel, targets[i].text))
            else:
                violations[i] = cached
        stats.cached += len(indexes) - len(misses)
        if not misses:
            continue
        configs = effective_sqlfluff_config(config, directory)
        key = hashlib.sha256(json.dumps(configs, sort_keys=True, default=str).encode()).hexdigest()
        workers = _worker_count(config, len(misses), processes)
        fresh = _run_sqlfluff(key, configs, misses, workers)
        stats.linted += len(misses)
        stats.processes = max(stats.processes, workers if workers > 1 else 0)
        for i, found in fresh.items():
            violations[i] = found
            cache.put(targets[i].checksum, found)

    findings: list[Finding] = []
    for i, found in sorted(violations.items()):
        for v in found:
            code = str(v.get("code") or "").upper()
            if code in skip or (code in UNPARSABLE_CODES and not report_unparsable):
                continue
            findings.append(violation_finding(v, targets[i].rel, severity))
    findings.sort(key=Finding.sort_key)
    stats.seconds = time.perf_counter() - started
    return LintResult(findings=findings, stats=stats)


def effective_rules(config: ValidatorConfig, directory: Path | None = None) -> list[str]:
    """The sqlfluff rule codes that run for files in ``directory`` (for docs and tests)."""
    configs = effective_sqlfluff_config(config, directory or config.migrations)
    linter = _linter(
        hashlib.sha256(json.dumps(configs, sort_keys=True, default=str).encode()).hexdigest(), configs
    )
    return sorted(rule.code for rule in linter.get_rulepack().rules)


__all__ = [
    "ERROR",
    "WARNING",
    "LintResult",
    "LintStats",
    "LintTarget",
    "effective_rules",
    "effective_sqlfluff_config",
    "lint_files",
]
