"""Every rule a finding can carry, in one list: id, family, default severity, summary, what to do, docs.

The safety rules come from their registry (``validator.safety.registry``, documented in
docs/rules.md); the rehearsal's rules are documented in docs/rehearsal.md; the checks of the other
families (naming, order, syntax, integrity, lint) are listed here and documented in docs/checks.md,
which ``python -m validator.rule_catalog`` generates from this module (``--check`` fails when the
page is out of date; a test runs it).

Readers: ``schemagate rules`` / ``schemagate explain RULE``, the SARIF report's
``tool.driver.rules``.  sqlfluff's rules appear as ``lint-<CODE>`` (``lint-LT01``): they are
sqlfluff's, documented by sqlfluff, and described from sqlfluff itself where it is installed.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from validator.findings import ERROR, WARNING, docs_link

CHECKS_PAGE = "checks.md"
DOCS_PATH = Path(__file__).resolve().parents[1] / "docs" / CHECKS_PAGE
SQLFLUFF_RULES_DOCS = "https://docs.sqlfluff.com/en/stable/reference/rules.html"
LINT_RULE = re.compile(r"^lint-(?P<code>[A-Z]{2}\d{2})$")


@dataclass(frozen=True)
class CatalogRule:
    id: str
    family: str  # validator.findings.FAMILIES
    severity: str  # default: "error" or "warning"
    summary: str  # one line: what the rule reports
    description: str  # why it matters (the consequence)
    remedy: str  # what to do about it
    docs: str  # the page (and anchor) that documents it
    configurable: bool = False  # [tool.schemagate.rules] may change its level
    opt_in: bool = False  # off unless [tool.schemagate.rules] names it

    @property
    def level(self) -> str:
        return "off (opt-in)" if self.opt_in else self.severity


def _checks(rule_id: str) -> str:
    return docs_link(CHECKS_PAGE, rule_id)


def _rule(
    rule_id: str, family: str, severity: str, summary: str, description: str, remedy: str
) -> CatalogRule:
    return CatalogRule(rule_id, family, severity, summary, description, remedy, _checks(rule_id))


# the checks documented on docs/checks.md, in the order of validator.findings.FAMILIES
STRUCTURAL_RULES: tuple[CatalogRule, ...] = (
    _rule(
        "naming-malformed",
        "naming",
        ERROR,
        "A file that looks like a migration of the directory's layout but is not named like one.",
        "The file would never be applied (a warning where the tool itself ignores such a file, as "
        "Drizzle ignores SQL its journal does not list).",
        "Rename it as the finding's help shows (`V<version>__<description>.sql` for Flyway, or the "
        "layout's own pattern: docs/layouts/), or move it out of the migrations directory.",
    ),
    _rule(
        "naming-empty-file",
        "naming",
        ERROR,
        "A migration holds no SQL (empty, or only white space and comments).",
        "It would be recorded as applied without changing anything, and its version would be used up.",
        "Write the change into it, or delete it.",
    ),
    _rule(
        "naming-not-utf8",
        "naming",
        ERROR,
        "A migration is not valid UTF-8.",
        "PostgreSQL would read different characters than the author wrote; the checksum of the bytes "
        "would not match what the author reviewed.",
        "Save the file as UTF-8 (`iconv -f latin1 -t utf-8 FILE > FILE.new`) under the same name.",
    ),
    _rule(
        "symlink-outside",
        "naming",
        ERROR,
        "A symbolic link in the migrations directory points outside it.",
        "What it points at is not reviewed with the migrations and could change without a pull request.",
        "Copy the file into the migrations directory and delete the link, or point `--migrations` at the "
        "directory that really holds it.",
    ),
    _rule(
        "file-too-large",
        "naming",
        ERROR,
        "A migration is larger than `max_file_mb` (16 MiB by default) and was not read.",
        "A file this large is a data load; validating it would take minutes and gigabytes.",
        "Load bulk data with COPY from a file outside the migrations, or split the migration; raise "
        "`max_file_mb` under `[tool.schemagate]` if it really must be one migration.",
    ),
    _rule(
        "duplicate-version",
        "order",
        ERROR,
        "Two files have the same version (`V1` and `V001` are the same version).",
        "Only one of them could ever be applied, and which one would depend on the machine.",
        "Give one of them a version of its own (`schemagate new <description>` picks the next one), or "
        "merge them.",
    ),
    _rule(
        "duplicate-repeatable",
        "order",
        ERROR,
        "Two repeatable migrations have the same description.",
        "The history records repeatables by description: the two would overwrite each other's checksum.",
        "Rename one of them, or merge them.",
    ),
    _rule(
        "undo-without-version",
        "order",
        ERROR,
        "An undo file `U<v>__...` has no versioned file `V<v>__...` to reverse.",
        "The undo script could never be applied.",
        "Name the undo file after the versioned file it reverses, or delete it.",
    ),
    _rule(
        "version-gap",
        "order",
        WARNING,
        "Counter versions skip a number (`V004` follows `V002`).",
        "A migration deleted or lost in a merge, or not merged yet, leaves such a gap.",
        "Check that no migration was lost; if the gap is intended, ignore the warning.",
    ),
    _rule(
        "migration-modified",
        "order",
        ERROR,
        "A versioned migration merged to the base ref was changed (`--base-ref`).",
        "Databases that already applied it would not get the change, and the executor refuses the "
        "changed checksum as drift.",
        "Restore it (`git checkout <base> -- <path>`) and put the change into a new migration.",
    ),
    _rule(
        "migration-renamed",
        "order",
        ERROR,
        "A versioned migration of the base ref was renamed (`--base-ref`).",
        "Databases record migrations by version and name, so the executor would apply it again.",
        "Keep the old name (`git mv NEW OLD`).",
    ),
    _rule(
        "migration-deleted",
        "order",
        ERROR,
        "A versioned migration of the base ref was deleted (`--base-ref`).",
        "Databases that applied it keep its changes, and the executor refuses a history whose applied "
        "version is missing.",
        "Restore it; to reverse its change, add a new migration.",
    ),
    _rule(
        "version-not-increasing",
        "order",
        ERROR,
        "A new migration's version is not above the highest version on the base ref (`--base-ref`).",
        "Databases already past that version would refuse it as out of order.",
        "Renumber it after the highest version (`schemagate new` picks the next number), or set "
        "`out_of_order = true` under `[tool.schemagate]` if applying it late is intended.",
    ),
    _rule(
        "syntax-error",
        "syntax",
        ERROR,
        "PostgreSQL's own parser (through pglast) refuses a statement.",
        "The migration would fail when applied.",
        "Fix the statement at the line and column given.",
    ),
    _rule(
        "plpgsql-syntax-error",
        "syntax",
        ERROR,
        "The PL/pgSQL body of a function, procedure or DO block does not parse.",
        "PostgreSQL would refuse the statement (a DO block) or the function would fail on its first call.",
        "Fix the PL/pgSQL code at the line given.",
    ),
    _rule(
        "control-character",
        "syntax",
        ERROR,
        "A control character (NUL, vertical tab, a lone carriage return, other C0/C1 controls, DEL).",
        "PostgreSQL and editors read such a file differently: SQL after a NUL escapes every check, a lone "
        "carriage return ends a `--` comment where no line break shows. The executor refuses the file.",
        "Remove the character; write one a migration needs as an escape (`E'\\x01'`, `chr(1)`).",
    ),
    _rule(
        "explicit-transaction-control",
        "syntax",
        ERROR,
        "A transaction statement other than a plain `BEGIN ... COMMIT` around the whole file.",
        "The executor runs each file in a transaction of its own; SAVEPOINT, ROLLBACK, COMMIT in the "
        "middle or BEGIN with options would break that, so the executor refuses the file.",
        "Remove the statement (catch an expected error in a DO block with an EXCEPTION clause); keep a "
        "wrapper plain. An old file that is applied already and must not change (a backfill committed "
        "batch by batch by hand) is not refused when it is accepted history (`accepted_history`, or "
        "unchanged since `--base-ref`): it is bundled with `own_transactions`, `validate` names it in a "
        'note, `plan` shows it as "runs as written", and a database that lacks it (a new environment, '
        "the rehearsal's base) runs it as psql did, each statement on its own with its BEGIN, COMMIT and "
        "SAVEPOINT, its history row after its last statement. That is not atomic: a failure leaves what it "
        "committed before, with a `success = false` row for `schemagate repair`; a run killed in the middle "
        "leaves what it committed and no row, so the next apply runs the file again from its start (as "
        "Flyway and psql would); a file that ends inside a transaction it opened has that transaction "
        "rolled back and fails (`transaction-left-open`).",
    ),
    _rule(
        "non-transactional-in-transaction",
        "syntax",
        ERROR,
        "A statement that cannot run in a transaction block (CREATE INDEX CONCURRENTLY, VACUUM, ...) in a "
        "file wrapped in BEGIN ... COMMIT.",
        "PostgreSQL refuses it when the file is applied.",
        "Remove the BEGIN and COMMIT lines (the file then runs without a transaction), or move the "
        "statement into a migration of its own.",
    ),
    _rule(
        "needs-transaction-block",
        "syntax",
        ERROR,
        "A statement that only works in a transaction block (LOCK, SET LOCAL, DECLARE, ...) in a file "
        "that runs without one.",
        "Outside a transaction block it fails or does nothing.",
        "Move it into a separate migration, or move the non-transactional statement into a file of its "
        "own; set timeouts with a `-- schemagate:set lock_timeout=10s` header line.",
    ),
    _rule(
        "executor-split-mismatch",
        "syntax",
        ERROR,
        "The executor would split the file into statements differently from PostgreSQL's parser.",
        "The executor would send a fragment, or statements nobody checked.",
        "Report the file (it is a schemagate bug); meanwhile quote identifiers named like keywords or "
        "dollar-quote function bodies.",
    ),
    _rule(
        "bad-header-setting",
        "syntax",
        ERROR,
        "A `-- schemagate:set key=value` header line the executor would refuse.",
        "The executor would refuse the file before running it.",
        "Use a known key with a valid value, e.g. "
        "`-- schemagate:set lock_timeout=10s statement_timeout=1h lock_retries=5`.",
    ),
    _rule(
        "gate-config-changed",
        "integrity",
        ERROR,
        "The gate's own configuration changes in the same change as migrations (`--base-ref`).",
        "A change must not loosen the checks it is judged by: the migrations were judged with the base "
        "ref's configuration.",
        "Merge the configuration change alone first, then the migrations.",
    ),
    _rule(
        "checksum-drift",
        "integrity",
        ERROR,
        "`validate --database-url`: an applied migration's file differs from what the database recorded.",
        "The database ran other SQL than the file now says; apply refuses the run.",
        "Restore the file as it was applied and put the change into a new migration; if the edit is "
        "harmless (a comment), `schemagate repair --realign-checksums`.",
    ),
    _rule(
        "missing-migration",
        "integrity",
        ERROR,
        "`validate --database-url`: the database recorded a versioned migration that no file provides.",
        "Its changes are in the database but not in the history; apply refuses the run.",
        "Restore the file, or run apply with `--allow-missing` if it was removed on purpose.",
    ),
    _rule(
        "failed-migration",
        "integrity",
        ERROR,
        "`validate --database-url`: the database holds a failed (`success = false`) history row.",
        "A migration that runs without a transaction stopped part-way; apply refuses to run until a "
        "person has looked.",
        "Finish or undo its changes by hand, then `schemagate repair`.",
    ),
    _rule(
        "out-of-order",
        "integrity",
        ERROR,
        "`validate --database-url`: a pending version is below the highest applied one.",
        "apply refuses it unless out-of-order application is allowed.",
        "Renumber it above the highest applied version, or allow it (`out_of_order = true`, "
        "`apply --out-of-order`).",
    ),
    _rule(
        "pending-migration",
        "integrity",
        WARNING,
        "`validate --database-url`: a migration that the database has not applied yet.",
        "Not a problem in itself: this is what `apply` would run. `flyway validate` fails on it by "
        'default; schemagate warns (it blocks with `blocking_severity = "warning"`).',
        "Apply it (`schemagate apply`), or ignore the warning when validating a change before it is "
        "deployed.",
    ),
    _rule(
        "lint",
        "lint",
        ERROR,
        "sqlfluff could not lint (its configuration is invalid, or a worker failed).",
        "Without lint the judged files are not style-checked.",
        "Fix the sqlfluff configuration the message names (`.sqlfluff`, `[tool.sqlfluff]`) or "
        "`[tool.schemagate.lint]`.",
    ),
)

REHEARSAL_RULES: tuple[CatalogRule, ...] = tuple(
    CatalogRule(
        rule_id, "rehearsal", severity, summary, description, remedy, docs_link("rehearsal.md", rule_id), True
    )
    for rule_id, severity, summary, description, remedy in (
        (
            "rehearsal-failed",
            ERROR,
            "A new migration failed on the rehearsal database.",
            "It fails on a database built from every earlier migration, so it would fail in production too.",
            "Fix the migration at the line PostgreSQL reported; `schemagate validate --rehearse` checks it.",
        ),
        (
            "rehearsal-base-failed",
            ERROR,
            "A migration of the base history failed on the empty rehearsal database.",
            "The new migrations could not be rehearsed; production has something no migration creates.",
            "Create the roles, extensions or schemas it relies on in the rehearsal setup script "
            "(`[tool.schemagate.rehearsal] setup`).",
        ),
        (
            "rehearsal-blocking-lock",
            WARNING,
            "The migration held a lock that blocks writes on a table that existed before it.",
            "On a busy table every write (with ACCESS EXCLUSIVE every read too) waits for the migration.",
            "Use the non-blocking form (CREATE INDEX CONCURRENTLY, NOT VALID then VALIDATE CONSTRAINT).",
        ),
        (
            "rehearsal-table-rewrite",
            WARNING,
            "The migration rewrote a table (its relfilenode changed).",
            "Every row was copied under ACCESS EXCLUSIVE, for a time proportional to the table's size.",
            "Add the column without a volatile default and backfill in batches, or change the type "
            "through a new column.",
        ),
        (
            "rehearsal-data-dependent",
            WARNING,
            "A data-dependent statement failed on rows that production commonly holds.",
            "The data probe ran the statement on a rolled-back copy of the rehearsal database holding rows "
            "it cannot accept (a duplicate, a NULL, a row breaking a CHECK, an orphan, a value the new type "
            "refuses): production's rows may make the migration fail after the approval.",
            "Clean the data first (in this migration or an earlier one), backfill before SET NOT NULL, or "
            "add the constraint NOT VALID and VALIDATE it after the clean-up.",
        ),
    )
)


def safety_rules() -> tuple[CatalogRule, ...]:
    """The safety registry's rules as catalogue entries (none when pglast is not installed)."""
    try:
        from validator.safety.registry import REGISTRY
    except ImportError:
        return ()
    return tuple(
        CatalogRule(
            id=rule.id,
            family="safety",
            severity=rule.severity,
            summary=rule.summary,
            description=rule.docs.why,
            remedy=f"Best practice:\n{rule.docs.best_practice.strip()}",
            docs=docs_link("rules.md", rule.id),
            configurable=True,
            opt_in=rule.opt_in,
        )
        for rule in REGISTRY
    )


def all_rules() -> list[CatalogRule]:
    """Every rule, by family (FAMILIES order), the safety rules in their registry's order."""
    from validator.findings import FAMILIES

    rules = [*STRUCTURAL_RULES, *safety_rules(), *REHEARSAL_RULES]
    order = {family: n for n, family in enumerate(FAMILIES)}
    return sorted(rules, key=lambda r: order[r.family])  # stable: keeps each family's own order


def lint_rule(rule_id: str) -> CatalogRule | None:
    """``lint-LT01`` as a catalogue entry, described by sqlfluff where it is installed."""
    match = LINT_RULE.match(rule_id)
    if match is None:
        return None
    code = match.group("code")
    summary = f"sqlfluff rule {code}."
    try:
        import sqlfluff

        for rule in sqlfluff.list_rules():
            if rule.code == code:
                summary = f"sqlfluff {code} ({rule.name}): {rule.description}"
                break
    except ImportError:
        pass
    return CatalogRule(
        id=rule_id,
        family="lint",
        severity=WARNING,
        summary=summary,
        description="A style or correctness rule of sqlfluff (the `lint` extra), with the project's "
        "sqlfluff configuration.",
        remedy=f"Change the statement, silence the line with `-- noqa: {code}`, or configure the rule in the "
        "project's .sqlfluff.",
        docs=f"{SQLFLUFF_RULES_DOCS}#sqlfluff.rules.sphinx.Rule_{code}",
    )


def find_rule(rule_id: str) -> CatalogRule | None:
    for rule in all_rules():
        if rule.id == rule_id:
            return rule
    return lint_rule(rule_id)


def closest_rules(rule_id: str, n: int = 3) -> list[str]:
    import difflib

    return difflib.get_close_matches(rule_id, [r.id for r in all_rules()], n=n, cutoff=0.5)


# -- docs/checks.md ---------------------------------------------------------------------------

_FAMILY_TITLES = {
    "naming": "Naming: which files are migrations",
    "order": "Order: versions, and what changed since the base ref",
    "syntax": "Syntax: what PostgreSQL and the executor would refuse",
    "integrity": "Integrity: the gate's configuration, and the database (`validate --database-url`)",
    "lint": "Lint: sqlfluff",
}


def render_checks_page() -> str:
    lines = [
        "# Checks",
        "",
        "<!-- generated by `python -m validator.rule_catalog` from validator/rule_catalog.py; "
        "do not edit by hand -->",
        "",
        "Every finding names the rule that reported it. The safety rules are on [rules.md](rules.md), the "
        "rehearsal's on [rehearsal.md](rehearsal.md); these are the others. They always run and cannot be "
        "turned off (`[tool.schemagate.rules]` sets the levels of the safety and rehearsal rules only). "
        "`schemagate rules` lists every rule and `schemagate explain RULE` shows its page in the terminal.",
        "",
        "| rule | family | severity | summary |",
        "|---|---|---|---|",
    ]
    lines += [f"| [{r.id}](#{r.id}) | {r.family} | {r.severity} | {r.summary} |" for r in STRUCTURAL_RULES]
    lines.append(
        "| `lint-<CODE>` | lint | warning (`[tool.schemagate.lint] severity`) | a sqlfluff rule, e.g. "
        f"`lint-LT01`: see [sqlfluff's rules]({SQLFLUFF_RULES_DOCS}) |"
    )
    lines.append("")
    for family, title in _FAMILY_TITLES.items():
        members = [r for r in STRUCTURAL_RULES if r.family == family]
        if not members:
            continue
        lines += [f"# {title}", ""]
        for r in members:
            lines += [
                f"## {r.id}",
                "",
                f"**{r.severity}.** {r.summary}",
                "",
                f"**Why.** {r.description}",
                "",
                f"**What to do.** {r.remedy}",
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render_checks_page()
    if "--check" in argv:
        current = DOCS_PATH.read_text(encoding="utf-8") if DOCS_PATH.is_file() else ""
        if current != text:
            print(f"{DOCS_PATH} is out of date: run `python -m validator.rule_catalog`", file=sys.stderr)
            return 1
        return 0
    DOCS_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {DOCS_PATH} ({len(STRUCTURAL_RULES)} checks)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
