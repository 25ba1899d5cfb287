"""[tool.schemagate] configuration: good values load, bad ones name the key (exit code 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.errors import ConfigurationError
from executor.settings import ExecutorSettings
from validator.config import load_config


def _project(tmp_path: Path, body: str) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n\n" + body)
    return tmp_path


def test_defaults_without_pyproject(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    assert cfg.migrations == tmp_path.resolve() / "migrations"
    assert cfg.target_postgres == 14 and cfg.blocking_severity == "error" and not cfg.out_of_order


def test_values_are_read(tmp_path: Path) -> None:
    cfg = load_config(
        _project(
            tmp_path,
            """
[tool.schemagate]
migrations = "db/migrations"
out_of_order = true
target_postgres = 16
[tool.schemagate.rules]
ban-drop-column = "warning"
[tool.schemagate.executor]
schema = "ops"
lock_timeout = "2s"
""",
        )
    )
    assert cfg.migrations == tmp_path.resolve() / "db/migrations"
    assert cfg.out_of_order and cfg.target_postgres == 16
    assert cfg.rules == {"ban-drop-column": "warning"}
    assert cfg.executor.schema == "ops" and cfg.executor.lock_timeout == "2s"


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("[tool.schemagate]\ntarget_postgres = 9\n", "target_postgres"),
        ("[tool.schemagate]\ntarget_postgres = 19\n", "target_postgres"),
        ("[tool.schemagate]\nout_of_order = 'yes'\n", "out_of_order"),
        ("[tool.schemagate]\nblocking_severity = 'info'\n", "blocking_severity"),
        ("[tool.schemagate.rules]\nban-drop-column = 'loud'\n", "[tool.schemagate.rules] ban-drop-column"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, body: str, key: str) -> None:
    with pytest.raises(ConfigurationError) as exc:
        load_config(_project(tmp_path, body))
    assert key in str(exc.value) and exc.value.exit_code == 2


def test_executor_settings_validate_identifiers_and_durations() -> None:
    with pytest.raises(ConfigurationError, match="identifier"):
        ExecutorSettings(schema='public"; DROP TABLE x; --')
    with pytest.raises(ConfigurationError, match="duration"):
        ExecutorSettings(lock_timeout="soon")
    with pytest.raises(ConfigurationError, match="unknown executor setting"):
        ExecutorSettings().with_overrides(lock_timout="1s")
    assert ExecutorSettings().with_overrides(lock_timeout="1s").lock_timeout == "1s"


def test_an_old_target_version_reaches_the_safety_rules(tmp_path: Path) -> None:
    """ADD COLUMN with a constant default rewrote the table before PostgreSQL 11."""
    from validator.safety import check_sql

    sql = "ALTER TABLE orders ADD COLUMN flag boolean DEFAULT false;\n"
    old = load_config(_project(tmp_path, "[tool.schemagate]\ntarget_postgres = 10\n"))
    assert old.target_postgres == 10
    assert "adding-field-with-default" in {f.rule for f in check_sql(sql, config=old).findings}
    new = load_config(_project(tmp_path, "[tool.schemagate]\ntarget_postgres = 16\n"))
    assert "adding-field-with-default" not in {f.rule for f in check_sql(sql, config=new).findings}


# -- unknown keys, in every section -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "named", "closest"),
    [
        ("[tool.schemagate]\nmigration = 'db'\n", "[tool.schemagate] migration: unknown key", "migrations"),
        ("[tool.schemagate]\nouf_of_order = true\n", "[tool.schemagate] ouf_of_order", "out_of_order"),
        ("[tool.schemagate]\naccepted_histroy = '040'\n", "accepted_histroy", "accepted_history"),
        (
            "[tool.schemagate.rules]\nrequire-concurrent-index-creaton = 'off'\n",
            "[tool.schemagate.rules] require-concurrent-index-creaton: no rule has this id",
            "require-concurrent-index-creation",
        ),
        ("[tool.schemagate.lint]\nseverty = 'error'\n", "[tool.schemagate.lint] severty", "severity"),
        (
            "[tool.schemagate.executor]\nlock_timout = '1s'\n",
            "[tool.schemagate.executor] lock_timout",
            "lock_timeout",
        ),
        ("[tool.schemagate.rehearsal]\nsetpu = 'x.sql'\n", "[tool.schemagate.rehearsal] setpu", "setup"),
    ],
)
def test_an_unknown_key_names_the_closest_known_one(
    tmp_path: Path, body: str, named: str, closest: str
) -> None:
    with pytest.raises(ConfigurationError) as exc:
        load_config(_project(tmp_path, body))
    assert named in exc.value.message
    assert exc.value.remedy is not None and f"did you mean {closest!r}?" in exc.value.remedy
    assert exc.value.exit_code == 2


def test_an_unknown_key_is_refused_through_every_command(tmp_path: Path, monkeypatch, capsys) -> None:
    from schemagate.cli import main

    root = _project(tmp_path, "[tool.schemagate]\nmigration = 'db/migrations'\n")
    (root / "db" / "migrations").mkdir(parents=True)
    (root / "db" / "migrations" / "V1__t.sql").write_text("CREATE TABLE t (id bigint);\n")
    monkeypatch.chdir(root)
    for argv in (["validate"], ["plan", "--database-url", "postgresql://nowhere.invalid/x"], ["new", "x"]):
        assert main(argv) == 2, argv
        assert "did you mean 'migrations'?" in capsys.readouterr().err
    assert not (root / "migrations").exists()  # nothing was created where the typo would have led


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("[tool.schemagate]\nrules = 'off'\n", "must be a table"),
        ("[tool.schemagate]\n[tool.schemagate.target_postgres]\nx = 1\n", "must be a value, not a table"),
        (
            "[tool.schemagate.lint]\nenabled = 'yes'\n",
            "[tool.schemagate.lint] enabled: 'yes' is not true or false",
        ),
        ("[tool.schemagate.lint]\nprocesses = true\n", "processes: True is not an integer"),
        ("[tool.schemagate]\naccepted_history = 4.2\n", "accepted_history: 4.2 is not a migration version"),
        ("[tool.schemagate]\nsearch_path = 'storage; drop'\n", "is not a list of schema names"),
        (
            "[tool.schemagate]\nsearch_path = 'storage'\n[tool.schemagate.executor]\nsearch_path = 'app'\n",
            "'storage' here but 'app' under [tool.schemagate.executor]",
        ),
    ],
)
def test_a_key_of_the_wrong_shape_is_a_configuration_error(tmp_path: Path, body: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as exc:
        load_config(_project(tmp_path, body))
    assert problem in exc.value.message and exc.value.exit_code == 2


def test_new_keys_are_read(tmp_path: Path) -> None:
    cfg = load_config(
        _project(
            tmp_path,
            '[tool.schemagate]\naccepted_history = 17\nsearch_path = \'storage, "$user", "Odd Name"\'\n'
            '[tool.schemagate.rules]\nrehearsal-table-rewrite = "error"\n',
        )
    )
    assert cfg.accepted_history == "17"  # an integer is a version too
    assert cfg.executor.search_path == 'storage, "$user", "Odd Name"'
    assert cfg.rules == {"rehearsal-table-rewrite": "error"}  # the rehearsal's rules are rules too


def test_every_top_level_key_is_documented_in_the_readme() -> None:
    from validator.config import TOP_LEVEL_KEYS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = [key for key in TOP_LEVEL_KEYS if key not in section]
    assert not missing, f"README's Configuration section does not mention {missing}"
