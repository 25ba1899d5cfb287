"""A generated, realistic migration history, each file labelled with the safety rules it should raise.

The history grows one schema (a SaaS product: accounts, users, projects, invoices, events ...) the
way real repositories do: hand-written expand/contract steps, ORM-generated DDL (Django's
``varchar(254)``/``serial``/``DEFERRABLE INITIALLY DEFERRED`` foreign keys, Rails'
``character varying``/``timestamp(6) without time zone``), backfills, views and functions, index
builds in files of their own, and the usual mistakes.  Because the generator knows which pattern it
wrote, every file carries the set of rule ids a reviewer expects, so a run measures both missed
dangers and false positives.  Deterministic for a given seed.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field


@dataclass
class Migration:
    name: str
    sql: str
    expected: set[str]
    pattern: str


@dataclass
class _Table:
    name: str
    columns: dict[str, str] = field(default_factory=dict)


NOUNS = [
    "accounts",
    "users",
    "projects",
    "invoices",
    "invoice_lines",
    "payments",
    "events",
    "comments",
    "attachments",
    "subscriptions",
    "plans",
    "coupons",
    "webhooks",
    "api_keys",
    "audit_entries",
    "teams",
    "memberships",
    "tags",
    "taggings",
    "notifications",
    "exports",
    "imports",
    "reports",
    "settings",
    "sessions",
    "devices",
    "addresses",
    "shipments",
    "orders",
    "order_items",
]
ADJ = [
    "archived",
    "billing",
    "external",
    "display",
    "legacy",
    "primary",
    "last_seen",
    "source",
    "region",
    "locale",
    "priority",
    "score",
    "retry",
    "parent",
    "owner",
    "review",
    "approval",
    "sync",
]


class HistoryBuilder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.tables: list[_Table] = []
        self.enums: dict[str, list[str]] = {}
        self.enum_columns: dict[str, tuple[str, str]] = {}
        self.migrations: list[Migration] = []
        self.version = 0
        self.used: set[str] = set()

    # ---- helpers ---------------------------------------------------------------------------
    def emit(self, description: str, sql: str, expected: set[str] | None = None, pattern: str = "") -> None:
        self.version += 1
        expected = set(expected or ())
        if any(len(word) > 63 for word in re.findall(r"[A-Za-z_0-9]+", sql)):
            expected.add("identifier-too-long")  # generated names can grow past PostgreSQL's limit
        self.migrations.append(
            Migration(
                f"V{self.version:04d}__{description[:60]}.sql",
                sql.strip() + "\n",
                expected,
                pattern or description,
            )
        )

    def fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self.used:
            n += 1
            name = f"{base}_{n}"
        self.used.add(name)
        return name

    def table(self) -> _Table:
        return self.rng.choice(self.tables)

    def column_of(self, t: _Table, kind: str | None = None) -> str | None:
        cols = [c for c, ty in t.columns.items() if c != "id" and (kind is None or ty == kind)]
        return self.rng.choice(cols) if cols else None

    # ---- patterns --------------------------------------------------------------------------
    def create_table_modern(self) -> None:
        name = self.fresh(self.rng.choice(NOUNS))
        ref = self.table() if self.tables and self.rng.random() < 0.7 else None
        cols = {"id": "bigint", "name": "text", "created_at": "timestamptz", "updated_at": "timestamptz"}
        lines = [
            "    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            "    name text NOT NULL CHECK (length(name) <= 200)",
            "    created_at timestamptz NOT NULL DEFAULT now()",
            "    updated_at timestamptz NOT NULL DEFAULT now()",
        ]
        if ref is not None:
            lines.append(f"    {ref.name}_id bigint NOT NULL REFERENCES {ref.name} (id)")
            cols[f"{ref.name}_id"] = "bigint"
        sql = f"CREATE TABLE {name} (\n" + ",\n".join(lines) + "\n);\n"
        if ref is not None:
            sql += f"CREATE INDEX {name}_{ref.name}_id_idx ON {name} ({ref.name}_id);\n"
        sql += f"COMMENT ON TABLE {name} IS 'created by the {name} feature';\n"
        self.tables.append(_Table(name, cols))
        self.emit(f"create_{name}", sql, set(), "create-table-modern")

    def create_table_django(self) -> None:
        name = self.fresh("app_" + self.rng.choice(NOUNS))
        ref = self.table() if self.tables and self.rng.random() < 0.6 else None
        cols = {"id": "integer", "title": "varchar", "created": "timestamptz", "is_active": "boolean"}
        sql = (
            f'CREATE TABLE "{name}" ("id" serial NOT NULL PRIMARY KEY, "title" varchar(254) NOT NULL, '
            f'"created" timestamp with time zone NOT NULL, "is_active" boolean NOT NULL);\n'
        )
        expected = {"prefer-identity", "prefer-bigint", "prefer-text-field"}
        if ref is not None:
            sql += (
                f'ALTER TABLE "{name}" ADD COLUMN "{ref.name}_id" bigint NOT NULL;\n'
                f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_{ref.name}_id_fk" '
                f'FOREIGN KEY ("{ref.name}_id") '
                f'REFERENCES "{ref.name}" ("id") DEFERRABLE INITIALLY DEFERRED;\n'
                f'CREATE INDEX "{name}_{ref.name}_id_idx" ON "{name}" ("{ref.name}_id");\n'
            )
            cols[f"{ref.name}_id"] = "bigint"
        self.tables.append(_Table(name, cols))
        self.emit(f"create_{name}", sql, expected, "create-table-django")

    def create_table_rails(self) -> None:
        name = self.fresh(self.rng.choice(NOUNS) + "_log")
        sql = (
            f"CREATE TABLE public.{name} (\n    id bigint NOT NULL,\n    message character varying,\n"
            f"    created_at timestamp(6) without time zone NOT NULL,\n"
            f"    updated_at timestamp(6) without time zone NOT NULL\n);\n"
            f"CREATE SEQUENCE public.{name}_id_seq\n"
            "    START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;\n"
            f"ALTER SEQUENCE public.{name}_id_seq OWNED BY public.{name}.id;\n"
            f"ALTER TABLE ONLY public.{name} ALTER COLUMN id\n"
            f"    SET DEFAULT nextval('public.{name}_id_seq'::regclass);\n"
            f"ALTER TABLE ONLY public.{name} ADD CONSTRAINT {name}_pkey PRIMARY KEY (id);\n"
        )
        self.tables.append(_Table(name, {"id": "bigint", "message": "varchar", "created_at": "timestamp"}))
        self.emit(f"create_{name}", sql, {"prefer-timestamptz"}, "create-table-rails")

    def add_nullable_column(self) -> None:
        t = self.table()
        col = self.fresh(self.rng.choice(ADJ) + "_note")
        t.columns[col] = "text"
        self.emit(
            f"add_{t.name}_{col}", f"ALTER TABLE {t.name} ADD COLUMN {col} text;", set(), "add-nullable"
        )

    def add_constant_default(self) -> None:
        t = self.table()
        col = self.fresh(self.rng.choice(ADJ) + "_enabled")
        t.columns[col] = "boolean"
        self.emit(
            f"add_{t.name}_{col}",
            f"ALTER TABLE {t.name} ADD COLUMN {col} boolean NOT NULL DEFAULT false;",
            set(),
            "add-constant-default",
        )

    def add_stable_default(self) -> None:
        t = self.table()
        col = self.fresh(self.rng.choice(ADJ) + "_at")
        t.columns[col] = "timestamptz"
        self.emit(
            f"add_{t.name}_{col}",
            f"ALTER TABLE {t.name} ADD COLUMN {col} timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP;",
            set(),
            "add-stable-default",
        )

    def add_volatile_default(self) -> None:
        t = self.table()
        col = self.fresh("public_uuid")
        t.columns[col] = "uuid"
        self.emit(
            f"add_{t.name}_{col}",
            f"ALTER TABLE {t.name} ADD COLUMN {col} uuid DEFAULT gen_random_uuid();",
            {"adding-field-with-default"},
            "add-volatile-default",
        )

    def add_required_without_default(self) -> None:
        t = self.table()
        col = self.fresh(self.rng.choice(ADJ) + "_code")
        t.columns[col] = "text"
        self.emit(
            f"add_{t.name}_{col}",
            f"ALTER TABLE {t.name} ADD COLUMN {col} text NOT NULL;",
            {"adding-required-field"},
            "add-required-no-default",
        )

    def index_concurrently(self) -> None:
        t = self.table()
        col = self.column_of(t)
        if col is None:
            return self.add_nullable_column()
        idx = self.fresh(f"{t.name}_{col}_idx")
        self.emit(
            f"index_{idx}",
            f"-- schemagate:set statement_timeout=2h\n"
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {idx} ON {t.name} ({col});",
            set(),
            "index-concurrently",
        )
        return None

    def index_plain(self) -> None:
        t = self.table()
        col = self.column_of(t)
        if col is None:
            return self.add_nullable_column()
        idx = self.fresh(f"{t.name}_{col}_idx")
        self.emit(
            f"index_{idx}",
            f"CREATE INDEX {idx} ON {t.name} ({col});",
            {"require-concurrent-index-creation"},
            "index-plain",
        )
        return None

    def drop_index_concurrently(self) -> None:
        idx = self.fresh("obsolete_idx")
        self.emit(
            f"drop_{idx}", f"DROP INDEX CONCURRENTLY IF EXISTS {idx};", set(), "drop-index-concurrently"
        )

    def fk_not_valid_then_validate(self) -> None:
        if len(self.tables) < 2:
            return self.add_nullable_column()
        a, b = self.rng.sample(self.tables, 2)
        col = self.fresh(f"{b.name}_ref_id")
        con = f"{a.name}_{col}_fkey"
        a.columns[col] = "bigint"
        self.emit(
            f"add_{a.name}_{col}",
            f"ALTER TABLE {a.name} ADD COLUMN {col} bigint;\n"
            f"ALTER TABLE {a.name} ADD CONSTRAINT {con}\n"
            f"    FOREIGN KEY ({col}) REFERENCES {b.name} (id) NOT VALID;",
            set(),
            "fk-not-valid",
        )
        self.emit(
            f"validate_{con}",
            f"ALTER TABLE {a.name} VALIDATE CONSTRAINT {con};",
            {"data-dependent-change"},
            "fk-validate",
        )
        return None

    def fk_plain(self) -> None:
        if len(self.tables) < 2:
            return self.add_nullable_column()
        a, b = self.rng.sample(self.tables, 2)
        col = self.fresh(f"{b.name}_link_id")
        a.columns[col] = "bigint"
        self.emit(
            f"link_{a.name}_{b.name}",
            f"ALTER TABLE {a.name} ADD COLUMN {col} bigint REFERENCES {b.name} (id);",
            {"adding-foreign-key-constraint"},
            "fk-inline",
        )
        return None

    def not_null_the_safe_way(self) -> None:
        t = self.table()
        col = self.column_of(t, "text")
        if col is None:
            return self.add_nullable_column()
        con = self.fresh(f"{t.name}_{col}_not_null")
        self.emit(
            f"backfill_{t.name}_{col}",
            f"UPDATE {t.name} SET {col} = '' WHERE {col} IS NULL;",
            set(),
            "backfill",
        )
        self.emit(
            f"check_{con}",
            f"ALTER TABLE {t.name} ADD CONSTRAINT {con} CHECK ({col} IS NOT NULL) NOT VALID;",
            set(),
            "check-not-valid",
        )
        self.emit(
            f"validate_{con}",
            f"ALTER TABLE {t.name} VALIDATE CONSTRAINT {con};",
            {"data-dependent-change"},
            "check-validate",
        )
        self.emit(
            f"set_not_null_{t.name}_{col}",
            f"ALTER TABLE {t.name} ALTER COLUMN {col} SET NOT NULL;\n"
            f"ALTER TABLE {t.name} DROP CONSTRAINT {con};",
            set(),
            "set-not-null-after-check",
        )
        t.columns[col] = "text!"
        return None

    def not_null_directly(self) -> None:
        t = self.table()
        col = self.column_of(t, "text")
        if col is None:
            return self.add_nullable_column()
        t.columns[col] = "text!"
        self.emit(
            f"require_{t.name}_{col}",
            f"ALTER TABLE {t.name} ALTER COLUMN {col} SET NOT NULL;",
            {"adding-not-nullable-field", "data-dependent-change"},
            "set-not-null-direct",
        )
        return None

    def check_in_one_step(self) -> None:
        t = self.table()
        con = self.fresh(f"{t.name}_id_positive")
        self.emit(
            f"check_{con}",
            f"ALTER TABLE {t.name} ADD CONSTRAINT {con} CHECK (id > 0);",
            {"constraint-missing-not-valid", "data-dependent-change"},
            "check-plain",
        )

    def rename_column(self) -> None:
        t = self.table()
        col = self.column_of(t)
        if col is None:
            return self.add_nullable_column()
        new = self.fresh(col + "_renamed")
        t.columns[new] = t.columns.pop(col)
        self.emit(
            f"rename_{t.name}_{col}",
            f"ALTER TABLE {t.name} RENAME COLUMN {col} TO {new};",
            {"renaming-column"},
            "rename-column",
        )
        return None

    def drop_column(self, suppressed: bool) -> None:
        t = self.table()
        col = self.column_of(t)
        if col is None or col.endswith("_id"):
            return self.add_nullable_column()
        del t.columns[col]
        if suppressed:
            self.emit(
                f"drop_{t.name}_{col}",
                f"-- schemagate:ignore ban-drop-column -- unused since release "
                f"{self.version // 10}.0\nALTER TABLE {t.name} DROP COLUMN IF EXISTS {col};",
                set(),
                "drop-column-suppressed",
            )
        else:
            self.emit(
                f"drop_{t.name}_{col}",
                f"ALTER TABLE {t.name} DROP COLUMN {col};",
                {"ban-drop-column"},
                "drop-column",
            )
        return None

    def widen_varchar(self) -> None:
        t = self.table()
        col = self.column_of(t, "varchar")
        if col is None:
            return self.add_nullable_column()
        t.columns[col] = "text"
        self.emit(
            f"widen_{t.name}_{col}",
            f'ALTER TABLE "{t.name}" ALTER COLUMN "{col}" TYPE text;',
            set(),
            "widen-varchar",
        )
        return None

    def int_to_bigint(self) -> None:
        cands = [t for t in self.tables if t.columns.get("id") == "integer"]
        if not cands:
            return self.add_nullable_column()
        t = self.rng.choice(cands)
        t.columns["id"] = "bigint"
        self.emit(
            f"bigint_{t.name}_id",
            f'ALTER TABLE "{t.name}" ALTER COLUMN "id" TYPE bigint;',
            {"changing-column-type"},
            "int-to-bigint",
        )
        return None

    def unique_the_safe_way(self) -> None:
        t = self.table()
        col = self.column_of(t)
        if col is None:
            return self.add_nullable_column()
        idx = self.fresh(f"{t.name}_{col}_key")
        self.emit(
            f"index_{idx}",
            f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {idx} ON {t.name} ({col});",
            {"data-dependent-change"},  # duplicates would make it fail
            "unique-index-concurrently",
        )
        self.emit(
            f"unique_{idx}",
            f"ALTER TABLE {t.name} ADD CONSTRAINT {idx} UNIQUE USING INDEX {idx};",
            set(),
            "unique-using-index",
        )
        return None

    def unique_directly(self) -> None:
        t = self.table()
        col = self.column_of(t)
        if col is None:
            return self.add_nullable_column()
        con = self.fresh(f"{t.name}_{col}_uniq")
        self.emit(
            f"unique_{con}",
            f"ALTER TABLE {t.name} ADD CONSTRAINT {con} UNIQUE ({col});",
            {"disallowed-unique-constraint", "data-dependent-change"},
            "unique-direct",
        )
        return None

    def enum_lifecycle(self) -> None:
        name = self.fresh("status_kind")
        values = ["draft", "active", "archived"]
        self.enums[name] = values
        self.emit(
            f"create_{name}",
            f"CREATE TYPE {name} AS ENUM ({', '.join(repr(v) for v in values)});",
            set(),
            "create-enum",
        )
        new = self.fresh("paused")
        self.emit(
            f"{name}_add_{new}",
            f"ALTER TYPE {name} ADD VALUE IF NOT EXISTS '{new}' AFTER 'active';",
            set(),
            "enum-add-value",
        )
        t = self.table()
        col = self.fresh(name)
        t.columns[col] = name
        self.enum_columns[name] = (t.name, col)
        self.emit(
            f"add_{t.name}_{col}",
            f"ALTER TABLE {t.name} ADD COLUMN {col} {name};\n"
            f"UPDATE {t.name} SET {col} = '{new}' WHERE id < 0;",
            set(),
            "enum-use-next-file",
        )

    def enum_used_in_same_file(self) -> None:
        if not self.enums:
            return self.enum_lifecycle()
        name = self.rng.choice(list(self.enums))
        table, col = self.enum_columns[name]
        new = self.fresh("escalated")
        self.emit(
            f"{name}_add_{new}",
            f"ALTER TYPE {name} ADD VALUE '{new}' BEFORE 'archived';\n"
            f"UPDATE {table} SET {col} = '{new}' WHERE {col} = 'active' AND id < 0;",
            {"enum-value-in-transaction"},
            "enum-used-same-file",
        )
        return None

    def view_and_function(self) -> None:
        t = self.table()
        fn = self.fresh(f"{t.name}_touch")
        self.emit(
            f"function_{fn}",
            f"""CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- keep updated_at current; ALTER TABLE x DROP COLUMN y inside a body is not DDL run now
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE OR REPLACE VIEW {t.name}_recent AS SELECT * FROM {t.name} WHERE id > 0;
GRANT SELECT ON {t.name}_recent TO PUBLIC;""",
            set(),
            "function-view",
        )

    def partitioned(self) -> None:
        name = self.fresh("metrics")
        self.emit(
            f"create_{name}",
            f"""CREATE TABLE {name} (
    recorded_at timestamptz NOT NULL,
    account_id bigint NOT NULL,
    value double precision
) PARTITION BY RANGE (recorded_at);
CREATE TABLE {name}_2024 PARTITION OF {name} FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE {name}_2025 PARTITION OF {name} FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX {name}_account_idx ON {name} (account_id, recorded_at);""",
            set(),
            "partitioned-table",
        )
        self.emit(
            f"detach_{name}_2024",
            f"ALTER TABLE {name} DETACH PARTITION {name}_2024 CONCURRENTLY;",
            set(),
            "detach-concurrently",
        )
        self.emit(
            f"detach_{name}_2025",
            f"ALTER TABLE {name} DETACH PARTITION {name}_2025;",
            {"require-concurrent-partition-detach"},
            "detach-plain",
        )

    def data_backfill(self) -> None:
        t = self.table()
        self.emit(
            f"backfill_{t.name}",
            f"""DO $$
DECLARE n bigint;
BEGIN
    LOOP
        UPDATE {t.name} SET updated_at = updated_at WHERE id IN (SELECT id FROM {t.name} LIMIT 1000);
        GET DIAGNOSTICS n = ROW_COUNT;
        EXIT WHEN n < 1000;
    END LOOP;
END
$$;""",
            set(),
            "backfill-do",
        )

    def add_timestamp_without_tz(self) -> None:
        t = self.table()
        col = self.fresh("synced_at")
        t.columns[col] = "timestamp"
        self.emit(
            f"add_{t.name}_{col}",
            f"ALTER TABLE {t.name} ADD COLUMN {col} timestamp;",
            {"prefer-timestamptz"},
            "add-timestamp",
        )

    def drop_table_created_in_same_file(self) -> None:
        name = self.fresh("tmp_import")
        self.emit(
            f"import_{name}",
            f"CREATE TABLE {name} (line text);\nINSERT INTO {name} VALUES ('a'), ('b');\nDROP TABLE {name};",
            set(),
            "drop-same-file-table",
        )

    def truncate_cascade(self) -> None:
        t = self.table()
        self.emit(
            f"reset_{t.name}", f"TRUNCATE {t.name} CASCADE;", {"ban-truncate-cascade"}, "truncate-cascade"
        )

    def view_replaced(self) -> None:
        t = self.table()
        self.emit(
            f"replace_{t.name}_summary",
            f"DROP VIEW IF EXISTS {t.name}_summary;\n"
            f"CREATE VIEW {t.name}_summary AS SELECT id, updated_at FROM {t.name} WHERE id > 0;",
            set(),
            "view-dropped-and-recreated",
        )

    def view_dropped(self) -> None:
        t = self.table()
        self.emit(f"drop_{t.name}_recent", f"DROP VIEW {t.name}_recent;", {"ban-drop-object"}, "view-dropped")

    def prisma_enum_swap(self) -> None:
        """Prisma removing an enum value: a new type swapped in under the old name, in one transaction."""
        if not self.enums:
            return self.enum_lifecycle()
        name = self.rng.choice(list(self.enums))
        table, col = self.enum_columns[name]
        self.emit(
            f"{name}_without_archived",
            f"""-- AlterEnum
CREATE TYPE "{name}_new" AS ENUM ('draft', 'active');
ALTER TABLE "{table}" ALTER COLUMN "{col}" DROP DEFAULT;
ALTER TABLE "{table}" ALTER COLUMN "{col}" TYPE "{name}_new" USING ("{col}"::text::"{name}_new");
ALTER TYPE "{name}" RENAME TO "{name}_old";
ALTER TYPE "{name}_new" RENAME TO "{name}";
DROP TYPE "{name}_old";
ALTER TABLE "{table}" ALTER COLUMN "{col}" SET DEFAULT 'draft';""",
            # the column is rewritten, and a row still 'archived' makes the cast fail
            {"changing-column-type", "data-dependent-change"},
            "prisma-enum-swap",
        )
        return None

    def vacuum_full(self) -> None:
        t = self.table()
        self.emit(f"vacuum_{t.name}", f"VACUUM FULL {t.name};", {"prefer-repack"}, "vacuum-full")

    def drop_constraint(self) -> None:
        t = self.table()
        self.emit(
            f"drop_{t.name}_legacy_check",
            f"ALTER TABLE {t.name} DROP CONSTRAINT IF EXISTS {t.name}_legacy_check;",
            {"ban-drop-constraint"},
            "drop-constraint",
        )

    def widen_check(self) -> None:
        t = self.table()
        con = f"{t.name}_id_range"
        self.emit(
            f"widen_{con}",
            f"ALTER TABLE {t.name} DROP CONSTRAINT IF EXISTS {con};\n"
            f"ALTER TABLE {t.name} ADD CONSTRAINT {con} CHECK (id > -1000) NOT VALID;",
            set(),
            "check-replaced",
        )

    def duplicate_assignment(self) -> None:
        t = self.table()
        self.emit(
            f"touch_{t.name}",
            f"UPDATE {t.name} SET updated_at = now(), id = id, updated_at = now() WHERE id < 0;",
            {"ban-duplicate-column-assignments"},
            "duplicate-assignment",
        )


def build_history(n_files: int = 400, seed: int = 42) -> list[Migration]:
    b = HistoryBuilder(seed)
    for _ in range(3):
        b.create_table_modern()
    weighted = [
        (b.create_table_modern, 8),
        (b.create_table_django, 4),
        (b.create_table_rails, 2),
        (b.add_nullable_column, 8),
        (b.add_constant_default, 5),
        (b.add_stable_default, 3),
        (b.add_volatile_default, 2),
        (b.add_required_without_default, 2),
        (b.index_concurrently, 6),
        (b.index_plain, 3),
        (b.drop_index_concurrently, 2),
        (b.fk_not_valid_then_validate, 4),
        (b.fk_plain, 2),
        (b.not_null_the_safe_way, 3),
        (b.not_null_directly, 2),
        (b.check_in_one_step, 2),
        (b.rename_column, 2),
        (lambda: b.drop_column(True), 2),
        (lambda: b.drop_column(False), 2),
        (b.widen_varchar, 2),
        (b.int_to_bigint, 1),
        (b.unique_the_safe_way, 2),
        (b.unique_directly, 1),
        (b.enum_lifecycle, 2),
        (b.enum_used_in_same_file, 1),
        (b.view_and_function, 4),
        (b.partitioned, 1),
        (b.data_backfill, 2),
        (b.add_timestamp_without_tz, 1),
        (b.drop_table_created_in_same_file, 1),
        (b.truncate_cascade, 1),
        (b.view_replaced, 2),
        (b.view_dropped, 1),
        (b.prisma_enum_swap, 1),
        (b.vacuum_full, 1),
        (b.drop_constraint, 1),
        (b.widen_check, 1),
        (b.duplicate_assignment, 1),
    ]
    patterns = [p for p, _ in weighted]
    weights = [w for _, w in weighted]
    while len(b.migrations) < n_files:
        b.rng.choices(patterns, weights)[0]()
    return b.migrations[:n_files]
