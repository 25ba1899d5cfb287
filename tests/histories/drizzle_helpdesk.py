"""A Drizzle history of a multi-tenant help-desk app (a Next.js team using drizzle-kit since 0.20),
the way drizzle-kit's users end up with one: the ``drizzle/`` out folder with ``meta/_journal.json``
and ``meta/<idx>_snapshot.json``, drizzle-kit's random tags (``0000_sharp_the_hood``) next to named
ones (``--name``), and the SQL of three drizzle-kit eras:

- 0.20 (0000-0009, journal entries ``"version": "5"``): ``CREATE TABLE IF NOT EXISTS``, enums and
  foreign keys wrapped in ``DO $$ BEGIN ... EXCEPTION WHEN duplicate_object THEN null; END $$;``,
  ``;--> statement-breakpoint`` on the same line as an ``ALTER TABLE``, indexes without ``USING``;
- 0.22-0.24 (0010-0017, ``"6"``/``"7"``): ``CREATE TYPE "public"."..."`` still in DO blocks,
  ``USING btree``, identity columns with their sequence options, a partial unique index;
- 0.30+ (0018-0031): no more ``IF NOT EXISTS`` or DO blocks, ``REFERENCES "public"."users"("id")``,
  ``ALTER TYPE ... ADD VALUE``, a schema of its own, RLS policies, a generated column, a view;

plus custom migrations (``drizzle-kit generate --custom``: a trigger function, data backfills, seed
rows) and one orphan: ``0017_lucky_thor.sql``, generated on a branch whose journal entry lost the merge
conflict in ``_journal.json`` (the other branch's ``0017_ticket_channel_enum`` won). drizzle-orm never
ran the orphan; it would not even apply (``priority`` exists with another type by then).

drizzle-orm's migrator runs every pending migration in one transaction, so, like a real Drizzle
history, nothing here needs to run outside one (no CONCURRENTLY) and no migration uses an enum value
added by an earlier one.  The snapshots are kept short (the ids and the chain of ``prevId`` that
drizzle-kit reads; the real ones also hold the whole schema): they are support files, never run.
"""

from __future__ import annotations

import json
from pathlib import Path

# (tag, journal entry "version", the SQL as drizzle-kit wrote it (or the team, for custom ones))
MIGRATIONS: list[tuple[str, str, str]] = [
    (
        "0000_sharp_the_hood",
        "5",
        """\
DO $$ BEGIN
 CREATE TYPE "role" AS ENUM('owner', 'admin', 'agent');
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "organizations" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"slug" varchar(64) NOT NULL,
	"created_at" timestamp DEFAULT now() NOT NULL,
	CONSTRAINT "organizations_slug_unique" UNIQUE("slug")
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "users" (
	"id" serial PRIMARY KEY NOT NULL,
	"email" varchar(255) NOT NULL,
	"name" text,
	"created_at" timestamp DEFAULT now() NOT NULL,
	CONSTRAINT "users_email_unique" UNIQUE("email")
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "memberships" (
	"organization_id" integer NOT NULL,
	"user_id" integer NOT NULL,
	"role" "role" DEFAULT 'agent' NOT NULL,
	CONSTRAINT "memberships_organization_id_user_id_pk" PRIMARY KEY("organization_id","user_id")
);
--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "memberships" ADD CONSTRAINT "memberships_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE cascade ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "memberships" ADD CONSTRAINT "memberships_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE cascade ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
""",
    ),
    (
        "0001_tickets",
        "5",
        """\
DO $$ BEGIN
 CREATE TYPE "ticket_status" AS ENUM('open', 'pending', 'solved', 'closed');
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "tickets" (
	"id" serial PRIMARY KEY NOT NULL,
	"organization_id" integer NOT NULL,
	"requester_id" integer NOT NULL,
	"subject" varchar(300) NOT NULL,
	"status" "ticket_status" DEFAULT 'open' NOT NULL,
	"created_at" timestamp DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "tickets_organization_id_idx" ON "tickets" ("organization_id");
--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "tickets" ADD CONSTRAINT "tickets_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE cascade ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "tickets" ADD CONSTRAINT "tickets_requester_id_users_id_fk" FOREIGN KEY ("requester_id") REFERENCES "users"("id") ON DELETE no action ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
""",
    ),
    (
        "0002_wandering_kitty_pryde",
        "5",
        """\
CREATE TABLE IF NOT EXISTS "comments" (
	"id" serial PRIMARY KEY NOT NULL,
	"ticket_id" integer NOT NULL,
	"author_id" integer NOT NULL,
	"body" text NOT NULL,
	"created_at" timestamp DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "comments_ticket_id_idx" ON "comments" ("ticket_id");
--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "comments" ADD CONSTRAINT "comments_ticket_id_tickets_id_fk" FOREIGN KEY ("ticket_id") REFERENCES "tickets"("id") ON DELETE cascade ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "comments" ADD CONSTRAINT "comments_author_id_users_id_fk" FOREIGN KEY ("author_id") REFERENCES "users"("id") ON DELETE no action ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
""",
    ),
    (
        "0003_glossy_shriek",
        "5",
        """\
ALTER TABLE "users" ADD COLUMN "avatar_url" text;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "last_seen_at" timestamp;""",
    ),
    (
        "0004_tags",
        "5",
        """\
CREATE TABLE IF NOT EXISTS "tags" (
	"id" serial PRIMARY KEY NOT NULL,
	"organization_id" integer NOT NULL,
	"name" varchar(50) NOT NULL,
	"color" varchar(7) DEFAULT '#64748b' NOT NULL
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "ticket_tags" (
	"ticket_id" integer NOT NULL,
	"tag_id" integer NOT NULL,
	CONSTRAINT "ticket_tags_ticket_id_tag_id_pk" PRIMARY KEY("ticket_id","tag_id")
);
--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "tags_organization_id_name_idx" ON "tags" ("organization_id","name");--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "tags" ADD CONSTRAINT "tags_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE cascade ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "ticket_tags" ADD CONSTRAINT "ticket_tags_ticket_id_tickets_id_fk" FOREIGN KEY ("ticket_id") REFERENCES "tickets"("id") ON DELETE cascade ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "ticket_tags" ADD CONSTRAINT "ticket_tags_tag_id_tags_id_fk" FOREIGN KEY ("tag_id") REFERENCES "tags"("id") ON DELETE cascade ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
""",
    ),
    (
        "0005_seed_support_org",
        "5",
        """\
-- Custom SQL migration file, put your code below! --
-- The support team's own organization, and a name for every user who signed up by e-mail only.
INSERT INTO "organizations" ("name", "slug") VALUES ('Relay Support', 'relay') ON CONFLICT ("slug") DO NOTHING;
--> statement-breakpoint
INSERT INTO "users" ("email") VALUES ('support@relay.example'), ('ops@relay.example') ON CONFLICT ("email") DO NOTHING;
--> statement-breakpoint
UPDATE "users" SET "name" = split_part("email", '@', 1) WHERE "name" IS NULL;
--> statement-breakpoint
INSERT INTO "memberships" ("organization_id", "user_id", "role")
SELECT o."id", u."id", CASE WHEN u."email" LIKE 'support@%' THEN 'owner'::"role" ELSE 'admin'::"role" END
FROM "organizations" o CROSS JOIN "users" u
WHERE o."slug" = 'relay'
ON CONFLICT DO NOTHING;
""",
    ),
    (
        "0006_users_name_not_null",
        "5",
        """\
ALTER TABLE "users" ALTER COLUMN "name" SET NOT NULL;""",
    ),
    (
        "0007_clean_gamma_corps",
        "5",
        """\
CREATE TABLE IF NOT EXISTS "attachments" (
	"id" serial PRIMARY KEY NOT NULL,
	"comment_id" integer NOT NULL,
	"file_name" text NOT NULL,
	"content_type" varchar(255) NOT NULL,
	"size_bytes" integer NOT NULL,
	"storage_key" text NOT NULL,
	"created_at" timestamp DEFAULT now() NOT NULL,
	CONSTRAINT "attachments_storage_key_unique" UNIQUE("storage_key")
);
--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "attachments" ADD CONSTRAINT "attachments_comment_id_comments_id_fk" FOREIGN KEY ("comment_id") REFERENCES "comments"("id") ON DELETE cascade ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
""",
    ),
    (
        "0008_ticket_assignee",
        "5",
        """\
ALTER TABLE "tickets" ADD COLUMN "assignee_id" integer;--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "tickets_assignee_id_idx" ON "tickets" ("assignee_id");--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "tickets" ADD CONSTRAINT "tickets_assignee_id_users_id_fk" FOREIGN KEY ("assignee_id") REFERENCES "users"("id") ON DELETE set null ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
""",
    ),
    (
        "0009_familiar_sentry",
        "5",
        """\
CREATE TABLE IF NOT EXISTS "sla_policies" (
	"id" serial PRIMARY KEY NOT NULL,
	"organization_id" integer NOT NULL,
	"name" text NOT NULL,
	"first_response_minutes" integer NOT NULL,
	"resolution_minutes" integer NOT NULL,
	"is_default" boolean DEFAULT false NOT NULL
);
--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "sla_policy_id" integer;--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "sla_policies" ADD CONSTRAINT "sla_policies_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE cascade ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "tickets" ADD CONSTRAINT "tickets_sla_policy_id_sla_policies_id_fk" FOREIGN KEY ("sla_policy_id") REFERENCES "sla_policies"("id") ON DELETE set null ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
""",
    ),
    (
        "0010_ticket_priority",
        "6",
        """\
DO $$ BEGIN
 CREATE TYPE "public"."priority" AS ENUM('low', 'normal', 'high', 'urgent');
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "priority" "priority" DEFAULT 'normal' NOT NULL;""",
    ),
    (
        "0011_silly_wiccan",
        "6",
        """\
CREATE TABLE IF NOT EXISTS "webhooks" (
	"id" serial PRIMARY KEY NOT NULL,
	"organization_id" integer NOT NULL,
	"url" text NOT NULL,
	"events" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"legacy_secret" varchar(64),
	"signing_secret" text NOT NULL,
	"active" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "webhooks" ADD CONSTRAINT "webhooks_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "webhooks_organization_id_index" ON "webhooks" USING btree ("organization_id");""",
    ),
    (
        "0012_tickets_updated_at",
        "6",
        """\
ALTER TABLE "tickets" ADD COLUMN "updated_at" timestamp with time zone DEFAULT now() NOT NULL;""",
    ),
    (
        "0013_updated_at_trigger",
        "6",
        """\
-- Custom SQL migration file, put your code below! --
CREATE OR REPLACE FUNCTION "set_updated_at"() RETURNS trigger AS $$
BEGIN
  NEW."updated_at" = now();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
DROP TRIGGER IF EXISTS "tickets_set_updated_at" ON "tickets";
--> statement-breakpoint
CREATE TRIGGER "tickets_set_updated_at" BEFORE UPDATE ON "tickets"
  FOR EACH ROW EXECUTE FUNCTION "set_updated_at"();
""",
    ),
    (
        "0014_tough_ultron",
        "7",
        """\
CREATE TABLE IF NOT EXISTS "audit_log" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "audit_log_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"organization_id" integer NOT NULL,
	"actor_id" integer,
	"action" varchar(100) NOT NULL,
	"target" jsonb NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "audit_log" ADD CONSTRAINT "audit_log_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "audit_log" ADD CONSTRAINT "audit_log_actor_id_users_id_fk" FOREIGN KEY ("actor_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "audit_log_organization_id_at_index" ON "audit_log" USING btree ("organization_id","at");""",
    ),
    (
        "0015_one_owner_per_org",
        "7",
        """\
CREATE UNIQUE INDEX IF NOT EXISTS "memberships_one_owner_idx" ON "memberships" USING btree ("organization_id") WHERE "memberships"."role" = 'owner';""",
    ),
    (
        "0016_api_keys",
        "7",
        """\
CREATE TABLE IF NOT EXISTS "api_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"organization_id" integer NOT NULL,
	"name" text NOT NULL,
	"token_hash" text NOT NULL,
	"last_used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "api_keys_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
DO $$ BEGIN
 ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "api_keys_active_idx" ON "api_keys" USING btree ("organization_id") WHERE "api_keys"."revoked_at" is null;""",
    ),
    (
        "0017_ticket_channel_enum",
        "7",
        """\
DO $$ BEGIN
 CREATE TYPE "public"."channel" AS ENUM('email', 'chat', 'phone', 'api');
EXCEPTION
 WHEN duplicate_object THEN null;
END $$;
--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "channel" "channel" DEFAULT 'email' NOT NULL;""",
    ),
    (
        "0018_on_hold_status",
        "7",
        """\
ALTER TYPE "public"."ticket_status" ADD VALUE 'on_hold' BEFORE 'solved';""",
    ),
    (
        "0019_billing_schema",
        "7",
        """\
CREATE SCHEMA "billing";
--> statement-breakpoint
CREATE TYPE "billing"."invoice_state" AS ENUM('draft', 'open', 'paid', 'void');--> statement-breakpoint
CREATE TABLE "billing"."subscriptions" (
	"id" serial PRIMARY KEY NOT NULL,
	"organization_id" integer NOT NULL,
	"plan" varchar(32) NOT NULL,
	"seats" integer DEFAULT 1 NOT NULL,
	"current_period_end" timestamp with time zone NOT NULL,
	CONSTRAINT "subscriptions_organization_id_unique" UNIQUE("organization_id"),
	CONSTRAINT "seats_positive" CHECK ("billing"."subscriptions"."seats" > 0)
);
--> statement-breakpoint
CREATE TABLE "billing"."invoices" (
	"id" serial PRIMARY KEY NOT NULL,
	"subscription_id" integer NOT NULL,
	"state" "billing"."invoice_state" DEFAULT 'draft' NOT NULL,
	"amount_cents" integer NOT NULL,
	"issued_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "billing"."subscriptions" ADD CONSTRAINT "subscriptions_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "billing"."invoices" ADD CONSTRAINT "invoices_subscription_id_subscriptions_id_fk" FOREIGN KEY ("subscription_id") REFERENCES "billing"."subscriptions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "invoices_open_idx" ON "billing"."invoices" USING btree ("subscription_id") WHERE "billing"."invoices"."state" = 'open';""",
    ),
    (
        "0020_famous_quasar",
        "7",
        """\
ALTER TABLE "comments" RENAME COLUMN "body" TO "body_markdown";--> statement-breakpoint
ALTER TABLE "comments" ADD COLUMN "is_internal" boolean DEFAULT false NOT NULL;""",
    ),
    (
        "0021_default_sla_policies",
        "7",
        """\
-- Custom SQL migration file, put your code below! --
-- Every organization gets the default SLA, and open tickets without one are put on it.
INSERT INTO "sla_policies" ("organization_id", "name", "first_response_minutes", "resolution_minutes", "is_default")
SELECT o."id", 'Standard', 240, 2880, true
FROM "organizations" o
WHERE NOT EXISTS (SELECT 1 FROM "sla_policies" p WHERE p."organization_id" = o."id" AND p."is_default");
--> statement-breakpoint
UPDATE "tickets" t SET "sla_policy_id" = p."id"
FROM "sla_policies" p
WHERE p."organization_id" = t."organization_id" AND p."is_default" AND t."sla_policy_id" IS NULL
  AND t."status" IN ('open', 'pending');
""",
    ),
    (
        "0022_one_default_sla",
        "7",
        """\
CREATE UNIQUE INDEX "sla_policies_one_default_idx" ON "sla_policies" USING btree ("organization_id") WHERE "sla_policies"."is_default" = true;""",
    ),
    (
        "0023_lush_silver_sable",
        "7",
        """\
DROP INDEX "tickets_organization_id_idx";--> statement-breakpoint
CREATE INDEX "tickets_organization_id_status_index" ON "tickets" USING btree ("organization_id","status");""",
    ),
    (
        "0024_tenant_isolation",
        "7",
        """\
ALTER TABLE "tickets" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "comments" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY "tickets_tenant_isolation" ON "tickets" AS PERMISSIVE FOR ALL TO public USING ("tickets"."organization_id" = current_setting('app.organization_id', true)::integer);--> statement-breakpoint
CREATE POLICY "comments_tenant_isolation" ON "comments" AS PERMISSIVE FOR ALL TO public USING (exists (select 1 from "tickets" where "tickets"."id" = "comments"."ticket_id"));""",
    ),
    (
        "0025_ticket_search",
        "7",
        """\
ALTER TABLE "tickets" ADD COLUMN "search" "tsvector" GENERATED ALWAYS AS (to_tsvector('english', "tickets"."subject")) STORED;--> statement-breakpoint
CREATE INDEX "tickets_search_index" ON "tickets" USING gin ("search");""",
    ),
    (
        "0026_parched_the_captain",
        "7",
        """\
ALTER TABLE "attachments" ALTER COLUMN "size_bytes" SET DATA TYPE bigint;""",
    ),
    (
        "0027_saved_views",
        "7",
        """\
CREATE TABLE "saved_views" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "saved_views_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"organization_id" integer NOT NULL,
	"owner_id" integer NOT NULL,
	"name" varchar(100) NOT NULL,
	"filters" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"position" smallint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
ALTER TABLE "saved_views" ADD CONSTRAINT "saved_views_organization_id_organizations_id_fk" FOREIGN KEY ("organization_id") REFERENCES "public"."organizations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "saved_views" ADD CONSTRAINT "saved_views_owner_id_users_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "saved_views_owner_id_name_index" ON "saved_views" USING btree ("owner_id","name");""",
    ),
    (
        "0028_open_tickets_view",
        "7",
        """\
CREATE VIEW "public"."open_tickets" AS (select "id", "organization_id", "subject", "priority", "assignee_id" from "tickets" where "tickets"."status" in ('open', 'pending'));""",
    ),
    (
        "0029_drop_legacy_webhook_secret",
        "7",
        """\
ALTER TABLE "webhooks" DROP COLUMN "legacy_secret";""",
    ),
    (
        "0030_ticket_events",
        "7",
        """\
CREATE TYPE "public"."ticket_event_kind" AS ENUM('created', 'status_changed', 'assigned', 'commented', 'merged');--> statement-breakpoint
CREATE TABLE "ticket_events" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "ticket_events_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"ticket_id" integer NOT NULL,
	"kind" "ticket_event_kind" NOT NULL,
	"actor_id" integer,
	"data" jsonb,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "ticket_events" ADD CONSTRAINT "ticket_events_ticket_id_tickets_id_fk" FOREIGN KEY ("ticket_id") REFERENCES "public"."tickets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ticket_events" ADD CONSTRAINT "ticket_events_actor_id_users_id_fk" FOREIGN KEY ("actor_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "ticket_events_ticket_id_at_index" ON "ticket_events" USING btree ("ticket_id","at" DESC NULLS LAST);""",
    ),
    (
        "0031_backfill_ticket_events",
        "7",
        """\
-- Custom SQL migration file, put your code below! --
INSERT INTO "ticket_events" ("ticket_id", "kind", "actor_id", "at")
SELECT t."id", 'created', t."requester_id", t."created_at"
FROM "tickets" t
WHERE NOT EXISTS (SELECT 1 FROM "ticket_events" e WHERE e."ticket_id" = t."id" AND e."kind" = 'created');
""",
    ),
]

# generated on a branch; its journal entry lost the merge conflict in _journal.json (see the doc)
ORPHAN = (
    "0017_lucky_thor.sql",
    """\
ALTER TABLE "tickets" ADD COLUMN "priority" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "tickets_priority_index" ON "tickets" USING btree ("priority");""",
)

FIRST_WHEN = 1694600000000  # 2023-09-13, when the team ran its first `drizzle-kit generate`
JOURNAL_VERSION = "7"


def journal_entries() -> list[dict]:
    """The journal's entries: idx in order, ``when`` a few days apart (drizzle-kit's ``Date.now()``)."""
    entries = []
    when = FIRST_WHEN
    for idx, (tag, version, _) in enumerate(MIGRATIONS):
        when += 86_400_000 * (2 + idx % 5) + 3_600_000 * (idx % 7) + 12_345 * idx
        entries.append({"idx": idx, "version": version, "when": when, "tag": tag, "breakpoints": True})
    return entries


def journal() -> dict:
    return {"version": JOURNAL_VERSION, "dialect": "postgresql", "entries": journal_entries()}


def write(root: Path, *, journal_data: dict | None = None, orphan: bool = True) -> Path:
    """Write the ``drizzle/`` folder under ``root`` as drizzle-kit leaves it; returns ``root``."""
    (root / "meta").mkdir(parents=True, exist_ok=True)
    for tag, _, sql in MIGRATIONS:
        # drizzle-kit writes the files with writeFileSync, as they are (no newline added)
        (root / f"{tag}.sql").write_text(sql, encoding="utf-8")
    if orphan:
        (root / ORPHAN[0]).write_text(ORPHAN[1], encoding="utf-8")
    data = journal_data or journal()
    # drizzle-kit: writeFileSync(metaJournal, JSON.stringify(journal, null, 2))
    (root / "meta" / "_journal.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    previous = "00000000-0000-0000-0000-000000000000"
    for entry in data["entries"]:
        snapshot_id = f"5e7d{entry['idx']:04d}-9c1b-4b8e-a3f0-{entry['when']:012d}"[:36]
        snapshot = {
            "id": snapshot_id,
            "prevId": previous,
            "version": entry["version"],
            "dialect": "postgresql",
            "tables": {},
            "enums": {},
            "schemas": {},
            "_meta": {"columns": {}, "schemas": {}, "tables": {}},
        }
        prefix = entry["tag"].split("_", 1)[0]
        (root / "meta" / f"{prefix}_snapshot.json").write_text(
            json.dumps(snapshot, indent=2), encoding="utf-8"
        )
        previous = snapshot_id
    return root


def tags() -> list[str]:
    return [tag for tag, _, _ in MIGRATIONS]


def files_in_order() -> list[str]:
    """The migrations in drizzle-orm's order (the journal's), relative to the folder."""
    return [f"{tag}.sql" for tag in tags()]
