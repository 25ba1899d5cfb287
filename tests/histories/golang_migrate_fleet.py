"""A golang-migrate history of a fleet and shipment tracking service, the way a Go team writes one:
``db/migrations`` made by ``migrate create -ext sql -dir db/migrations -seq <name>`` (six-digit
versions, an ``.up.sql`` and a ``.down.sql`` per version), most files wrapped in ``BEGIN; ... COMMIT;``
(golang-migrate sends a file as one query string and leaves the transaction to the author), titles
with hyphens and release numbers (``000007_1.7.0_schema``), enums, an ``ALTER TYPE ... ADD VALUE`` and a
``CREATE INDEX CONCURRENTLY`` alone in unwrapped files, partial indexes, a DO block, PL/pgSQL triggers,
a constraint added ``NOT VALID`` and validated later, data backfills whose down files are empty
(irreversible), and a migration that touches golang-migrate's own ``schema_migrations`` table.

That file (000017) grants golang-migrate's table to ``pg_monitor`` for the version exporter the team
runs. schemagate treats ``schema_migrations`` as any other table of the database: it never creates,
writes or skips it (after an import golang-migrate's table stays as the record of what the old tool
did). So a statement on it works wherever golang-migrate ran and fails on a database golang-migrate
never touched; this team guards it with ``to_regclass``, as their preview environments restore a
dump without the table, and so a fresh environment built by schemagate gets through it too.
"""

from __future__ import annotations

from pathlib import Path

ROOT = "db/migrations"

FILES: dict[str, str] = {
    "000001_create_companies.up.sql": """\
BEGIN;

CREATE TABLE IF NOT EXISTS companies (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT        NOT NULL,
    vat_number  TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX IF NOT EXISTS companies_vat_number_key ON companies (vat_number) WHERE vat_number IS NOT NULL;

COMMIT;
""",
    "000001_create_companies.down.sql": """\
BEGIN;
DROP TABLE IF EXISTS companies;
COMMIT;
""",
    "000002_create_users.up.sql": """\
BEGIN;

CREATE TABLE IF NOT EXISTS users (
    id            BIGSERIAL PRIMARY KEY,
    company_id    BIGINT      NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    email         TEXT        NOT NULL,
    password_hash TEXT        NOT NULL,
    legacy_role   TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS users_company_id_idx ON users (company_id);

COMMIT;
""",
    "000002_create_users.down.sql": """\
BEGIN;
DROP TABLE IF EXISTS users;
COMMIT;
""",
    "000003_create_vehicles.up.sql": """\
BEGIN;

CREATE TYPE vehicle_kind AS ENUM ('van', 'truck', 'trailer');

CREATE TABLE vehicles (
    id            BIGSERIAL PRIMARY KEY,
    company_id    BIGINT       NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    plate         VARCHAR(16)  NOT NULL,
    kind          vehicle_kind NOT NULL DEFAULT 'van',
    capacity_kg   INTEGER,
    retired_at    TIMESTAMPTZ
);

CREATE UNIQUE INDEX vehicles_company_plate_key ON vehicles (company_id, plate) WHERE retired_at IS NULL;

COMMIT;
""",
    "000003_create_vehicles.down.sql": """\
BEGIN;
DROP TABLE IF EXISTS vehicles;
DROP TYPE IF EXISTS vehicle_kind;
COMMIT;
""",
    "000004_create_drivers.up.sql": """\
BEGIN;

CREATE TABLE drivers (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    licence_number  TEXT   NOT NULL,
    licence_expires DATE
);

COMMIT;
""",
    "000004_create_drivers.down.sql": """\
BEGIN;
DROP TABLE IF EXISTS drivers;
COMMIT;
""",
    "000005_create_shipments.up.sql": """\
BEGIN;

CREATE TYPE shipment_status AS ENUM ('draft', 'booked', 'in_transit', 'delivered', 'cancelled');

CREATE TABLE shipments (
    id            BIGSERIAL PRIMARY KEY,
    company_id    BIGINT          NOT NULL REFERENCES companies (id),
    vehicle_id    BIGINT          REFERENCES vehicles (id),
    driver_id     BIGINT          REFERENCES drivers (id),
    reference     TEXT            NOT NULL,
    status        shipment_status NOT NULL DEFAULT 'draft',
    weight_kg     INTEGER,
    pickup_at     TIMESTAMPTZ,
    delivered_at  TIMESTAMPTZ,
    created_at    TIMESTAMPTZ     NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX shipments_company_reference_key ON shipments (company_id, reference);
CREATE INDEX shipments_vehicle_id_idx ON shipments (vehicle_id);

COMMIT;
""",
    "000005_create_shipments.down.sql": """\
BEGIN;
DROP TABLE IF EXISTS shipments;
DROP TYPE IF EXISTS shipment_status;
COMMIT;
""",
    "000006_add-shipment-eta.up.sql": """\
BEGIN;
ALTER TABLE shipments ADD COLUMN eta TIMESTAMPTZ;
COMMENT ON COLUMN shipments.eta IS 'estimated time of arrival, recomputed by the router every 5 minutes';
COMMIT;
""",
    "000006_add-shipment-eta.down.sql": """\
BEGIN;
ALTER TABLE shipments DROP COLUMN IF EXISTS eta;
COMMIT;
""",
    "000007_1.7.0_schema.up.sql": """\
-- release 1.7.0: multi-stop shipments
BEGIN;

CREATE TABLE shipment_stops (
    id           BIGSERIAL PRIMARY KEY,
    shipment_id  BIGINT  NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    address      TEXT    NOT NULL,
    arrived_at   TIMESTAMPTZ,
    UNIQUE (shipment_id, position)
);

ALTER TABLE shipments ADD COLUMN stop_count INTEGER NOT NULL DEFAULT 1;

COMMIT;
""",
    "000007_1.7.0_schema.down.sql": """\
BEGIN;
ALTER TABLE shipments DROP COLUMN IF EXISTS stop_count;
DROP TABLE IF EXISTS shipment_stops;
COMMIT;
""",
    "000008_index_open_shipments.up.sql": """\
BEGIN;
-- the dispatcher's board only ever looks at shipments that are not finished
CREATE INDEX IF NOT EXISTS shipments_open_idx ON shipments (company_id, pickup_at)
    WHERE status IN ('booked', 'in_transit');
COMMIT;
""",
    "000008_index_open_shipments.down.sql": """\
BEGIN;
DROP INDEX IF EXISTS shipments_open_idx;
COMMIT;
""",
    "000009_create_tracking_events.up.sql": """\
BEGIN;

CREATE TABLE tracking_events (
    id           BIGSERIAL PRIMARY KEY,
    shipment_id  BIGINT           NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    recorded_at  TIMESTAMPTZ      NOT NULL,
    latitude     DOUBLE PRECISION NOT NULL,
    longitude    DOUBLE PRECISION NOT NULL,
    speed_kmh    REAL,
    CHECK (latitude BETWEEN -90 AND 90),
    CHECK (longitude BETWEEN -180 AND 180)
);

COMMIT;
""",
    "000009_create_tracking_events.down.sql": """\
BEGIN;
DROP TABLE IF EXISTS tracking_events;
COMMIT;
""",
    # golang-migrate sends a one-statement file as is, outside any transaction: the way to build an
    # index without blocking the trackers' inserts
    "000010_index_tracking_events_shipment.up.sql": """\
CREATE INDEX CONCURRENTLY IF NOT EXISTS tracking_events_shipment_recorded_idx
    ON tracking_events (shipment_id, recorded_at DESC);
""",
    "000010_index_tracking_events_shipment.down.sql": """\
DROP INDEX CONCURRENTLY IF EXISTS tracking_events_shipment_recorded_idx;
""",
    "000011_backfill_shipments_eta.up.sql": """\
BEGIN;
-- shipments booked before the router existed: assume two days from pickup
UPDATE shipments
SET eta = pickup_at + INTERVAL '2 days'
WHERE eta IS NULL
  AND pickup_at IS NOT NULL
  AND status IN ('booked', 'in_transit');
COMMIT;
""",
    "000011_backfill_shipments_eta.down.sql": """\
-- irreversible: the backfilled values cannot be told apart from the router's
""",
    # ALTER TYPE ... ADD VALUE could not run in a transaction block before PostgreSQL 12: the team
    # keeps such files unwrapped
    "000012_add_shipment_status_returned.up.sql": """\
ALTER TYPE shipment_status ADD VALUE IF NOT EXISTS 'returned' AFTER 'delivered';
""",
    "000012_add_shipment_status_returned.down.sql": """\
-- PostgreSQL cannot drop a value from an enum type; 'returned' stays
""",
    "000013_create_invoices.up.sql": """\
BEGIN;

CREATE TABLE invoices (
    id           BIGSERIAL PRIMARY KEY,
    company_id   BIGINT       NOT NULL REFERENCES companies (id),
    shipment_id  BIGINT       REFERENCES shipments (id) ON DELETE SET NULL,
    number       TEXT         NOT NULL UNIQUE,
    amount       NUMERIC(12, 2) NOT NULL CHECK (amount >= 0),
    currency     CHAR(3)      NOT NULL DEFAULT 'EUR',
    issued_at    TIMESTAMPTZ  NOT NULL DEFAULT now(),
    paid_at      TIMESTAMPTZ
);

CREATE INDEX invoices_unpaid_idx ON invoices (company_id, issued_at) WHERE paid_at IS NULL;

COMMIT;
""",
    "000013_create_invoices.down.sql": """\
BEGIN;
DROP TABLE IF EXISTS invoices;
COMMIT;
""",
    "000014_v2.3.0_carrier_rates.up.sql": """\
BEGIN;

CREATE TABLE carrier_rates (
    id           BIGSERIAL PRIMARY KEY,
    company_id   BIGINT         NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    vehicle_kind vehicle_kind   NOT NULL,
    per_km       NUMERIC(8, 4)  NOT NULL,
    valid_from   DATE           NOT NULL,
    valid_to     DATE,
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);

CREATE INDEX carrier_rates_lookup_idx ON carrier_rates (company_id, vehicle_kind, valid_from DESC);

COMMIT;
""",
    "000014_v2.3.0_carrier_rates.down.sql": """\
BEGIN;
DROP TABLE IF EXISTS carrier_rates;
COMMIT;
""",
    "000015_users_email_unique.up.sql": """\
BEGIN;

-- sign-up used to accept Foo@x.com next to foo@x.com; refuse to go on while duplicates remain
DO $$
DECLARE
    duplicates INTEGER;
BEGIN
    SELECT count(*) INTO duplicates
    FROM (SELECT lower(email) FROM users GROUP BY lower(email) HAVING count(*) > 1) AS d;
    IF duplicates > 0 THEN
        RAISE EXCEPTION '% e-mail addresses are used by more than one user; merge them first', duplicates;
    END IF;
END
$$;

CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

COMMIT;
""",
    "000015_users_email_unique.down.sql": """\
BEGIN;
DROP INDEX IF EXISTS users_email_lower_key;
COMMIT;
""",
    "000016_users_updated_at_trigger.up.sql": """\
BEGIN;

CREATE OR REPLACE FUNCTION set_updated_at() RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER users_set_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW
    EXECUTE FUNCTION set_updated_at();

COMMIT;
""",
    "000016_users_updated_at_trigger.down.sql": """\
BEGIN;
DROP TRIGGER IF EXISTS users_set_updated_at ON users;
DROP FUNCTION IF EXISTS set_updated_at();
COMMIT;
""",
    "000017_grant_monitoring_read.up.sql": """\
BEGIN;

-- the migration-version exporter logs in as a member of pg_monitor and reads golang-migrate's table;
-- preview environments are restored from a dump without it, hence the guard
DO $$
BEGIN
    IF to_regclass('schema_migrations') IS NOT NULL THEN
        GRANT SELECT ON TABLE schema_migrations TO pg_monitor;
    END IF;
END
$$;

GRANT SELECT ON TABLE shipments, tracking_events TO pg_monitor;

COMMIT;
""",
    "000017_grant_monitoring_read.down.sql": """\
BEGIN;
REVOKE SELECT ON TABLE shipments, tracking_events FROM pg_monitor;
DO $$
BEGIN
    IF to_regclass('schema_migrations') IS NOT NULL THEN
        REVOKE SELECT ON TABLE schema_migrations FROM pg_monitor;
    END IF;
END
$$;
COMMIT;
""",
    "000018_vehicles_capacity_check.up.sql": """\
BEGIN;
ALTER TABLE vehicles
    ADD CONSTRAINT vehicles_capacity_kg_check CHECK (capacity_kg IS NULL OR capacity_kg BETWEEN 1 AND 60000) NOT VALID;
COMMIT;
""",
    "000018_vehicles_capacity_check.down.sql": """\
BEGIN;
ALTER TABLE vehicles DROP CONSTRAINT IF EXISTS vehicles_capacity_kg_check;
COMMIT;
""",
    "000019_validate_vehicles_capacity_check.up.sql": """\
BEGIN;
ALTER TABLE vehicles VALIDATE CONSTRAINT vehicles_capacity_kg_check;
COMMIT;
""",
    "000019_validate_vehicles_capacity_check.down.sql": """\
-- nothing to undo: validating a constraint changes no definition
""",
    "000020_create_depots.up.sql": """\
BEGIN;

CREATE TABLE depots (
    id          BIGSERIAL PRIMARY KEY,
    company_id  BIGINT NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    code        TEXT   NOT NULL,
    address     TEXT   NOT NULL,
    is_default  BOOLEAN NOT NULL DEFAULT false,
    UNIQUE (company_id, code)
);

CREATE UNIQUE INDEX depots_one_default_per_company ON depots (company_id) WHERE is_default;

COMMIT;
""",
    "000020_create_depots.down.sql": """\
BEGIN;
DROP TABLE IF EXISTS depots;
COMMIT;
""",
    "000021_add_shipments_depot.up.sql": """\
BEGIN;
ALTER TABLE shipments ADD COLUMN depot_id BIGINT REFERENCES depots (id) ON DELETE SET NULL;
CREATE INDEX shipments_depot_id_idx ON shipments (depot_id) WHERE depot_id IS NOT NULL;
COMMIT;
""",
    "000021_add_shipments_depot.down.sql": """\
BEGIN;
ALTER TABLE shipments DROP COLUMN IF EXISTS depot_id;
COMMIT;
""",
    "000022_active_shipments_view.up.sql": """\
BEGIN;

CREATE OR REPLACE VIEW active_shipments AS
SELECT s.id,
       s.company_id,
       s.reference,
       s.status,
       s.eta,
       v.plate AS vehicle_plate
FROM shipments s
LEFT JOIN vehicles v ON v.id = s.vehicle_id
WHERE s.status IN ('booked', 'in_transit');

COMMIT;
""",
    "000022_active_shipments_view.down.sql": """\
BEGIN;
DROP VIEW IF EXISTS active_shipments;
COMMIT;
""",
    "000023_drop_users_legacy_role.up.sql": """\
BEGIN;
ALTER TABLE users DROP COLUMN IF EXISTS legacy_role;
COMMIT;
""",
    "000023_drop_users_legacy_role.down.sql": """\
BEGIN;
ALTER TABLE users ADD COLUMN IF NOT EXISTS legacy_role TEXT;
COMMIT;
""",
    "000024_rename_drivers_licence.up.sql": """\
BEGIN;
ALTER TABLE drivers RENAME COLUMN licence_number TO licence_no;
ALTER TABLE drivers RENAME COLUMN licence_expires TO licence_valid_until;
COMMIT;
""",
    "000024_rename_drivers_licence.down.sql": """\
BEGIN;
ALTER TABLE drivers RENAME COLUMN licence_valid_until TO licence_expires;
ALTER TABLE drivers RENAME COLUMN licence_no TO licence_number;
COMMIT;
""",
    "000025_create_maintenance_windows.up.sql": """\
BEGIN;

CREATE TABLE maintenance_windows (
    id          BIGSERIAL PRIMARY KEY,
    vehicle_id  BIGINT      NOT NULL REFERENCES vehicles (id) ON DELETE CASCADE,
    during      TSTZRANGE   NOT NULL,
    reason      TEXT        NOT NULL,
    CHECK (NOT isempty(during))
);

CREATE INDEX maintenance_windows_during_idx ON maintenance_windows USING gist (during);

COMMIT;
""",
    "000025_create_maintenance_windows.down.sql": """\
BEGIN;
DROP TABLE IF EXISTS maintenance_windows;
COMMIT;
""",
    "000026_add_companies_settings.up.sql": """\
BEGIN;
ALTER TABLE companies ADD COLUMN settings JSONB NOT NULL DEFAULT '{}'::jsonb;
CREATE INDEX companies_settings_idx ON companies USING gin (settings jsonb_path_ops);
COMMIT;
""",
    "000026_add_companies_settings.down.sql": """\
BEGIN;
ALTER TABLE companies DROP COLUMN IF EXISTS settings;
COMMIT;
""",
    "000027_default_depot_per_company.up.sql": """\
BEGIN;
-- every company gets a depot called MAIN at its registered address, and it becomes the default
INSERT INTO depots (company_id, code, address, is_default)
SELECT c.id, 'MAIN', coalesce(c.settings ->> 'address', 'unknown'), true
FROM companies c
WHERE NOT EXISTS (SELECT 1 FROM depots d WHERE d.company_id = c.id);
COMMIT;
""",
    "000027_default_depot_per_company.down.sql": "",
    "000028_shipments_weight_numeric.up.sql": """\
BEGIN;
ALTER TABLE shipments ALTER COLUMN weight_kg TYPE NUMERIC(10, 2);
ALTER TABLE shipments ADD CONSTRAINT shipments_weight_kg_check CHECK (weight_kg IS NULL OR weight_kg > 0);
COMMIT;
""",
    "000028_shipments_weight_numeric.down.sql": """\
BEGIN;
ALTER TABLE shipments DROP CONSTRAINT IF EXISTS shipments_weight_kg_check;
ALTER TABLE shipments ALTER COLUMN weight_kg TYPE INTEGER USING round(weight_kg)::integer;
COMMIT;
""",
}


def write(root: Path, files: dict[str, str] | None = None) -> Path:
    for rel, text in (files or FILES).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def up_files(root: Path) -> list[Path]:
    """The up files in golang-migrate's order (by version number)."""
    return sorted(root.glob("*.up.sql"), key=lambda p: int(p.name.split("_", 1)[0]))
