"""``[tool.schemagate]`` in pyproject.toml: where the migrations are and how strict to be.

```toml
[tool.schemagate]
migrations = "migrations"        # directory, relative to the project root
out_of_order = false             # allow new versions lower than the highest one on the base ref
target_postgres = 14             # oldest PostgreSQL major the migrations must be safe on
blocking_severity = "error"      # "error" or "warning": which findings stop the bundle
accepted_history = "040"         # this version and every one before it is not judged again
search_path = "storage, public"  # search_path the migrations run with (apply, plan, run, rehearsal)

[tool.schemagate.rules]          # per safety or rehearsal rule: "off", "warning" or "error"
ban-drop-column = "warning"

[tool.schemagate.lint]
enabled = true                   # sqlfluff lint (family "lint")
severity = "warning"

[tool.schemagate.executor]       # see executor.settings.ExecutorSettings
schema = "public"
lock_timeout = "5s"

[tool.schemagate.rehearsal]
setup = "db/rehearsal_setup.sql"
```

Every key is listed once, in ``TOP_LEVEL_KEYS`` and ``TABLE_KEYS``; a key that is not listed is a
configuration error (exit code 2) naming the closest known key, so a typo (``migration = ...``)
never quietly falls back to a default.  To add a key: list it in ``TOP_LEVEL_KEYS`` with what it
means, and read it in ``load_config``.

``GATE_KEYS`` are the keys that decide what the gate lets through.  With a base ref (pull-request
and main-branch builds) they are read from the base ref's pyproject.toml, not the working tree's
(``with_gate_settings``), and a change to them is reported (``validator.gate_config``): a pull
request must not switch off its own gate.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from executor.errors import ConfigurationError
from executor.settings import ExecutorSettings

# a table of pyproject.toml or schemagate.toml ([tool.schemagate] and below) as tomllib reads it
TomlTable: TypeAlias = dict[str, Any]

# majors the safety rules know the behaviour of; 10-13 are past community support but still run
# (for example under RDS extended support), and several dangers differ there (ADD COLUMN ... DEFAULT
# rewrites before 11, ALTER TYPE ... ADD VALUE cannot run in a transaction before 12)
SUPPORTED_POSTGRES = tuple(range(10, 19))
DEFAULT_TARGET_POSTGRES = 14  # the oldest major still supported by the PostgreSQL project (Nov 2026)

# every key of [tool.schemagate], with what it means (the one list: add new keys here)
TOP_LEVEL_KEYS: dict[str, str] = {
    "migrations": "directory of the migration files, relative to the project root",
    "out_of_order": "allow new versions lower than the highest one on the base ref",
    "target_postgres": "oldest PostgreSQL major the migrations must be safe on",
    "blocking_severity": "which findings stop the bundle: 'error' or 'warning'",
    "accepted_history": "this version and every one before it are accepted history, not judged again",
    "search_path": "search_path the migrations run with (apply, plan, run and the rehearsal)",
    "layout": "the directory layout (flyway, diesel, prisma, drizzle, golang-migrate, dbmate); "
    "detected when absent",
    "max_file_mb": "a migration file larger than this (MiB, default 16) is an error finding, not read",
    "rules": "table: level of each safety or rehearsal rule",
    "lint": "table: sqlfluff lint settings",
    "executor": "table: executor settings (executor.settings.ExecutorSettings)",
    "rehearsal": "table: rehearsal settings",
}
# the keys of each table; "rules" is checked against the rule registries instead
LINT_DEFAULTS: TomlTable = {
    "enabled": True,
    "severity": "warning",
    "cache": True,
    "cache_dir": ".schemagate/cache/lint",
    "processes": 0,
    "report_unparsable": False,
}
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "lint": tuple(LINT_DEFAULTS),
    "executor": tuple(f.name for f in dataclasses.fields(ExecutorSettings)),
    "rehearsal": ("setup", "data_probe"),
}
# what decides the verdict; read from the base ref when there is one
GATE_KEYS = ("out_of_order", "target_postgres", "blocking_severity", "accepted_history", "rules", "lint")
RULE_LEVELS = ("off", "warning", "error")

# one search_path entry: a plain or double-quoted identifier, or $user
_SEARCH_PATH_ITEM = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+"|\$user|"\$user")'
_SEARCH_PATH_RE = re.compile(rf"^\s*{_SEARCH_PATH_ITEM}(?:\s*,\s*{_SEARCH_PATH_ITEM})*\s*$")


@dataclass
class ValidatorConfig:
    """The project's ``[tool.schemagate]`` settings, with the command line's on top."""

    project_root: Path
    migrations: Path
    out_of_order: bool = False
    target_postgres: int = DEFAULT_TARGET_POSTGRES
    blocking_severity: str = "error"
    accepted_history: str | None = None  # a version, resolved against the files by validate
    rules: dict[str, str] = field(default_factory=dict)
    lint: TomlTable = field(default_factory=lambda: {"enabled": True, "severity": "warning"})
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    layout: str | None = None  # None: detected from the directory (executor.layouts)
    max_file_bytes: int = 16 * 1024 * 1024  # a bigger migration is an error finding (max_file_mb)
    pyproject: Path | None = None
    raw: TomlTable = field(default_factory=dict)
    # where lint reads the project's sqlfluff configuration files (a copy of the base ref's, laid
    # out like the project); None: the project itself
    lint_config_root: Path | None = None
    gate_source: str | None = None  # the base ref the gate keys were read from, when they were
    # the file holding the settings: schemagate.toml, else pyproject.toml (None: neither exists)
    config_file: Path | None = None


CONFIG_FILE = "schemagate.toml"  # the same keys as [tool.schemagate], at the top level


def _declares_schemagate(pyproject: Path) -> bool:
    """True when ``pyproject`` has a [tool.schemagate] table (an unreadable file counts: it is then
    reported by load_config, not silently skipped)."""
    import tomllib  # only where a file is there to read: a run without one does without

    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True
    tool = data.get("tool")
    return isinstance(tool, dict) and "schemagate" in tool


def find_project_root(start: Path) -> Path:
    """The project a command run in ``start`` works on, so that every command behaves the same from
    any subdirectory: the nearest directory at or above ``start`` holding a ``schemagate.toml`` or a
    pyproject.toml with a [tool.schemagate] table.  The walk stops at the top of the git work tree
    (a directory holding ``.git``).  Without such a file: the nearest directory with a
    pyproject.toml, else the top of the work tree, else ``start``."""
    start = start.resolve()
    nearest_pyproject: Path | None = None
    for candidate in (start, *start.parents):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file():
            if _declares_schemagate(pyproject):
                return candidate
            nearest_pyproject = nearest_pyproject or candidate
        if (candidate / ".git").exists():
            return nearest_pyproject or candidate
    return nearest_pyproject or start


def _key_error(key: str, problem: str, remedy: str, where: str = "") -> ConfigurationError:
    """``key``: "name" under [tool.schemagate], or "table.name" for a key of one of its tables."""
    head = key.split(".", 1)[0]
    table, _, name = key.partition(".") if head in TABLE_KEYS or head == "rules" else ("", "", key)
    section = f"[tool.schemagate.{table}]" if table else "[tool.schemagate]"
    return ConfigurationError(f"{section} {name}: {problem}{where}", remedy=remedy, file="pyproject.toml")


def _closest(key: str, known: list[str] | tuple[str, ...]) -> str:
    import difflib  # only for a misspelt key: not on every command's start

    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def schemagate_table(text: str, source: str) -> TomlTable:
    """``[tool.schemagate]`` of a pyproject.toml's text ({} when it has none)."""
    import tomllib  # only where a file is there to read: a run without one does without

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{source} is not valid TOML: {exc}", file=source) from None
    tool = data.get("tool", {})
    table = tool.get("schemagate", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigurationError(
            f"{source}: tool.schemagate must be a table", remedy="write it as [tool.schemagate]", file=source
        )
    return table


def config_file_table(data: bytes, source: str) -> TomlTable:
    """The settings of a ``schemagate.toml`` (its top-level keys are those of [tool.schemagate])."""
    import tomllib  # only where a file is there to read: a run without one does without

    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{source} is not valid UTF-8: {exc}", file=source) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{source} is not valid TOML: {exc}", file=source) from None


def in_config_file(exc: ConfigurationError) -> ConfigurationError:
    """``exc`` (worded for [tool.schemagate] in pyproject.toml) as it applies to schemagate.toml."""
    message = re.sub(r"\[tool\.schemagate\.([a-z_]+)\]", rf"{CONFIG_FILE} [\1]", exc.message)
    message = message.replace("[tool.schemagate]", CONFIG_FILE)
    remedy = exc.remedy and re.sub(r"\[tool\.schemagate\.([a-z_]+)\]", r"[\1]", exc.remedy)
    remedy = remedy and remedy.replace(" under [tool.schemagate]", f" in {CONFIG_FILE}")
    return ConfigurationError(message, remedy=remedy, file=CONFIG_FILE, rule=exc.rule, context=exc.context)


def rule_levels() -> dict[str, str] | None:
    """Every rule a [tool.schemagate.rules] key may name, with its default level: the safety rules
    and the rehearsal's rules (None when the safety rules are not installed: pglast is missing)."""
    try:
        from validator.safety.registry import REGISTRY
    except ImportError:
        return None
    from validator.rehearsal.findings import (
        RULE_BASE_FAILED,
        RULE_BLOCKING_LOCK,
        RULE_DATA_DEPENDENT,
        RULE_FAILED,
        RULE_REWRITE,
    )

    rehearsal = {
        RULE_FAILED: "error",
        RULE_BASE_FAILED: "error",
        RULE_BLOCKING_LOCK: "warning",
        RULE_REWRITE: "warning",
        RULE_DATA_DEPENDENT: "warning",
    }
    return {**{rule.id: rule.severity for rule in REGISTRY}, **rehearsal}


def check_known_keys(table: TomlTable, where: str = "") -> None:
    """Refuse keys that schemagate does not know, in every section, naming the closest known key."""
    known_top = list(TOP_LEVEL_KEYS)
    for key, value in table.items():
        if key not in TOP_LEVEL_KEYS:
            raise _key_error(
                key,
                "unknown key" + where,
                f"{_closest(key, known_top)}known keys: {', '.join(known_top)}",
            )
        is_table = key in TABLE_KEYS or key == "rules"
        if is_table and not isinstance(value, dict):
            raise _key_error(
                key, f"must be a table ([tool.schemagate.{key}]){where}", f"[tool.schemagate.{key}]"
            )
        if not is_table and isinstance(value, dict):
            raise _key_error(
                key, f"must be a value, not a table{where}", f"{key} = ... under [tool.schemagate]"
            )
    for section, keys in TABLE_KEYS.items():
        for key in table.get(section) or {}:
            if key not in keys:
                raise _key_error(
                    f"{section}.{key}",
                    "unknown key" + where,
                    f"{_closest(key, keys)}known keys of [tool.schemagate.{section}]: {', '.join(keys)}",
                )
    rules = table.get("rules") or {}
    levels = rule_levels() if rules else None
    ids = list(levels or ())
    for rule_id, level in rules.items():
        if levels is not None and rule_id not in levels:
            raise ConfigurationError(
                f"[tool.schemagate.rules] {rule_id}: no rule has this id{where}",
                remedy=f"{_closest(rule_id, ids)}see docs/rules.md and docs/rehearsal.md for the rule ids",
                file="pyproject.toml",
                rule=rule_id,
            )
        if level not in RULE_LEVELS:
            raise _key_error(
                f"rules.{rule_id}",
                f"{level!r} is not 'off', 'warning' or 'error'{where}",
                f'{rule_id} = "warning"',
            )


def check_search_path(value: object, key: str = "search_path") -> str:
    """A search_path as PostgreSQL takes it: schema names separated by commas."""
    if not isinstance(value, str) or not _SEARCH_PATH_RE.match(value):
        raise ConfigurationError(
            f"{key} {value!r} is not a list of schema names",
            remedy='write schema names separated by commas, e.g. search_path = "storage, public" '
            "(quote a name with double quotes when it needs them)",
            file="pyproject.toml" if key != "--search-path" else None,
        )
    return value.strip()


def _read_gate_keys(cfg: ValidatorConfig, table: TomlTable, where: str = "") -> None:
    """Set the gate keys of ``cfg`` from ``table`` (already checked by check_known_keys)."""
    if "out_of_order" in table:
        if not isinstance(table["out_of_order"], bool):
            raise _key_error("out_of_order", "must be true or false", "out_of_order = false", where)
        cfg.out_of_order = table["out_of_order"]
    if "target_postgres" in table:
        tp = table["target_postgres"]
        if isinstance(tp, bool) or not isinstance(tp, int) or tp not in SUPPORTED_POSTGRES:
            raise _key_error(
                "target_postgres",
                f"{tp!r} is not a supported major version",
                f"one of {', '.join(map(str, SUPPORTED_POSTGRES))}",
                where,
            )
        cfg.target_postgres = tp
    if "blocking_severity" in table:
        bs = table["blocking_severity"]
        if bs not in ("error", "warning"):
            raise _key_error(
                "blocking_severity",
                f"{bs!r} is neither 'error' nor 'warning'",
                'blocking_severity = "error"',
                where,
            )
        cfg.blocking_severity = bs
    if "accepted_history" in table:
        cfg.accepted_history = _accepted_history(table["accepted_history"], where)
    cfg.rules = dict(table.get("rules") or {})
    lint = dict(table.get("lint") or {})
    for key, value in lint.items():
        default = LINT_DEFAULTS[key]
        wrong = isinstance(value, bool) != isinstance(default, bool) or not isinstance(value, type(default))
        if wrong:
            raise _key_error(
                f"lint.{key}",
                f"{value!r} is not {_KIND[type(default)]}",
                f"{key} = {json.dumps(default)} under [tool.schemagate.lint]",
                where,
            )
    cfg.lint = {"enabled": True, "severity": "warning", **lint}


_KIND = {bool: "true or false", int: "an integer", str: "a string"}


def _accepted_history(value: object, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise _key_error(
            "accepted_history",
            f"{value!r} is not a migration version",
            'write the version as a string, e.g. accepted_history = "040" (every migration up to '
            "and including it is accepted history)",
            where,
        )
    return value.strip()


def load_config(project_root: Path | None = None, *, migrations: Path | None = None) -> ValidatorConfig:
    root = find_project_root(project_root or Path.cwd())
    pyproject = root / "pyproject.toml"
    table: TomlTable = {}
    if pyproject.is_file():
        try:
            text = pyproject.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigurationError(
                f"pyproject.toml is not valid UTF-8: {exc}", file=str(pyproject)
            ) from None
        table = schemagate_table(text, str(pyproject))
    config_file = pyproject if pyproject.is_file() else None
    if (root / CONFIG_FILE).is_file():
        if table:
            raise ConfigurationError(
                f"{root / CONFIG_FILE} and [tool.schemagate] in {pyproject} both configure schemagate",
                remedy=f"keep the settings in one place: move them into {CONFIG_FILE} and remove "
                "[tool.schemagate] from pyproject.toml (or the other way round)",
                file=CONFIG_FILE,
            )
        config_file = root / CONFIG_FILE
        table = config_file_table(config_file.read_bytes(), str(config_file))
        try:
            return _config_from_table(root, table, migrations, pyproject, config_file)
        except ConfigurationError as exc:
            raise in_config_file(exc) from None
    return _config_from_table(root, table, migrations, pyproject, config_file)


def _config_from_table(
    root: Path, table: TomlTable, migrations: Path | None, pyproject: Path, config_file: Path | None
) -> ValidatorConfig:
    check_known_keys(table)
    mig = migrations if migrations is not None else root / str(table.get("migrations", "migrations"))
    cfg = ValidatorConfig(
        project_root=root,
        migrations=Path(mig),
        pyproject=pyproject if pyproject.is_file() else None,
        raw=table,
        config_file=config_file,
    )
    _read_gate_keys(cfg, table)

    executor = dict(table.get("executor") or {})
    if "search_path" in table:
        search_path = check_search_path(table["search_path"])
        other = executor.get("search_path")
        if other is not None and other != search_path:
            raise _key_error(
                "search_path",
                f"{search_path!r} here but {other!r} under [tool.schemagate.executor]",
                "set it in one place: search_path under [tool.schemagate]",
            )
        executor["search_path"] = search_path
    elif executor.get("search_path") is not None:
        executor["search_path"] = check_search_path(executor["search_path"], "executor.search_path")
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
    if executor:
        try:
            cfg.executor = ExecutorSettings().with_overrides(**executor)
        except TypeError as exc:
            raise _key_error("executor", str(exc), "see executor.settings.ExecutorSettings") from None
    return cfg


# -- the gate's own configuration -----------------------------------------------------------------


def with_gate_settings(config: ValidatorConfig, table: TomlTable, source: str) -> ValidatorConfig:
    """``config`` with its gate keys taken from ``table`` (the base ref's [tool.schemagate]; keys it
    does not set get their defaults), everything else kept."""
    where = f" (in pyproject.toml on {source})"
    check_known_keys({k: v for k, v in table.items() if k in GATE_KEYS}, where)
    gated = dataclasses.replace(
        config,
        out_of_order=False,
        target_postgres=DEFAULT_TARGET_POSTGRES,
        blocking_severity="error",
        accepted_history=None,
        rules={},
        lint={"enabled": True, "severity": "warning"},
        gate_source=source,
    )
    _read_gate_keys(gated, table, where)
    return gated
