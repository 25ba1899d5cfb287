"""Refusals combined into one: what the executor raises when a run has several reasons to refuse."""

from __future__ import annotations

from executor.errors import MAX_LISTED_REFUSALS, Category, ChecksumMismatch, MigrationRefused, combined


def drift(file: str) -> ChecksumMismatch:
    return ChecksumMismatch(
        f"{file} was applied with checksum 1f0c…, the bundle has 9a2e…",
        file=file,
        rule="checksum-drift",
        remedy="restore the applied file, or add a new migration for the change",
        context={"expected": "1f0c", "actual": "9a2e"},
    )


def test_one_refusal_is_raised_as_it_is() -> None:
    only = drift("V3__add_invoices_due_at.sql")
    assert combined([only]) is only


def test_the_first_refusal_leads_and_every_other_is_named_on_its_own_line() -> None:
    missing = MigrationRefused(
        "V7__drop_legacy_flags.sql is applied but not in the bundle\n(it may have been deleted)",
        file="V7__drop_legacy_flags.sql",
        line=None,
        rule="missing-migration",
        remedy="restore the file",
    )
    at_line = MigrationRefused(
        "BEGIN inside a migration", file="V9__backfill.sql", line=12, column=1, rule="tx"
    )
    first = drift("V3__add_invoices_due_at.sql")
    error = combined([first, missing, at_line], all_listed_by="`schemagate info`")

    assert type(error) is ChecksumMismatch and error.category is Category.CHECKSUM_MISMATCH
    assert (error.file, error.rule, error.remedy) == (first.file, first.rule, first.remedy)
    assert error.message.splitlines() == [
        first.message,
        "  and 2 more refusal(s):",
        "  - V7__drop_legacy_flags.sql: [missing-migration] V7__drop_legacy_flags.sql is applied but not "
        "in the bundle (it may have been deleted)",
        "  - V9__backfill.sql:12:1: [tx] BEGIN inside a migration",
        "  (`schemagate info` lists them all)",
    ]
    assert error.context["expected"] == "1f0c"  # the first one's context is kept
    assert [r["file"] for r in error.context["refusals"]] == [
        "V3__add_invoices_due_at.sql",
        "V7__drop_legacy_flags.sql",
        "V9__backfill.sql",
    ]
    assert first.message == f"{first.file} was applied with checksum 1f0c…, the bundle has 9a2e…"  # unchanged


def test_a_long_list_is_cut_in_the_message_but_kept_whole_in_the_context() -> None:
    refusals = [drift(f"V{n:03d}__backfill_part_{n}.sql") for n in range(1, MAX_LISTED_REFUSALS + 6)]
    error = combined(refusals)
    listed = [line for line in error.message.splitlines() if line.startswith("  - V")]
    assert len(listed) == MAX_LISTED_REFUSALS and listed[0].startswith("  - V002__backfill_part_2.sql:")
    assert error.message.endswith("  - … and 4 more")
    assert len(error.context["refusals"]) == MAX_LISTED_REFUSALS + 5
