"""The gate's own configuration: with a base ref it is the base ref's, and what a change does to it.

A pull request must not switch off the checks it is judged by (a rule set to "off" next to the
migration that breaks it).  So with a base ref -- pull-request and main-branch builds -- the gate
keys of ``[tool.schemagate]`` (``validator.config.GATE_KEYS``) and the project's sqlfluff
configuration files are read from the base ref's tip (``git cat-file``), not from the working
tree; where the base ref has no ``[tool.schemagate]`` the defaults apply, and where its
configuration is invalid too (a typo that reached the branch must not lock the gate open).

What the change does to them is compared with the merge base (what this change started from):
``gate_changes`` for the keys of ``[tool.schemagate]`` (effective values: a key set to its default
is no change), ``sqlfluff_changes`` for every sqlfluff setting of every configuration file.  A
change that also adds, edits or deletes a migration gets one blocking ``gate-config-changed``
finding per changed key; a configuration change alone passes, and the report lists it, because it
is its own reviewed merge and takes effect once merged.
"""

from __future__ import annotations

import configparser
import json
import tempfile
import tomllib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from executor.errors import ConfigurationError
from validator.config import (
    CONFIG_FILE,
    DEFAULT_TARGET_POSTGRES,
    LINT_DEFAULTS,
    TomlTable,
    ValidatorConfig,
    config_file_table,
    rule_levels,
    schemagate_table,
    with_gate_settings,
)
from validator.findings import ERROR, Finding

if TYPE_CHECKING:
    from validator.discovery import MigrationFile
    from validator.findings import JSONObject
    from validator.reports import JUnitCase

RULE_GATE_CONFIG_CHANGED = "gate-config-changed"
CONFIGURATION_DOCS = (
    "https://github.com/schemagate/schemagate/blob/main/README.md#the-gates-own-configuration"
)


@dataclass(frozen=True)
class GateChange:
    """One gate setting that differs between the base ref and this change."""

    key: str  # e.g. "rules.require-concurrent-index-creation", ".sqlfluff [sqlfluff] rules"
    old: str  # as shown to the reader: '"error" (default)', '(not set)'
    new: str

    def describe(self) -> str:
        return f"{self.key}: {self.old} -> {self.new}"


_NOT_SET = "(not set)"


def _shown(value: Any, default: bool = False) -> str:
    text = json.dumps(value) if not isinstance(value, str) or value != _NOT_SET else value
    return f"{text} (default)" if default else text


def gate_view(table: TomlTable) -> dict[str, tuple[Any, bool]]:
    """The effective gate settings of a [tool.schemagate] table, flattened: key -> (value, is the
    default).  Rules the table does not name are left out (``gate_changes`` fills in defaults)."""
    defaults: dict[str, Any] = {
        "out_of_order": False,
        "target_postgres": DEFAULT_TARGET_POSTGRES,
        "blocking_severity": "error",
        "accepted_history": None,
    }
    view: dict[str, tuple[Any, bool]] = {}
    for key, default in defaults.items():
        view[key] = (table[key], False) if key in table else (default, True)
    if isinstance(view["accepted_history"][0], int):
        view["accepted_history"] = (str(view["accepted_history"][0]), False)
    lint = table.get("lint") or {}
    for key, default in LINT_DEFAULTS.items():
        view[f"lint.{key}"] = (lint[key], False) if key in lint else (default, True)
    for rule_id, level in (table.get("rules") or {}).items():
        view[f"rules.{rule_id}"] = (level, False)
    return view


def gate_changes(old: TomlTable, new: TomlTable) -> list[GateChange]:
    """The gate settings that differ between two [tool.schemagate] tables (base ref, this change);
    a key set to what its default already was is no change."""
    before, after = gate_view(old), gate_view(new)
    changes = []
    for key in sorted(set(before) | set(after), key=lambda k: (k.startswith(("lint.", "rules.")), k)):
        if key.startswith("rules.") and (key not in before or key not in after):
            level = (rule_levels() or {}).get(key.removeprefix("rules."), _NOT_SET)
            fill = (level, True)
            before.setdefault(key, fill)
            after.setdefault(key, fill)
        (old_value, old_default), (new_value, new_default) = before[key], after[key]
        if old_value != new_value:
            changes.append(GateChange(key, _shown(old_value, old_default), _shown(new_value, new_default)))
    return changes


def sqlfluff_settings(label: str, text: str) -> dict[str, str]:
    """The sqlfluff settings in one configuration file, flattened to ``"<file> [section] key"`` ->
    value (pyproject.toml: its [tool.sqlfluff] tables; other files: their sqlfluff INI sections)."""
    if label.rsplit("/", 1)[-1] == "pyproject.toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            return {f"{label} (unreadable)": f"not valid TOML: {exc}"}
        out: dict[str, str] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}", v)
            else:
                section, _, key = prefix.rpartition(".")
                out[f"{label} [{section}] {key}"] = json.dumps(value)

        tool = data.get("tool", {})
        if isinstance(tool, dict) and "sqlfluff" in tool:
            walk("tool.sqlfluff", tool["sqlfluff"])
        return out
    # as sqlfluff reads them (sqlfluff.core.config.ini): "=" only, case-sensitive, no interpolation
    parser = configparser.ConfigParser(delimiters="=", interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        return {f"{label} (unreadable)": f"not valid INI: {' '.join(str(exc).split())}"}
    return {
        f"{label} [{section}] {key}": json.dumps(value)
        for section in parser.sections()
        if section == "sqlfluff" or section.startswith("sqlfluff:")
        for key, value in parser.items(section)
    }


def sqlfluff_changes(old: dict[str, str], new: dict[str, str]) -> list[GateChange]:
    """Changed sqlfluff settings between two sets of configuration files (label -> text)."""
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    for label, text in old.items():
        before.update(sqlfluff_settings(label, text))
    for label, text in new.items():
        after.update(sqlfluff_settings(label, text))
    return [
        GateChange(key, before.get(key, _NOT_SET), after.get(key, _NOT_SET))
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


# -- the gate's configuration of a base ref ---------------------------------------------------------


@dataclass
class GateConfiguration:
    """Where the gate's configuration came from and what this change does to it (a report section)."""

    source: str  # the base ref
    commit: str
    changes: list[GateChange]
    blocking: bool = False  # the change edits migrations too
    note: str | None = None  # e.g. the base ref's configuration was invalid, so the defaults apply

    title = "Gate configuration"

    def findings(self) -> list[Finding]:
        """One blocking finding per changed key, when the change edits migrations too."""
        if not self.blocking:
            return []
        return [
            Finding(
                rule=RULE_GATE_CONFIG_CHANGED,
                family="integrity",
                severity=ERROR,
                file=None,
                line=None,
                column=None,
                message=f"the gate's configuration changes together with migrations: {c.key} is {c.new} "
                f"here, {c.old} on {self.source}; the migrations were judged with {self.source}'s "
                "configuration, because a change must not loosen the checks it is judged by",
                help="a gate configuration change needs its own reviewed merge: merge the configuration "
                f"change alone first (a pull request that changes no migration), then this one; or keep "
                f"{c.key} as it is on {self.source}",
                docs=CONFIGURATION_DOCS,
            )
            for c in self.changes
        ]

    def console_note(self) -> str | None:
        if self.note:
            return f"gate configuration: {self.note}"
        if not self.changes or self.blocking:
            return None
        listed = "; ".join(c.describe() for c in self.changes)
        return (
            f"gate configuration: judged with {self.source}'s; this change edits it ({listed}), "
            "which takes effect once merged"
        )

    def markdown(self) -> str:
        lines = [f"Judged with the configuration of `{self.source}` (`{self.commit[:12]}`)."]
        if self.note:
            lines += ["", self.note]
        if not self.changes:
            lines += ["", "This change does not edit it."]
            return "\n".join(lines) + "\n"
        verdict = (
            "**It also changes migrations, so the configuration change blocks** (`gate-config-changed`): "
            "merge the configuration change alone first."
            if self.blocking
            else "It changes no migration: the new configuration takes effect once this is merged. "
            "Review it as a change to the gate itself."
        )
        lines += ["", f"This change edits the gate's configuration. {verdict}", ""]
        lines += [f"| setting | on `{self.source}` | in this change |", "|---|---|---|"]
        for c in self.changes:
            cells = (f"`{c.key}`", c.old, c.new)
            lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
        return "\n".join(lines) + "\n"

    def to_json(self) -> JSONObject:
        return {
            "source": self.source,
            "commit": self.commit,
            "blocking": self.blocking,
            "note": self.note,
            "changes": [{"key": c.key, "old": c.old, "new": c.new} for c in self.changes],
        }

    def junit_suite(self) -> tuple[str, list[JUnitCase]]:
        """One passing case that says where the configuration came from (the blocking findings, if
        any, are in the integrity suite)."""
        from validator.reports import JUnitCase

        out = "\n".join(c.describe() for c in self.changes) or None
        name = f"configuration of {self.source}"
        return "gate-configuration", [JUnitCase(name=name, classname="schemagate.gate", system_out=out)]


def gate_configuration(
    config: ValidatorConfig, files: list[MigrationFile], base_ref: str, stack: ExitStack
) -> tuple[ValidatorConfig, GateConfiguration]:
    """``config`` with the gate keys and the sqlfluff configuration files of ``base_ref``, and what
    this change does to them.  The base ref's sqlfluff files are copied into a temporary directory
    (removed by ``stack``) laid out like the project, where lint reads them."""
    from validator.gitref import project_files_at_ref
    from validator.lint import config_file_candidates

    directories = {(config.migrations / PurePosixPath(mf.rel)).parent for mf in files} or {config.migrations}
    candidates = config_file_candidates(config, sorted(directories))
    candidates += [rel for rel in ("pyproject.toml", CONFIG_FILE) if rel not in candidates]
    at_ref = project_files_at_ref(config.project_root, config.migrations, base_ref, candidates)

    def table(files_: dict[str, bytes]) -> TomlTable:
        if CONFIG_FILE in files_:  # schemagate.toml: the settings at its top level
            return config_file_table(files_[CONFIG_FILE], f"{CONFIG_FILE} on {base_ref}")
        data = files_.get("pyproject.toml")
        if data is None:
            return {}
        return schemagate_table(data.decode("utf-8", errors="replace"), f"pyproject.toml on {base_ref}")

    note = None
    try:
        gated = with_gate_settings(config, table(at_ref.tip), base_ref)
    except ConfigurationError as exc:  # not this change's doing, and it must not lock the gate open
        gated = with_gate_settings(config, {}, base_ref)
        note = (
            f"the configuration on {base_ref} is invalid ({exc.message}), so the defaults are used; "
            "fix it in a change of its own"
        )
    try:
        before = table(at_ref.before)
    except ConfigurationError:
        before = {}
    changes = gate_changes(before, config.raw)

    def texts(files_: dict[str, bytes]) -> dict[str, str]:  # the sqlfluff configuration files
        return {
            rel: data.decode("utf-8", errors="replace") for rel, data in files_.items() if rel != CONFIG_FILE
        }

    on_disk = {}
    for rel in candidates:
        path = config.project_root / rel
        if path.is_file():
            on_disk[rel] = path.read_bytes()
    changes += sqlfluff_changes(texts(at_ref.before), texts(on_disk))

    copy = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="schemagate-gate-config-")))
    for rel, data in at_ref.tip.items():
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).write_bytes(data)
    gated.lint_config_root = copy
    return gated, GateConfiguration(source=base_ref, commit=at_ref.commit, changes=changes, note=note)
