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
        ("[tool.schemagate.rules]\nban-drop-column = 'loud'\n", "rules.ban-drop-column"),
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
