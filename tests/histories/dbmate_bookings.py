"""A dbmate history of a booking service for clinics and studios, the way a Node/TypeScript team that
uses dbmate writes one: ``db/migrations/<UTC timestamp>_<name>.sql`` made by ``dbmate new``, lower-case
SQL, each file with a ``-- migrate:up`` and a ``-- migrate:down`` section (some down sections left empty:
irreversible backfills), comment lines above ``-- migrate:up``, ``transaction:false`` on the sections
that build or drop an index concurrently (one index per file: dbmate sends a section as one query
string), an enum that grows, a partial unique
index, an overlap check in a PL/pgSQL trigger, a DO block, and data backfills.
"""

from __future__ import annotations

from pathlib import Path

ROOT = "db/migrations"

FILES: dict[str, str] = {
    "20230114093012_create_organizations.sql": """\
-- migrate:up
create table organizations (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  slug text not null unique,
  time_zone text not null default 'Europe/Berlin',
  created_at timestamptz not null default now()
);

-- migrate:down
drop table organizations;
""",
    "20230114093520_create_members.sql": """\
-- migrate:up
create type member_role as enum ('owner', 'admin', 'staff');

create table members (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references organizations (id) on delete cascade,
  email text not null,
  role member_role not null default 'staff',
  invited_at timestamptz not null default now(),
  joined_at timestamptz
);

create unique index members_organization_email_key on members (organization_id, lower(email));

-- migrate:down
drop table members;
drop type member_role;
""",
    "20230121110245_create_services.sql": """\
-- migrate:up
create table services (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references organizations (id) on delete cascade,
  title text not null,
  duration interval not null check (duration > interval '0'),
  price_cents integer not null default 0 check (price_cents >= 0),
  archived boolean not null default false
);

create index services_organization_id_idx on services (organization_id) where not archived;

-- migrate:down
drop table services;
""",
    "20230121113001_create_customers.sql": """\
-- migrate:up
create table customers (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references organizations (id) on delete cascade,
  full_name text not null,
  email text,
  phone text,
  created_at timestamptz not null default now(),
  check (email is not null or phone is not null)
);

-- migrate:down
drop table customers;
""",
    "20230202080000_create_bookings.sql": """\
-- migrate:up
create type booking_status as enum ('pending', 'confirmed', 'cancelled');

create table bookings (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references organizations (id) on delete cascade,
  service_id uuid not null references services (id),
  customer_id uuid not null references customers (id),
  member_id uuid references members (id) on delete set null,
  starts_at timestamptz not null,
  ends_at timestamptz not null,
  status booking_status not null default 'pending',
  created_at timestamptz not null default now(),
  check (ends_at > starts_at)
);

create index bookings_organization_starts_idx on bookings (organization_id, starts_at);

-- migrate:down
drop table bookings;
drop type booking_status;
""",
    "20230202081500_bookings_no_overlap.sql": """\
-- one member cannot be in two places at once: checked on insert and update
-- migrate:up
create function bookings_no_overlap() returns trigger language plpgsql as $$
begin
  if new.member_id is not null and new.status <> 'cancelled' and exists (
    select 1 from bookings b
    where b.member_id = new.member_id
      and b.id <> new.id
      and b.status <> 'cancelled'
      and tstzrange(b.starts_at, b.ends_at) && tstzrange(new.starts_at, new.ends_at)
  ) then
    raise exception 'member % is already booked between % and %', new.member_id, new.starts_at, new.ends_at
      using errcode = 'exclusion_violation';
  end if;
  return new;
end;
$$;

create trigger bookings_no_overlap
  before insert or update of member_id, starts_at, ends_at, status on bookings
  for each row execute function bookings_no_overlap();

-- migrate:down
drop trigger bookings_no_overlap on bookings;
drop function bookings_no_overlap();
""",
    "20230215164433_add_customers_notes.sql": """\
-- migrate:up
alter table customers add column notes text;


-- migrate:down
alter table customers drop column notes;

""",
    "20230301120000_index_bookings_customer.sql": """\
-- migrate:up transaction:false
create index concurrently if not exists bookings_customer_id_idx on bookings (customer_id);

-- migrate:down transaction:false
drop index concurrently if exists bookings_customer_id_idx;
""",
    "20230310091512_add_booking_status_no_show.sql": """\
-- migrate:up
alter type booking_status add value if not exists 'no_show' after 'confirmed';

-- migrate:down
-- postgres cannot remove an enum value
""",
    "20230322143000_create_opening_hours.sql": """\
-- migrate:up
create table opening_hours (
  organization_id uuid not null references organizations (id) on delete cascade,
  weekday smallint not null check (weekday between 1 and 7),
  opens time not null,
  closes time not null,
  primary key (organization_id, weekday),
  check (closes > opens)
);

-- migrate:down
drop table opening_hours;
""",
    "20230404101010_backfill_members_joined_at.sql": """\
-- migrate:up
-- members created before invitations existed joined when they were created
update members set joined_at = invited_at where joined_at is null and role = 'owner';

-- migrate:down

""",
    "20230419075900_create_payments.sql": """\
-- migrate:up
create type payment_provider as enum ('stripe', 'cash', 'invoice');

create table payments (
  id uuid primary key default gen_random_uuid(),
  booking_id uuid not null references bookings (id) on delete cascade,
  provider payment_provider not null,
  amount_cents integer not null check (amount_cents > 0),
  external_id text,
  paid_at timestamptz not null default now()
);

create unique index payments_provider_external_id_key on payments (provider, external_id)
  where external_id is not null;

-- migrate:down
drop table payments;
drop type payment_provider;
""",
    "20230502130000_add_services_color.sql": """\
-- migrate:up
alter table services add column color text not null default '#3b82f6'
  check (color ~ '^#[0-9a-f]{6}$');

-- migrate:down
alter table services drop column color;
""",
    "20230517090000_create_reminders.sql": """\
-- migrate:up
create table reminders (
  id bigint generated always as identity primary key,
  booking_id uuid not null references bookings (id) on delete cascade,
  send_at timestamptz not null,
  channel text not null check (channel in ('email', 'sms')),
  sent_at timestamptz
);

create index reminders_due_idx on reminders (send_at) where sent_at is null;

-- migrate:down
drop table reminders;
""",
    # dbmate sends a section as one query string, which PostgreSQL runs as one implicit transaction even
    # with transaction:false: CREATE INDEX CONCURRENTLY has to be alone in its file
    "20230605111111_index_payments_paid_at.sql": """\
-- the dashboard's revenue chart scans payments by day
-- migrate:up transaction:false
create index concurrently if not exists payments_paid_at_idx on payments (paid_at);

-- migrate:down transaction:false
drop index concurrently if exists payments_paid_at_idx;
""",
    "20230605111530_index_payments_booking_id.sql": """\
-- migrate:up transaction:false
create index concurrently if not exists payments_booking_id_idx on payments (booking_id);

-- migrate:down transaction:false
drop index concurrently if exists payments_booking_id_idx;
""",
    "20230620154500_organizations_plan.sql": """\
-- migrate:up
create type plan_tier as enum ('free', 'pro', 'business');
alter table organizations add column plan plan_tier not null default 'free';

-- migrate:down
alter table organizations drop column plan;
drop type plan_tier;
""",
    "20230704083000_customers_email_unique.sql": """\
-- migrate:up
do $$
begin
  if exists (
    select 1 from customers where email is not null
    group by organization_id, lower(email) having count(*) > 1
  ) then
    raise exception 'duplicate customer e-mails: run scripts/merge-customers.ts first';
  end if;
end
$$;

create unique index customers_organization_email_key on customers (organization_id, lower(email))
  where email is not null;

-- migrate:down
drop index customers_organization_email_key;
""",
    "20230801100000_bookings_source.sql": """\
-- migrate:up
alter table bookings add column source text not null default 'dashboard';
comment on column bookings.source is 'dashboard, widget or api';

-- migrate:down
alter table bookings drop column source;
""",
    "20230915121212_create_upcoming_bookings_view.sql": """\
-- migrate:up
create view upcoming_bookings as
select b.id, b.organization_id, b.starts_at, s.title as service, c.full_name as customer
from bookings b
join services s on s.id = b.service_id
join customers c on c.id = b.customer_id
where b.status in ('pending', 'confirmed') and b.starts_at > now();

-- migrate:down
drop view upcoming_bookings;
""",
    "20231003094500_members_display_name.sql": """\
-- migrate:up
alter table members add column display_name text;
update members set display_name = split_part(email, '@', 1) where display_name is null;

-- migrate:down
alter table members drop column display_name;
""",
    "20231120160000_create_webhooks.sql": """\
-- migrate:up
create table webhooks (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references organizations (id) on delete cascade,
  url text not null check (url like 'https://%'),
  secret text not null,
  events text[] not null default '{booking.created}',
  disabled_at timestamptz
);

-- migrate:down
drop table webhooks;
""",
    "20240108081500_add_plan_enterprise.sql": """\
-- migrate:up
alter type plan_tier add value if not exists 'enterprise';

-- migrate:down

""",
    "20240212140000_bookings_cancel_reason.sql": """\
-- migrate:up
alter table bookings add column cancelled_at timestamptz;
alter table bookings add column cancel_reason text;
alter table bookings add constraint bookings_cancel_reason_check
  check (cancel_reason is null or cancelled_at is not null) not valid;

-- migrate:down
alter table bookings drop column cancel_reason;
alter table bookings drop column cancelled_at;
""",
    "20240212141500_validate_bookings_cancel_reason.sql": """\
-- migrate:up
alter table bookings validate constraint bookings_cancel_reason_check;

-- migrate:down

""",
    "20240305100000_services_price_numeric.sql": """\
-- migrate:up
alter table services add column price numeric(10, 2);
update services set price = price_cents / 100.0;
alter table services alter column price set not null;

-- migrate:down
alter table services drop column price;
""",
}


def write(root: Path, files: dict[str, str] | None = None) -> Path:
    for rel, text in (files or FILES).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def up_sections(root: Path) -> list[tuple[Path, str]]:
    """The files in dbmate's order (by file name) with the text of their up section, as dbmate cuts it
    (from the line ``-- migrate:up`` to the line ``-- migrate:down``)."""
    out = []
    for path in sorted(root.glob("*.sql"), key=lambda p: p.name):
        text = path.read_text(encoding="utf-8")
        start = text.index("-- migrate:up")
        end = text.find("\n-- migrate:down")
        out.append((path, text[start : end + 1 if end >= 0 else len(text)]))
    return out
