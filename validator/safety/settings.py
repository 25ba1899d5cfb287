"""``[tool.schemagate]`` as the safety rules see it: which rules run, at which severity, against
which PostgreSQL version.  Blocking (which severity stops the bundle) is applied by the caller."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from executor.errors import ConfigurationError
from validator.config import DEFAULT_TARGET_POSTGRES, ValidatorConfig
from validator.safety.registry import REGISTRY, Registry


@dataclass(frozen=True)
class SafetySettings:
    target_postgres: int
    levels: dict[str, str]  # rule id -> "error" | "warning", enabled rules only

    def enabled(self, rule_id: str) -> bool:
        return rule_id in self.levels


def default_config() -> ValidatorConfig:
    return ValidatorConfig(project_root=Path("."), migrations=Path("migrations"))


def safety_settings(config: ValidatorConfig | None, registry: Registry = REGISTRY) -> SafetySettings:
    """Effective severities; a rule id in ``[tool.schemagate.rules]`` that does not exist is a
    configuration error (exit code 2), never silently ignored."""
    config = config or default_config()
    overrides: dict[str, str] = dict(getattr(config, "rules", {}) or {})
    for rule_id, level in overrides.items():
        if rule_id not in registry:
            close = difflib.get_close_matches(rule_id, registry.ids, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigurationError(
                f"[tool.schemagate.rules] {rule_id}: no safety rule has this id",
                remedy=f"{hint}see docs/rules.md for the rule ids",
                file="pyproject.toml",
                rule=rule_id,
            )
        if level not in ("off", "warning", "error"):
            raise ConfigurationError(
                f"[tool.schemagate.rules] {rule_id}: {level!r} is not 'off', 'warning' or 'error'",
                remedy=f'{rule_id} = "warning"',
                file="pyproject.toml",
                rule=rule_id,
            )
    levels = {}
    for rule in registry:
        level = overrides.get(rule.id, "off" if rule.opt_in else rule.severity)
        if level != "off":
            levels[rule.id] = level
    target = getattr(config, "target_postgres", None) or DEFAULT_TARGET_POSTGRES
    return SafetySettings(target_postgres=int(target), levels=levels)
