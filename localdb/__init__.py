"""The embedded PostgreSQL: a throwaway server for local runs (`schemagate run` and the database
commands without a URL), the rehearsal, and the tests.

It sits below the CLI (``schemagate``), the validator (the rehearsal) and the tests, and imports
none of them; the executor (the Lambda package) never imports it.
"""

from localdb.server import (
    Binaries,
    EmbeddedPostgres,
    EmbeddedServerError,
    candidate_bindirs,
    default_local_server,
)

__all__ = ["Binaries", "EmbeddedPostgres", "EmbeddedServerError", "candidate_bindirs", "default_local_server"]
