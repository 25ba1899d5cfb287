"""The embedded PostgreSQL: a throwaway server for local runs (`schemagate run` and the database
commands without a URL), the rehearsal, and the tests.

It sits below the CLI (``schemagate``), the validator (the rehearsal) and the tests, and imports
none of them; the executor (the Lambda package) never imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localdb.server import (
        Binaries,
        EmbeddedPostgres,
        EmbeddedServerError,
        candidate_bindirs,
        default_local_server,
    )

__all__ = ["Binaries", "EmbeddedPostgres", "EmbeddedServerError", "candidate_bindirs", "default_local_server"]


def __getattr__(name: str) -> Any:
    """The server's names, imported on first use: ``localdb.state_dir`` (which the validator's caches
    use on every run) then loads without the server module and what it imports (subprocess, socket)."""
    if name in __all__:
        from localdb import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
