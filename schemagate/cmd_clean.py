"""``schemagate clean``: drop everything in a local or throwaway database, as ``flyway clean`` does.

It drops every schema that is not PostgreSQL's own (``pg_*``, ``information_schema``), with
everything in them (tables, types, functions, the history table, extensions installed there), and
creates ``public`` again with the owner, privileges and comment it had.  Roles, other databases and
the server's settings are untouched.

Only the embedded PostgreSQL under ``.schemagate/`` is cleaned freely (after a yes/no question, or
``--yes``).  Any other database is refused (exit 2) unless ``--force`` is given **and** its name is
typed at the prompt (standard input, so a script of a throwaway CI database can pipe it); ``--yes``
does not skip that.  A wrong name changes nothing (exit 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from executor.connection import scalar
from executor.errors import ConfigurationError

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection
    from psycopg2.extensions import cursor as Cursor

SYSTEM_SCHEMAS = "n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'"


def _grants(cur: Cursor) -> list[tuple[str, str, bool]]:
    cur.execute(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
        "a.privilege_type, a.is_grantable "
        "FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.nspname = 'public'"
    )
    return [(grantee, privilege, bool(grantable)) for grantee, privilege, grantable in cur.fetchall()]


def drop_everything(conn: Connection) -> list[str]:
    """Drop every non-system schema in one transaction and create ``public`` again as it was;
    returns the schemas dropped.  Nothing changes when any statement fails."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT n.nspname, quote_ident(pg_get_userbyid(n.nspowner)), "
            "obj_description(n.oid, 'pg_namespace') "
            f"FROM pg_namespace n WHERE {SYSTEM_SCHEMAS} AND n.nspname NOT LIKE 'pg\\_temp%' ORDER BY 1"
        )
        schemas = cur.fetchall()
        public = next((s for s in schemas if s[0] == "public"), None)
        grants = _grants(cur) if public else []
        for name, _owner, _comment in schemas:
            cur.execute("DROP SCHEMA " + _quote(cur, name) + " CASCADE")
        if public is not None:
            _name, owner, comment = public
            cur.execute(f"CREATE SCHEMA public AUTHORIZATION {owner}")
            cur.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            for grantee, privilege, grantable in grants:
                option = " WITH GRANT OPTION" if grantable and grantee != "PUBLIC" else ""
                cur.execute(f"GRANT {privilege} ON SCHEMA public TO {grantee}{option}")
            if comment is not None:
                cur.execute("COMMENT ON SCHEMA public IS %s", (comment,))
    conn.commit()
    return [name for name, _, _ in schemas]


def _quote(cur: Cursor, name: str) -> str:
    return str(scalar(cur, "SELECT quote_ident(%s)", (name,)))


@click.command("clean", short_help="Drop everything in the local (or a throwaway) database.")
@click.option(
    "--database-url",
    metavar="URL",
    help="a throwaway database (needs --force and its name typed); default: the embedded PostgreSQL",
)
@click.option("--force", is_flag=True, help="clean a database other than the embedded PostgreSQL")
@click.option("--yes", "-y", is_flag=True, help="do not ask before cleaning the embedded PostgreSQL")
def clean_command(database_url: str | None, force: bool, yes: bool) -> None:
    """Drop every schema (and everything in it) of the embedded PostgreSQL, and create `public`
    again, like `flyway clean`.  Any other database is refused unless --force is given and its
    name is typed to confirm."""
    from schemagate.target import confirm_or_refuse, connected, target_database

    with target_database(database_url) as target:
        if not target.embedded and not force:
            raise ConfigurationError(
                f"refusing to clean {target.label}: clean drops every schema and all data in it, so it "
                "only cleans the embedded PostgreSQL under .schemagate/",
                remedy="run it without --database-url, $DATABASE_URL or PG* variables to clean the "
                "embedded database; for a throwaway database of your own pass --force and type its name "
                "when asked",
            )
        with connected(target) as conn:
            with conn.cursor() as cur:
                name = str(scalar(cur, "SELECT current_database()"))
            conn.rollback()
            if target.embedded:
                if not confirm_or_refuse(f"drop every schema in {target.label}?", yes):
                    click.echo("not cleaned: declined at the prompt")
                    raise click.exceptions.Exit(1)
            else:
                typed = click.prompt(
                    f"this drops every schema and all data in {target.label}; type the database name "
                    f"({name}) to confirm",
                    default="",
                    show_default=False,
                    err=True,
                )
                if typed.strip() != name:
                    click.echo(
                        f"not cleaned: {typed.strip()!r} is not {name!r}; nothing was dropped", err=True
                    )
                    raise click.exceptions.Exit(1)
            dropped = drop_everything(conn)
    listed = f" ({', '.join(dropped)})" if dropped else ""
    schemas = f"{len(dropped)} schema{'' if len(dropped) == 1 else 's'}"
    again = "; public is empty again" if "public" in dropped else ""
    click.echo(f"cleaned {target.label}: dropped {schemas}{listed}{again}")


def register(group: click.Group) -> None:
    """Add `schemagate clean` to the group."""
    group.add_command(clean_command)
