"""The run options every kind of invocation may carry, and the checks their values go through.

``dry_run``, ``allow_out_of_order``, ``allow_missing``, ``schema``, ``lock_timeout``,
``statement_timeout``, ``search_path``, ``pipeline_execution_id``, ``artifact``: from CodePipeline's
``UserParameters`` JSON (``executor.pipeline_job``), a direct invocation's keys or a custom resource's
properties (``executor.events``).  A leaf below both parsers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from executor.errors import ConfigurationError

_BOOL_OPTIONS = ("dry_run", "allow_out_of_order", "allow_missing")
_TEXT_OPTIONS = (
    "schema",
    "lock_timeout",
    "statement_timeout",
    "search_path",
    "pipeline_execution_id",
    "artifact",
)
KNOWN_OPTIONS = _BOOL_OPTIONS + _TEXT_OPTIONS
_SETTINGS_OPTIONS = (
    "dry_run",
    "allow_out_of_order",
    "allow_missing",
    "schema",
    "lock_timeout",
    "statement_timeout",
    "search_path",
)


@dataclass(frozen=True)
class RunOptions:
    dry_run: bool = False
    allow_out_of_order: bool | None = None
    allow_missing: bool | None = None
    schema: str | None = None
    lock_timeout: str | None = None
    statement_timeout: str | None = None
    search_path: str | None = None
    pipeline_execution_id: str | None = None
    artifact: str | None = None

    def settings_overrides(self) -> dict[str, Any]:
        """Keyword arguments for ``ExecutorSettings.with_overrides`` (None = keep the default)."""
        return {name: getattr(self, name) for name in _SETTINGS_OPTIONS if getattr(self, name) is not None}

    @classmethod
    def parse(cls, data: Mapping[str, Any], *, where: str, ignore: tuple[str, ...] = ()) -> RunOptions:
        unknown = sorted(set(data) - set(KNOWN_OPTIONS) - set(ignore))
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) in {where}: {', '.join(unknown)}",
                remedy=f"known options: {', '.join(KNOWN_OPTIONS)}",
            )
        values: dict[str, Any] = {}
        for name in _BOOL_OPTIONS:
            if name in data and data[name] is not None:
                values[name] = as_bool(data[name], name=name, where=where)
        for name in _TEXT_OPTIONS:
            value = data.get(name)
            if value is None or value == "":
                continue
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ConfigurationError(
                    f"{name} in {where} must be a string", remedy=f'write it like "{name}": "..."'
                )
            values[name] = str(value)
        return cls(**values)


def as_bool(value: Any, *, name: str, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"  # CloudFormation passes every property as a string
    raise ConfigurationError(
        f"{name} in {where} must be true or false, not {value!r}", remedy=f'"{name}": true'
    )


def require(mapping: object, key: str, where: str) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise ConfigurationError(
            f"the {where} has no {key}", remedy="invoke the executor from a CodePipeline Lambda invoke action"
        )
    return mapping[key]


def text_param(params: Mapping[str, Any], key: str, where: str) -> str | None:
    value = params.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{key} in {where} must be a string", remedy=f'write it like "{key}": "..."')
    return value
