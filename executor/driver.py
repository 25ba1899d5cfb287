"""psycopg2, loaded without Python's ``ssl`` module, for a process that needs no other TLS.

psycopg2's C module imports ``ssl`` when it loads (about a third of its import time, 40 M
instructions) so that Python's OpenSSL set-up comes first and libpq leaves its thread callbacks
alone (``PQinitOpenSSL(1, 0)``).  Those callbacks exist only for OpenSSL before 1.1; psycopg2-binary
carries its own libpq and OpenSSL 3, apart from the one ``_ssl`` links, so the order changes
nothing.  When ``ssl`` cannot be imported psycopg2 skips that step and libpq initialises OpenSSL
itself, as in any C program; TLS connections (``sslmode=require``/``verify-full``) work the same
(``tests/test_driver.py`` connects to a server with TLS on after loading it this way).

``load()`` is called by the one entry point that would not import ``ssl`` otherwise, the CLI's apply
path (``schemagate.quick_apply``); ``ssl`` stays importable afterwards for anyone who needs it.  Where
psycopg2 or ``ssl`` is already loaded it does nothing.  The Lambda does not call it: boto3 imports
``ssl`` there in any case.
"""

from __future__ import annotations

import sys


def load() -> None:
    """Import psycopg2 with the import of ``ssl`` refused for the duration."""
    if "psycopg2" in sys.modules or "ssl" in sys.modules:
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]  # an import of it raises ImportError
    try:
        import psycopg2  # noqa: F401
    finally:
        if sys.modules.get("ssl", False) is None:
            del sys.modules["ssl"]
