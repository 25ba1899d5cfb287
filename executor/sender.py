"""What the two ways of sending a migration (``executor.whole_message``: the whole file as one
message; ``executor.stepwise``: statement by statement) need from the runner that drives them.

``executor.runner.Runner`` is the one implementation; the senders name this Protocol instead of the
class, so that they do not import the runner that imports them (no circle, not even a type-only one).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection
    from psycopg2.extensions import cursor as Cursor

    from executor.headers import Statement
    from executor.prepare import Prepared
    from executor.progress import ApplyHooks, Event
    from executor.session import NoticeSink


class Sender(Protocol):
    """One autocommit connection holding the migration lock, and how to talk on it."""

    conn: Connection
    cur: Cursor
    emit: Callable[[Event], None]
    hooks: ApplyHooks
    sink: NoticeSink
    next_rank: int | None

    def bound(self, p: Prepared, what: str, *, statements: int = 1) -> AbstractContextManager[None]:
        """The client's wait for one message (statement_timeout per statement plus network_timeout)."""
        ...

    def settings_sql(self, p: Prepared, *, local: bool) -> str:
        """The ``set_config`` calls of ``p``'s lock and statement timeouts."""
        ...

    def history_sql(
        self, p: Prepared, *, success: bool, execution_time_ms: int | None, rank: int | None = None
    ) -> str:
        """The INSERT of ``p``'s history row: numbered ``rank``, or by the server (``RETURNING
        installed_rank``) when ``rank`` is None."""
        ...

    def row_written(self, rank: int | None) -> None:
        """The history row of the migration just committed was numbered ``rank``."""
        ...

    def commit(self, p: Prepared) -> None: ...

    def rollback(self) -> None: ...

    def reset_session(self, p: Prepared) -> None:
        """Undo the session settings of a migration that ran without a transaction."""
        ...

    def where(self, p: Prepared, st: Statement | None) -> str:
        """What the client was doing at ``st`` (None: the history row), for a timeout's message."""
        ...
