"""Connecting to PostgreSQL: libpq URLs or key=value DSNs, the usual PG* variables, TLS settings
passed through (sslmode, sslrootcert, ...), a bounded connect time, and passwords never shown."""

from __future__ import annotations

import os
import re

import psycopg2
import psycopg2.extensions

from executor.errors import ConfigurationError, ConnectionFailure

MASK = "***"
_URL_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>.*)$", re.DOTALL)
_QUERY_PASSWORD_RE = re.compile(r"(?i)([?&]password=)[^&#]*")
_DSN_PASSWORD_RE = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")

# detect a dead server (or a dead network path) instead of hanging: TCP keepalives
_DEFAULTS = {"keepalives": "1", "keepalives_idle": "30", "keepalives_interval": "10", "keepalives_count": "3"}


def mask_url(url: str) -> str:
    """The URL or DSN with its password replaced by ``***``.

    ``postgresql://user:secret@host:5432/db`` -> ``postgresql://user:***@host:5432/db``;
    ``host=h password=secret`` -> ``host=h password=***``.
    """
    if not url:
        return url
    m = _URL_RE.match(url)
    if m:
        rest = m.group("rest")
        query_at = rest.find("?")
        authority_end = len(rest) if query_at < 0 else query_at
        at = rest.rfind("@", 0, authority_end)
        if at >= 0:
            userinfo, tail = rest[:at], rest[at:]
            user, sep, _password = userinfo.partition(":")
            if sep:
                rest = f"{user}:{MASK}{tail}"
        return m.group("scheme") + _QUERY_PASSWORD_RE.sub(lambda q: q.group(1) + MASK, rest)
    return _DSN_PASSWORD_RE.sub(lambda q: q.group(1) + MASK, url)


def _secrets(dsn: str) -> list[str]:
    """Password strings that must not appear in any message (from the DSN and PGPASSWORD)."""
    found: list[str] = []
    try:
        password = psycopg2.extensions.parse_dsn(dsn).get("password") if dsn else None
    except psycopg2.Error:
        password = None
    if password:
        found.append(password)
    if os.environ.get("PGPASSWORD"):
        found.append(os.environ["PGPASSWORD"])
    m = _URL_RE.match(dsn or "")
    if m:
        userinfo = m.group("rest").rpartition("@")[0]
        if ":" in userinfo:
            found.append(userinfo.partition(":")[2])
    return [s for s in found if len(s) >= 3]  # shorter ones would garble the message


def scrub(text: str, dsn: str) -> str:
    """Remove every password of ``dsn`` (raw or masked form) from ``text``."""
    text = mask_url(text) if "://" in text or "password" in text.lower() else text
    for secret in sorted(_secrets(dsn), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def connect(
    url: str | None = None, *, connect_timeout: int = 10, application_name: str = "schemagate"
) -> psycopg2.extensions.connection:
    """Open one connection.

    ``url``: a libpq URL or key=value DSN; None uses ``$DATABASE_URL``, and without it libpq's
    ``PG*`` variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, ...).  Options in
    the URL win over the keyword defaults here.  Raises ConnectionFailure (CONNECTION_ERROR) with
    the password masked; a server that does not answer fails after ``connect_timeout`` seconds
    per address tried.
    """
    dsn = url if url is not None else os.environ.get("DATABASE_URL", "")
    shown = mask_url(dsn) if dsn else "the server named by the PG* environment variables"
    try:
        given = psycopg2.extensions.parse_dsn(dsn) if dsn else {}
    except psycopg2.ProgrammingError as exc:
        raise ConfigurationError(
            f"the database URL {shown} is not a valid libpq URL or DSN: {scrub(str(exc).strip(), dsn)}",
            remedy="write it like postgresql://user:password@host:5432/dbname?sslmode=require",
        ) from None
    options = {k: v for k, v in _DEFAULTS.items() if k not in given}
    if "connect_timeout" not in given and not os.environ.get("PGCONNECT_TIMEOUT"):
        options["connect_timeout"] = str(connect_timeout)
    if "application_name" not in given and not os.environ.get("PGAPPNAME"):
        options["application_name"] = application_name
    try:
        return psycopg2.connect(dsn, **options)
    except psycopg2.OperationalError as exc:
        detail = scrub(" ".join(str(exc).split()), dsn)
        raise ConnectionFailure(
            f"could not connect to {shown}: {detail}",
            remedy=(
                "check the host, port, database name, user and password, that the server accepts connections "
                "from here (security groups, pg_hba.conf) and the TLS settings (sslmode, sslrootcert)"
            ),
            context={"target": shown},
        ) from None


def describe_target(conn) -> str:
    """``dbname on host:port as user`` (never the password)."""
    info = conn.info
    host = info.host or "localhost"
    return f"{info.dbname} on {host}:{info.port} as {info.user}"
