"""``[tool.schemagate]`` in pyproject.toml: where the migrations are and how strict to be.

```toml
[tool.schemagate]
migrations = "migrations"        # directory, relative to the project root
out_of_order = false             # allow new versions lower than the highest one on the base ref
target_postgres = 14             # oldest PostgreSQL major the migrations must be safe on
blocking_severity = "error"      # "error" or "warning": which findings stop the bundle

[tool.schemagate.rules]          # per safety rule: "off", "warning" or "error"
ban-drop-column = "warning"

[tool.schemagate.lint]
enabled = true                   # sqlfluff lint (family "lint")
severity = "warning"

[tool.schemagate.executor]       # see executor.settings.ExecutorSettings
schema = "public"
lock_timeout = "5s"
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from executor.errors import ConfigurationError
from executor.settings import ExecutorSettings

# majors the safety rules know the behaviour of; 10-13 are past community support but still run
# (for example under RDS extended support), and several dangers differ there (ADD COLUMN ... DEFAULT
# rewrites before 11, ALTER TYPE ... ADD VALUE cannot run in a transaction before 12)
SUPPORTED_POSTGRES = tuple(range(10, 19))
DEFAULT_TARGET_POSTGRES = 14  # the oldest major still supported by the PostgreSQL project (Nov 2026)


@dataclass
class ValidatorConfig:
    project_root: Path
    migrations: Path
    out_of_order: bool = False
    target_postgres: int = DEFAULT_TARGET_POSTGRES
    blocking_severity: str = "error"
    rules: dict[str, str] = field(default_factory=dict)
    lint: dict[str, Any] = field(default_factory=lambda: {"enabled": True, "severity": "warning"})
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    layout: str | None = None  # None: detected from the directory (executor.layouts)
    max_file_bytes: int = 16 * 1024 * 1024  # a bigger migration is an error finding (max_file_mb)
    pyproject: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def find_project_root(start: Path) -> Path:
    """The nearest directory at or above ``start`` holding a pyproject.toml (or ``start``)."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return start


def _key_error(key: str, problem: str, remedy: str) -> ConfigurationError:
    return ConfigurationError(f"[tool.schemagate] {key}: {problem}", remedy=remedy, file="pyproject.toml")


def load_config(project_root: Path | None = None, *, migrations: Path | None = None) -> ValidatorConfig:
    root = find_project_root(project_root or Path.cwd())
    pyproject = root / "pyproject.toml"
    table: dict[str, Any] = {}
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"pyproject.toml is not valid TOML: {exc}", file=str(pyproject)
            ) from None
        table = data.get("tool", {}).get("schemagate", {}) or {}
    mig = migrations if migrations is not None else root / str(table.get("migrations", "migrations"))
    cfg = ValidatorConfig(
        project_root=root,
        migrations=Path(mig),
        pyproject=pyproject if pyproject.is_file() else None,
        raw=table,
    )
    if "out_of_order" in table:
        if not isinstance(table["out_of_order"], bool):
            raise _key_error("out_of_order", "must be true or false", "out_of_order = false")
        cfg.out_of_order = table["out_of_order"]
    if "target_postgres" in table:
        tp = table["target_postgres"]
        if not isinstance(tp, int) or tp not in SUPPORTED_POSTGRES:
            raise _key_error(
                "target_postgres",
                f"{tp!r} is not a supported major version",
                f"one of {', '.join(map(str, SUPPORTED_POSTGRES))}",
            )
        cfg.target_postgres = tp
    if "blocking_severity" in table:
        bs = table["blocking_severity"]
        if bs not in ("error", "warning"):
            raise _key_error(
                "blocking_severity", f"{bs!r} is neither 'error' nor 'warning'", 'blocking_severity = "error"'
            )
        cfg.blocking_severity = bs
    if "layout" in table:
        from executor import layouts

        layout = table["layout"]
        if not isinstance(layout, str) or layout not in layouts.LAYOUTS:
            raise _key_error(
                "layout",
                f"{layout!r} is not a known layout",
                f"one of {', '.join(sorted(layouts.LAYOUTS))}, or leave it out to detect it",
            )
        cfg.layout = layout
    if "max_file_mb" in table:
        mb = table["max_file_mb"]
        if isinstance(mb, bool) or not isinstance(mb, int | float) or mb <= 0:
            raise _key_error("max_file_mb", f"{mb!r} is not a positive number", "max_file_mb = 16")
        cfg.max_file_bytes = int(mb * 1024 * 1024)
    rules = table.get("rules", {}) or {}
    for rule_id, level in rules.items():
        if level not in ("off", "warning", "error"):
            raise _key_error(
                f"rules.{rule_id}", f"{level!r} is not 'off', 'warning' or 'error'", f'{rule_id} = "warning"'
            )
    cfg.rules = dict(rules)
    lint = table.get("lint", {}) or {}
    cfg.lint = {"enabled": True, "severity": "warning", **lint}
    executor = table.get("executor", {}) or {}
    if executor:
        try:
            cfg.executor = ExecutorSettings().with_overrides(**executor)
        except TypeError as exc:
            raise _key_error("executor", str(exc), "see executor.settings.ExecutorSettings") from None
    return cfg
