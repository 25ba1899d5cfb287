"""Safety rules: stop migrations that would lock or break production before the approval gate.

```python
result = check_safety(parsed_files, config)   # SafetyResult(findings, suppressions)
result = check_sql("ALTER TABLE users DROP COLUMN email;")
```

Rules live one per module in ``validator/safety/rules/``, listed in ``registry.REGISTRY``;
``python -m validator.safety.docs`` writes docs/rules.md from it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from validator.safety.check import SafetyResult, check_files
from validator.safety.registry import REGISTRY
from validator.safety.settings import safety_settings
from validator.safety.source import source_file
from validator.safety.suppressions import Suppression

if TYPE_CHECKING:
    from validator.config import ValidatorConfig
    from validator.parsed import ParsedFile
    from validator.safety.catalog_cache import CatalogCache

__all__ = [
    "DESTRUCTIVE_RULES",
    "REGISTRY",
    "SafetyResult",
    "Suppression",
    "check_safety",
    "check_sql",
    "sqlfluff_overlap",
]

# rules whose findings destroy data (report.md lists them first, suppressed or not)
DESTRUCTIVE_RULES = frozenset(rule.id for rule in REGISTRY if rule.destructive)

# sqlfluff's postgres rules and the schemagate rules that report the same problems.  When any of
# these schemagate rules is enabled, the sqlfluff code is dropped from lint findings, so a problem
# is reported once, by the rule that knows about same-file tables and the target version.
SQLFLUFF_EQUIVALENTS: dict[str, tuple[str, ...]] = {
    # PG01 postgres.excessive_locks: CREATE/DROP INDEX, REINDEX and REFRESH MATERIALIZED VIEW
    # without CONCURRENTLY
    "PG01": (
        "require-concurrent-index-creation",
        "require-concurrent-index-deletion",
        "require-concurrent-reindex",
        "require-concurrent-refresh",
    ),
    # PG02 postgres.not_valid_foreign_key: ADD CONSTRAINT ... FOREIGN KEY without NOT VALID
    "PG02": ("adding-foreign-key-constraint",),
}


def check_safety(
    parsed: Sequence[ParsedFile],
    config: ValidatorConfig | None,
    *,
    judged: Collection[str] | None = None,
    catalog_cache: CatalogCache | None = None,
) -> SafetyResult:
    """Run the enabled safety rules over ``parsed`` (ParsedFile objects in apply order).
    ``judged``: the rel paths whose findings are wanted (None: all); the other files are only read
    for what they create (accepted history), or not at all when ``catalog_cache`` knows what the
    ones before the first judged file created (``validator.safety.catalog_cache``)."""
    return check_files(parsed, config, judged=judged, catalog_cache=catalog_cache)


def check_sql(
    sql: str | dict[str, str],
    *,
    file: str = "V1__test.sql",
    config: ValidatorConfig | None = None,
    transactional: bool | None = None,
) -> SafetyResult:
    """Check SQL text (or ``{file name: sql}`` in apply order); for tests and docs examples."""
    files = sql if isinstance(sql, dict) else {file: sql}
    parsed = [source_file(text, file=name, transactional=transactional) for name, text in files.items()]
    return check_files(parsed, config)


def sqlfluff_overlap(config: ValidatorConfig | None) -> set[str]:
    """sqlfluff rule codes whose problem an enabled schemagate rule already reports."""
    settings = safety_settings(config)
    return {code for code, ids in SQLFLUFF_EQUIVALENTS.items() if any(settings.enabled(i) for i in ids)}
