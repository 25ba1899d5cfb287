"""identifier-too-long: names longer than 63 bytes are silently truncated."""

from __future__ import annotations

from typing import TYPE_CHECKING

from validator.safety.nodes import manual
from validator.safety.rule import Example, Rule, RuleDocs

if TYPE_CHECKING:  # pragma: no cover
    from validator.parsed import Statement

MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1


def identifier_value(raw: str) -> str:
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        return raw[1:-1].replace('""', '"')
    return raw


class IdentifierTooLong(Rule):
    id = "identifier-too-long"
    category = "breaking"
    squawk = "identifier-too-long"
    summary = "Identifiers longer than 63 bytes are silently truncated by PostgreSQL."
    docs = RuleDocs(
        why="PostgreSQL cuts names to 63 bytes with only a NOTICE.  Two long names with the same first 63 "
        "bytes become the same name: the second CREATE fails, or with IF NOT EXISTS is silently "
        "skipped (a missing index or constraint in production), and the object's real name differs "
        "from the one in the migration.",
        lock="none.",
        anti_pattern="CREATE INDEX index_on_customer_orders_by_customer_id_and_created_at_and_status\n"
        "    ON customer_orders (customer_id, created_at, status);",
        best_practice="CREATE INDEX customer_orders_customer_created_status_idx\n"
        "    ON customer_orders (customer_id, created_at, status);",
        manual=manual("sql-syntax-lexical", "SQL-SYNTAX-IDENTIFIERS"),
    )
    examples = (
        Example(
            "CREATE INDEX index_on_customer_orders_by_customer_id_and_created_at_and_status\n"
            "    ON customer_orders (customer_id, created_at, status);",
            True,
        ),
        Example(
            'CREATE TABLE "überlange_tabelle_mit_umlauten_äöü_und_noch_mehr_zeichen_xyz" (id bigint);',
            True,
            title="the limit is in bytes, not characters",
        ),
        Example(
            "CREATE INDEX customer_orders_customer_created_status_idx\n"
            "    ON customer_orders (customer_id, created_at, status);",
            False,
        ),
    )
    cases = (
        Example(
            "ALTER TABLE subscriptions ADD CONSTRAINT "
            "subscriptions_billing_account_id_fkey_to_the_billing_accounts_table\n"
            "    FOREIGN KEY (billing_account_id) REFERENCES billing_accounts (id) NOT VALID;",
            True,
        ),
        Example(
            'CREATE TABLE "NotificationPreferenceOverridesForOrganizationMembersAndTheirTeams" (id bigint);',
            True,
        ),
        Example(
            "CREATE SEQUENCE invoice_line_item_adjustments_for_credit_notes_and_refunds_id_seq;",
            True,
        ),
        Example(
            "ALTER TABLE users ADD COLUMN "
            "last_successful_two_factor_authentication_challenge_was_answered_at timestamptz;",
            True,
        ),
        Example(
            "CREATE INDEX idx_subscriptions_billing_account ON subscriptions (billing_account_id);", False
        ),
        Example('CREATE TABLE "NotificationPreferenceOverride" (id bigint);', False),
        Example(
            "COMMENT ON TABLE users IS 'a comment may be as long as it likes: it is a string, not an "
            "identifier at all';",
            False,
        ),
        Example(
            "SELECT 'a_string_constant_that_is_longer_than_sixty_three_bytes_is_not_an_identifier';", False
        ),
    )

    def check_statement(self, stmt: Statement) -> None:
        text = self.ctx.file.text
        for token in self.ctx.statement_tokens(stmt):
            if token.name != "IDENT":
                continue
            name = identifier_value(text[token.start : token.end + 1])
            size = len(name.encode("utf-8"))
            if size > MAX_IDENTIFIER_BYTES:
                self.report(
                    None,
                    f"`{name}` is {size} bytes; PostgreSQL truncates it to {MAX_IDENTIFIER_BYTES}, "
                    "so the object gets a different name and may collide with another.",
                    f"Use a name of at most {MAX_IDENTIFIER_BYTES} bytes.",
                    offset=token.start,
                )
