"""sqlfluff lint: default rule set for migrations, project configuration, cache, findings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from executor.checksum import file_checksum
from executor.errors import ConfigurationError, SchemagateError
from validator.config import load_config
from validator.lint import LintTarget, effective_rules, lint_files, start_lint
from validator.lint_cache import LintCache

REPO_ROOT = Path(__file__).resolve().parent.parent

SELECT_STAR_VIEW = "CREATE VIEW active_customers AS SELECT * FROM customers;\n"
NULL_COMPARISON = "UPDATE customers SET status = 'open' WHERE closed_at = NULL;\n"
# lower-case keywords and a long line: style, not a problem in a migration
STYLE_ONLY = (
    "create table invoices (id bigint generated always as identity primary key, customer_id bigint not null, "
    "amount numeric(12, 2) not null);\n"
)


def project(
    tmp_path: Path, files: dict[str, str], *, pyproject: str = "", sqlfluff: str | None = None
) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "pyproject.toml").write_text('[tool.schemagate]\nmigrations = "migrations"\n' + pyproject)
    if sqlfluff is not None:
        (tmp_path / ".sqlfluff").write_text(sqlfluff)
    mig = tmp_path / "migrations"
    mig.mkdir(exist_ok=True)
    for name, text in files.items():
        (mig / name).write_text(text)
    return tmp_path


def targets(root: Path) -> list[LintTarget]:
    out = []
    for p in sorted((root / "migrations").rglob("*.sql")):
        out.append(
            LintTarget(
                p.relative_to(root / "migrations").as_posix(), p.read_text(), file_checksum(p.read_bytes())
            )
        )
    return out


def rules_by_file(findings) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in findings:
        out.setdefault(f.file, []).append(f.rule)
    return out


def test_default_rules_find_bugs_not_style(tmp_path):
    root = project(
        tmp_path,
        {"V1__view.sql": SELECT_STAR_VIEW, "V2__fix.sql": NULL_COMPARISON, "V3__style.sql": STYLE_ONLY},
    )
    result = lint_files(load_config(root), targets(root))
    assert rules_by_file(result.findings) == {"V1__view.sql": ["lint-AM04"], "V2__fix.sql": ["lint-CV05"]}
    am04 = result.findings[0]
    assert (am04.family, am04.severity, am04.line, am04.column) == ("lint", "warning", 1, 40)
    assert "noqa: AM04" in am04.help and am04.docs.endswith("Rule_AM04")
    rules = effective_rules(load_config(root))
    assert "AM04" in rules and not any(r.startswith(("LT", "CP")) for r in rules)


def test_project_sqlfluff_file_is_honoured(tmp_path):
    root = project(
        tmp_path,
        {"V1__style.sql": STYLE_ONLY, "V2__view.sql": SELECT_STAR_VIEW},
        sqlfluff="[sqlfluff]\nrules = CP01,AM04\nexclude_rules = AM04\n"
        "[sqlfluff:rules:capitalisation.keywords]\ncapitalisation_policy = upper\n",
    )
    result = lint_files(load_config(root), targets(root))
    assert set(rules_by_file(result.findings)) == {"V1__style.sql"}
    assert {f.rule for f in result.findings} == {"lint-CP01"}


def test_pyproject_tool_sqlfluff_is_honoured(tmp_path):
    root = project(
        tmp_path,
        {"V1__style.sql": STYLE_ONLY},
        pyproject='\n[tool.sqlfluff.core]\nrules = "LT05"\nmax_line_length = 60\n',
    )
    result = lint_files(load_config(root), targets(root))
    assert [f.rule for f in result.findings] == ["lint-LT05"]


def test_noqa_and_severity_configuration(tmp_path):
    root = project(
        tmp_path,
        {
            "V1__view.sql": SELECT_STAR_VIEW,
            "V2__ok.sql": "CREATE VIEW v2 AS SELECT * FROM customers;  -- noqa: AM04\n",
        },
        pyproject='\n[tool.schemagate.lint]\nseverity = "error"\n',
    )
    result = lint_files(load_config(root), targets(root))
    assert [(f.file, f.severity) for f in result.findings] == [("V1__view.sql", "error")]

    (tmp_path / "bad").mkdir()
    bad = project(
        tmp_path / "bad",
        {"V1__view.sql": SELECT_STAR_VIEW},
        pyproject='\n[tool.schemagate.lint]\nseverity = "fatal"\n',
    )
    with pytest.raises(ConfigurationError) as exc:
        lint_files(load_config(bad), targets(bad))
    assert exc.value.exit_code == 2 and "severity" in str(exc.value)


def test_skip_codes_and_unparsable_sections(tmp_path):
    # sqlfluff's grammar does not know every PostgreSQL statement; pglast judges syntax, not sqlfluff
    root = project(tmp_path, {"V1__view.sql": SELECT_STAR_VIEW, "V2__odd.sql": "SELEC 1 FRM nothing;\n"})
    cfg = load_config(root)
    assert lint_files(cfg, targets(root), skip_codes={"AM04"}).findings == []
    cfg.lint["report_unparsable"] = True
    assert [f.rule for f in lint_files(cfg, targets(root)).findings] == ["lint-AM04", "lint-PRS"]


def test_second_run_reads_the_cache_instead_of_linting(tmp_path):
    root = project(tmp_path, {"V1__view.sql": SELECT_STAR_VIEW, "V2__fix.sql": NULL_COMPARISON})
    cfg = load_config(root)
    first = lint_files(cfg, targets(root))
    assert (first.stats.cached, first.stats.linted) == (0, 2)
    cache_dir = root / ".schemagate" / "cache" / "lint"
    entries = sorted(cache_dir.rglob("*.json"))
    assert len(entries) == 2

    # plant a violation sqlfluff would never produce in one entry: if the second run reported it,
    # the answer came from the cache and sqlfluff was not asked
    checksum = file_checksum((root / "migrations" / "V2__fix.sql").read_bytes())
    entry = next(p for p in entries if p.stem == checksum)
    data = json.loads(entry.read_text())
    data["violations"] = [
        {
            "code": "ZZ99",
            "line": 1,
            "column": 1,
            "description": "from the cache",
            "name": "",
            "warning": False,
        }
    ]
    entry.write_text(json.dumps(data))

    second = lint_files(cfg, targets(root))
    assert (second.stats.cached, second.stats.linted) == (2, 0)
    assert [(f.file, f.rule, f.message) for f in second.findings] == [
        ("V1__view.sql", "lint-AM04", "Query produces an unknown number of result columns."),
        ("V2__fix.sql", "lint-ZZ99", "from the cache"),
    ]

    # a file with new content is linted; the unchanged one still comes from the cache
    (root / "migrations" / "V1__view.sql").write_text(SELECT_STAR_VIEW + NULL_COMPARISON)
    third = lint_files(cfg, targets(root))
    assert (third.stats.cached, third.stats.linted) == (1, 1)


def test_cache_is_keyed_by_configuration(tmp_path):
    root = project(tmp_path, {"V1__view.sql": SELECT_STAR_VIEW})
    assert lint_files(load_config(root), targets(root)).stats.linted == 1
    (root / ".sqlfluff").write_text("[sqlfluff]\nexclude_rules = AM04\n")
    after = lint_files(load_config(root), targets(root))
    assert after.stats.linted == 1 and after.findings == []
    # turning the cache off lints every time and writes nothing
    nocache = project(
        tmp_path / "nocache",
        {"V1__view.sql": SELECT_STAR_VIEW},
        pyproject="\n[tool.schemagate.lint]\ncache = false\n",
    )
    for _ in range(2):
        assert lint_files(load_config(nocache), targets(nocache)).stats.linted == 1
    assert not (nocache / ".schemagate").exists()


def test_entries_of_configurations_unused_for_a_month_are_pruned(tmp_path):
    root = project(tmp_path, {"V1__view.sql": SELECT_STAR_VIEW})
    cache_dir = root / ".schemagate" / "cache" / "lint"
    stale, recent = cache_dir / ("0" * 24), cache_dir / ("1" * 24)
    for directory in (stale, recent):
        directory.mkdir(parents=True)
        (directory / "abc.json").write_text("{}")
    month_ago = time.time() - 31 * 86400
    os.utime(stale, (month_ago, month_ago))

    lint_files(load_config(root), targets(root))

    remaining = {p.name for p in cache_dir.iterdir()}
    assert stale.name not in remaining  # an old sqlfluff / .sqlfluff nobody uses any more
    assert recent.name in remaining  # another configuration, used recently: kept
    assert len(remaining) == 2  # and the one this run used


def test_unreadable_cache_entry_is_a_miss(tmp_path):
    cache = LintCache(tmp_path, "k" * 64)
    cache.put("abc", [{"code": "AM04"}])
    assert cache.get("abc") == [{"code": "AM04"}]
    (tmp_path / ("k" * 24) / "abc.json").write_text("{not json")
    assert cache.get("abc") is None and cache.misses == 1
    assert LintCache(None, "k" * 64).get("abc") is None


def test_worker_pool_gives_the_same_findings(tmp_path):
    files = {f"V{i}__t.sql": (SELECT_STAR_VIEW if i % 2 else NULL_COMPARISON) for i in range(1, 17)}
    root = project(tmp_path, files, pyproject="\n[tool.schemagate.lint]\ncache = false\n")
    cfg = load_config(root)
    serial = lint_files(cfg, targets(root), processes=1)
    parallel = lint_files(cfg, targets(root), processes=2)
    assert parallel.stats.processes == 2 and serial.stats.processes == 0
    assert parallel.findings == serial.findings and len(serial.findings) == 16


def test_nested_sqlfluff_configures_its_directory_only(tmp_path):
    root = project(tmp_path, {"V1__view.sql": SELECT_STAR_VIEW})
    (root / "migrations" / "legacy").mkdir()
    (root / "migrations" / "legacy" / "V0_1__old_view.sql").write_text(SELECT_STAR_VIEW)
    (root / "migrations" / "legacy" / ".sqlfluff").write_text("[sqlfluff]\nexclude_rules = AM04\n")
    result = lint_files(load_config(root), targets(root))
    assert [(f.file, f.rule) for f in result.findings] == [("V1__view.sql", "lint-AM04")]


def test_background_job_overlaps_and_can_be_abandoned(tmp_path):
    files = {f"V{i}__t.sql": SELECT_STAR_VIEW.replace("active_customers", f"v{i}") for i in range(1, 41)}
    root = project(tmp_path, files)
    cfg = load_config(root)
    job = start_lint(cfg, targets(root))  # every miss goes to workers at once, beside the caller
    assert job.stats.processes == len(job.workers) >= 1 and job.stats.linted == 40
    assert all(w.process.pid is not None for w in job.workers)  # started before result() is asked
    job.close()  # e.g. the structural checks raised: the workers must not outlive the run
    # ended (terminated, or finished just before) and reaped: the exit code is known
    assert job.running == 0 and all(w.process.exitcode is not None for w in job.workers)
    assert not any((root / ".schemagate").rglob("*.json"))  # an abandoned job caches nothing

    one = start_lint(cfg, targets(root)[:1])  # a single miss still runs beside the caller
    assert one.stats.processes == len(one.workers) == 1
    assert [f.rule for f in one.result().findings] == ["lint-AM04"]
    assert one.running == 0 and one.workers[0].process.exitcode == 0


def test_no_tqdm_monitor_thread_runs_beside_forked_workers(tmp_path):
    """sqlfluff opens a (disabled) tqdm bar per file; tqdm's monitor thread, which the first bar
    starts, takes tqdm's lock every ten seconds, and a worker forked while it held the lock waited
    forever (a hung suite).  Linting in-process first, then in workers, leaves no monitor thread."""
    import threading

    from tqdm import tqdm

    files = {f"V{i}__t.sql": SELECT_STAR_VIEW.replace("active_customers", f"v{i}") for i in range(1, 5)}
    root = project(tmp_path, files, pyproject="\n[tool.schemagate.lint]\ncache = false\n")
    cfg = load_config(root)
    tqdm.monitor_interval = 10  # as another user of tqdm in this process may have left it
    with tqdm(total=1, disable=True):  # ... and a bar of its own, which starts the monitor
        assert any(type(t).__name__ == "TMonitor" for t in threading.enumerate())
    serial = lint_files(cfg, targets(root), processes=1)
    job = start_lint(cfg, targets(root))
    monitors = [t for t in threading.enumerate() if type(t).__name__ == "TMonitor" and t.is_alive()]
    parallel = job.result()
    assert monitors == [] and tqdm.monitor_interval == 0
    assert parallel.findings == serial.findings and len(serial.findings) == 4


def test_a_worker_stopped_while_it_held_tqdms_lock_does_not_stall_the_next_run(tmp_path):
    """tqdm's lock is shared by every process forked after it was made.  A process stopped while it
    held it (an abandoned run's worker, terminated mid-file) left it taken: the next run's workers
    waited for it forever (the suite hung in test_background_job_overlaps_and_can_be_abandoned).
    Here a forked process takes the lock and is killed; a run with workers must still finish (in a
    child interpreter with a time limit, so that a hang fails this test instead of the suite)."""
    files = {f"V{i}__t.sql": SELECT_STAR_VIEW.replace("active_customers", f"v{i}") for i in range(1, 9)}
    root = project(tmp_path, files, pyproject="\n[tool.schemagate.lint]\ncache = false\n")
    script = f"""
import multiprocessing, os, signal, sys
from pathlib import Path
from tqdm.std import tqdm
import validator.lint as lint
from validator.config import load_config
from tests.test_lint import targets
lock = tqdm.get_lock()  # made here, shared by what this process forks

def take_and_die():
    lock.acquire()
    os.kill(os.getpid(), signal.SIGKILL)

holder = multiprocessing.get_context("fork").Process(target=take_and_die)
holder.start()
holder.join()
assert holder.exitcode == -signal.SIGKILL
root = Path({str(root)!r})
job = lint.start_lint(load_config(root), targets(root), processes=2)
assert job.stats.processes >= 1, job.stats
print("findings", len(job.result().findings))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,  # it takes a second; without its own lock a worker waited for ever
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "findings 8"


def test_a_worker_that_dies_is_an_error_not_a_hang(tmp_path):
    # a long file per worker: a worker is still linting when it is killed (an OOM kill)
    body = "".join(SELECT_STAR_VIEW.replace("active_customers", f"v{i}") for i in range(100))
    files = {f"V{i}__t.sql": body.replace("CREATE VIEW v", f"CREATE VIEW f{i}_v") for i in range(1, 17)}
    root = project(tmp_path, files)
    job = start_lint(load_config(root), targets(root), processes=2)
    assert len(job.workers) == 2
    os.kill(job.workers[0].process.pid, signal.SIGKILL)
    with pytest.raises(SchemagateError) as exc:
        job.result()
    assert "worker process died" in exc.value.message and "processes = 1" in exc.value.remedy
    assert job.running == 0  # the other worker is stopped too
    assert not any((root / ".schemagate").rglob("*.json"))  # nothing half-cached
