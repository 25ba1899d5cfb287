"""One migration made ready to run: its SQL, header settings and statements read from the bundle, and
what must not run refused before anything does."""

from __future__ import annotations

from dataclasses import dataclass

from executor import sqltext
from executor.bundle import Bundle
from executor.errors import ConfigurationError, MigrationRefused, SecurityViolation
from executor.headers import (
    HEADER_KEYS,
    MigrationStatements,
    Statement,
    line_and_column,
    migration_statements,
    parse_header_settings,
)
from executor.manifest import ManifestEntry
from executor.settings import ExecutorSettings


@dataclass
class Prepared:
    """One pending migration read and checked, ready to run: its SQL, its statements, its settings."""

    entry: ManifestEntry
    why: str  # a PlanReason, or what an undo reverses
    sql: str
    statements: list[Statement]
    lock_timeout: str
    statement_timeout: str
    lock_retries: int
    capped: bool = False  # statement_timeout was shortened to the executor's deadline


def prepare(
    bundle: Bundle, entry: ManifestEntry, why: str, settings: ExecutorSettings, scs: bool
) -> Prepared:
    """Read one file's SQL, header settings and statements; refuse what must not run.

    ``statements`` are what runs: a plain ``BEGIN; ... COMMIT;`` around the whole file is left out
    (the executor's own transaction takes its place).  Refused here, before anything runs: bytes the
    validator's parser would not have seen as PostgreSQL will (``executor.sqltext``: control
    characters, invalid UTF-8), a wrapped file the manifest marks ``transactional: false``, and any
    other transaction statement.
    """
    if not entry.checked:
        raise MigrationRefused(
            f"{entry.file} was applied when this command started, so its structural check was skipped, "
            "but it is to be applied now (its history row was removed meanwhile, by `schemagate undo` "
            "or `repair` in another session); nothing was applied",
            file=entry.file,
            rule="unchecked-file",
            remedy="run the command again: it checks every file that is not applied",
        )
    data = bundle.files[entry.file]
    not_utf8 = sqltext.find_invalid_utf8(data)
    if not_utf8 is not None:
        offset, line = not_utf8
        raise SecurityViolation(
            f"{entry.file} is not valid UTF-8: byte 0x{data[offset]:02x} at byte offset {offset} "
            f"(line {line}) cannot be decoded; nothing was applied",
            file=entry.file,
            line=line,
            rule="not-utf8",
            remedy="save the file as UTF-8, then validate the migrations and build a new bundle "
            "(`schemagate validate` refuses such a file, so this bundle was not written by it)",
            context={"byte_offset": offset},
        )
    control = sqltext.find_control_character(data)
    if control is not None:
        raise SecurityViolation(
            control.message(entry.file) + "; nothing was applied",
            file=entry.file,
            line=control.line,
            column=control.column,
            rule=sqltext.RULE,
            remedy=f"{sqltext.REMEDY}; then validate the migrations and build a new bundle "
            "(`schemagate validate` refuses such a file, so this bundle was not written by it)",
            context={"byte_offset": control.offset, "code_point": control.code, "count": control.count},
        )
    sql = bundle.sql(entry)
    header = {}
    for key, value in entry.settings.items():  # settings the validator recorded in the manifest
        check = HEADER_KEYS.get(key)
        problem = check(str(value)) if check else None
        if problem:
            raise ConfigurationError(
                f"the manifest gives {entry.file} the setting {key}={value!r}; it needs {problem}",
                file=entry.file,
                rule="header-setting",
                remedy="fix the file's `-- schemagate:set` header and rebuild the bundle",
            )
        if check:
            header[key] = str(value)
    header.update(parse_header_settings(sql, file=entry.file))
    split = migration_statements(sql, standard_conforming_strings=scs)
    if entry.own_transactions:
        statements = _as_written(entry, split)
    else:
        _refuse_transaction_control(entry, sql, split)
        statements = split.statements
    try:
        retries = int(header.get("lock_retries", settings.lock_retries))
    except ValueError:
        raise ConfigurationError(
            f"lock_retries {header['lock_retries']!r} is not a number", file=entry.file
        ) from None
    return Prepared(
        entry=entry,
        why=why,
        sql=sql,
        statements=statements,
        lock_timeout=header.get("lock_timeout", settings.lock_timeout),
        statement_timeout=header.get("statement_timeout", settings.statement_timeout),
        lock_retries=retries,
    )


def _as_written(entry: ManifestEntry, split: MigrationStatements) -> list[Statement]:
    """The statements of accepted history the manifest marks ``own_transactions``: every one, its
    BEGIN and COMMIT included, run one by one without a transaction of the executor's
    (``executor.stepwise.without_transaction``), so the file's own transaction control holds."""
    if entry.transactional:
        raise ConfigurationError(
            f"the manifest marks {entry.file} both `own_transactions` and transactional: a file that "
            "runs its own BEGIN and COMMIT cannot also run in a transaction of the executor's",
            file=entry.file,
            rule="transaction-control",
            remedy="validate the migrations and build a new bundle (`schemagate validate` never writes both)",
        )
    if split.wrapper is None:
        return split.statements
    begin, commit = split.wrapper
    return [begin, *split.statements, commit]


def _refuse_transaction_control(entry: ManifestEntry, sql: str, split: MigrationStatements) -> None:
    """Refuse a wrapped file the manifest marks ``transactional: false``, and any transaction
    statement but a plain wrapper."""
    if split.wrapper is not None and not entry.transactional:
        raise MigrationRefused(
            f"{entry.file} is wrapped in BEGIN ... COMMIT but the manifest marks it `transactional: false`: "
            "its author meant one transaction, which the executor would not give it",
            file=entry.file,
            line=line_and_column(sql, split.wrapper[0].start)[0],
            rule="transaction-control",
            remedy="validate the migrations and build a new bundle (`schemagate validate` marks a wrapped "
            "file transactional, or refuses it when it holds a statement that cannot run in a transaction)",
        )
    for st in split.statements:
        if st.is_transaction_control:
            line, _ = line_and_column(sql, st.start)
            raise MigrationRefused(
                f"{entry.file} contains the transaction control statement {st.text.strip()[:40]!r} "
                f"({st.transaction_control}); it would break the all-or-nothing application of the file "
                "and its history row",
                file=entry.file,
                line=line,
                rule="transaction-control",
                remedy=(
                    "remove it from the file: schemagate runs each migration in a transaction of its own "
                    "(statements that cannot run in one make the file `transactional: false`); only a plain "
                    "`BEGIN; ... COMMIT;` around the whole file is accepted, and left out.  An old file that "
                    "is applied everywhere already and cannot be edited runs as written when it is accepted "
                    "history (`accepted_history`, or unchanged since `--base-ref`) in the bundle's validation"
                ),
            )
