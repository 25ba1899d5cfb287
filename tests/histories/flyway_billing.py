"""A Flyway history of a subscription-billing service, the way a Spring Boot team writes one:
``src/main/resources/db/migration`` with zero-padded versions, a sub-directory per year, hyphens in a
few descriptions, an enum, partial and CONCURRENTLY built indexes, a DO block, data backfills, a
repeatable view and function."""

from __future__ import annotations

from pathlib import Path

FILES: dict[str, str] = {
    "V001__create_accounts.sql": """\
CREATE TABLE accounts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email        text        NOT NULL,
    display_name text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX accounts_email_key ON accounts (lower(email));
""",
    "V002__create_plans.sql": """\
CREATE TABLE plans (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text    NOT NULL UNIQUE,
    price_cents integer NOT NULL CHECK (price_cents >= 0),
    interval    text    NOT NULL DEFAULT 'month'
);
INSERT INTO plans (code, price_cents, interval) VALUES
    ('free', 0, 'month'), ('team', 1900, 'month'), ('team-annual', 19000, 'year');
""",
    "V003__subscription-status-type.sql": """\
CREATE TYPE subscription_status AS ENUM ('trialing', 'active', 'past_due', 'canceled');
""",
    "V004__create_subscriptions.sql": """\
CREATE TABLE subscriptions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    plan_id    bigint NOT NULL REFERENCES plans (id),
    status     subscription_status NOT NULL DEFAULT 'trialing',
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at   timestamptz
);
CREATE INDEX subscriptions_account_id_idx ON subscriptions (account_id);
-- at most one live subscription per account
CREATE UNIQUE INDEX subscriptions_one_live_per_account
    ON subscriptions (account_id) WHERE status <> 'canceled';
""",
    "V005__create_invoices.sql": """\
CREATE TABLE invoices (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id bigint NOT NULL REFERENCES subscriptions (id),
    amount_cents    integer NOT NULL,
    issued_at       timestamptz NOT NULL DEFAULT now(),
    paid_at         timestamptz
);
CREATE INDEX invoices_unpaid_idx ON invoices (issued_at) WHERE paid_at IS NULL;
""",
    "V006__add_accounts_country.sql": """\
ALTER TABLE accounts ADD COLUMN country_code char(2);
COMMENT ON COLUMN accounts.country_code IS 'ISO 3166-1 alpha-2, for VAT';
""",
    "V007__backfill_accounts_country.sql": """\
-- everyone registered before the VAT change was in Germany
UPDATE accounts SET country_code = 'DE' WHERE country_code IS NULL;
""",
    "V008__index_invoices_issued_at.sql": """\
CREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_issued_at_idx ON invoices (issued_at);
""",
    "V009__add_past_due_since.sql": """\
ALTER TABLE subscriptions ADD COLUMN past_due_since timestamptz;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'subscriptions_past_due_since_check') THEN
        ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_past_due_since_check
            CHECK (past_due_since IS NULL OR status = 'past_due') NOT VALID;
    END IF;
END
$$;
""",
    "V010__validate_past_due_since_check.sql": """\
ALTER TABLE subscriptions VALIDATE CONSTRAINT subscriptions_past_due_since_check;
""",
    "2025/V011__create_coupons.sql": """\
CREATE TABLE coupons (
    code         text PRIMARY KEY,
    percent_off  smallint NOT NULL CHECK (percent_off BETWEEN 1 AND 100),
    redeem_by    date,
    max_redemptions integer
);
""",
    "2025/V012__add_subscriptions_coupon.sql": """\
ALTER TABLE subscriptions ADD COLUMN coupon_code text REFERENCES coupons (code);
""",
    "2025/V013__add_status_paused.sql": """\
ALTER TYPE subscription_status ADD VALUE IF NOT EXISTS 'paused' AFTER 'past_due';
""",
    "2025/V014__create_usage_events.sql": """\
CREATE TABLE usage_events (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    account_id  bigint      NOT NULL,
    occurred_at timestamptz NOT NULL,
    quantity    integer     NOT NULL DEFAULT 1,
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE TABLE usage_events_2025 PARTITION OF usage_events
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE usage_events_2026 PARTITION OF usage_events
    FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
""",
    "2025/V015__touch_updated_at.sql": """\
ALTER TABLE accounts ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER accounts_touch_updated_at BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
""",
    "2025/V016__Rename display name.sql": """\
ALTER TABLE accounts RENAME COLUMN display_name TO full_name;
""",
    "2026/V017__create_payment_methods.sql": """\
CREATE TABLE payment_methods (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    brand      text   NOT NULL,
    last4      char(4) NOT NULL,
    is_default boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX payment_methods_one_default ON payment_methods (account_id) WHERE is_default;
""",
    "2026/V018__invoice_number_sequence.sql": """\
CREATE SEQUENCE invoice_number_seq START 1000;
ALTER TABLE invoices ADD COLUMN number bigint;
UPDATE invoices SET number = nextval('invoice_number_seq') WHERE number IS NULL;
ALTER TABLE invoices ALTER COLUMN number SET DEFAULT nextval('invoice_number_seq');
""",
    "2026/V019__index_usage_events_account.sql": """\
CREATE INDEX IF NOT EXISTS usage_events_account_idx ON usage_events (account_id, occurred_at);
""",
    "2026/V020__drop_plans_interval_default.sql": """\
ALTER TABLE plans ALTER COLUMN interval DROP DEFAULT;
""",
    "R__billing_views.sql": """\
CREATE OR REPLACE VIEW active_subscriptions AS
SELECT s.id, a.email, p.code AS plan, s.started_at
FROM subscriptions s
JOIN accounts a ON a.id = s.account_id
JOIN plans p ON p.id = s.plan_id
WHERE s.status IN ('trialing', 'active');
""",
    "R__mrr_function.sql": """\
CREATE OR REPLACE FUNCTION monthly_recurring_revenue() RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(CASE p.interval WHEN 'year' THEN p.price_cents / 12 ELSE p.price_cents END), 0)
    FROM subscriptions s JOIN plans p ON p.id = s.plan_id
    WHERE s.status = 'active'
$$;
""",
}


def write(root: Path, files: dict[str, str] | None = None) -> Path:
    for rel, text in (files or FILES).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root
