"""A counting TCP proxy for PostgreSQL's wire protocol (version 3), for the benchmarks.

    with CountingProxy(database_url, latency_ms=0.0) as proxy:
        run_client(proxy.url)          # libpq, lib/pq (dbmate), psycopg2 ...
        counts = proxy.totals()        # after the client has closed its connections

Between a client and the server it forwards every byte unchanged and reads the client's side
(frontend messages) to count them by type, per connection: the untyped startup packet, then
each typed message, ``'Q'`` a simple query (one SQL string, maybe several statements), the
extended protocol ``'P'`` Parse, ``'B'`` Bind, ``'D'`` Describe, ``'E'`` Execute, ``'S'`` Sync,
``'H'`` Flush, ``'C'`` Close, ``'p'`` a password, ``'X'`` Terminate.

A **round trip** is a client->server message after which the client waits for the server's
answer before it can send its next one: a ``'Q'`` (answered by ReadyForQuery), or a ``'S'`` Sync
that ends a batch of extended-protocol messages (Parse/Bind/Describe/Execute sent together count
once, at their Sync).  The connection handshake (startup packet, authentication) is not counted
as a round trip; the number of connections is reported beside it.

``latency_ms``: each batch of client bytes that completes at least one frontend message is held
that long before it is forwarded (one way, client->server; the answers are not delayed), so a
client pays about that much per round trip, as on a network whose round-trip time it is
(an executor Lambda to RDS in another availability zone: about 1 ms).  Messages the client
sends together in one write pay it once, as on a real network.  ``held()`` says how long the
proxy really held them: ``time.sleep`` overshoots, by a lot when the machine is busy.

No TLS: the proxied URL asks for ``sslmode=disable`` (libpq clients should also get
``PGGSSENCMODE=disable``); a connection whose client negotiates encryption anyway is forwarded
but counted as ``encrypted`` (its messages cannot be read).

``marker``: ``first_seen`` is the ``time.perf_counter()`` at which the first client bytes holding
these bytes were read, over every connection (None until then): ``bench/apply.py`` passes the start
of the first migration's SQL, so the time a client spends before its first migration shows.

Threads, not asyncio: two per connection, so it runs beside blocking clients.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102


class FrontendCounter:
    """Counts the frontend messages of one connection from its client->server byte stream."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._header = b""
        self._skip = 0
        self._startup = True
        self.awaiting_encryption_answer = False
        self.encrypted = False

    def feed(self, data: bytes) -> int:
        """Read ``data`` (the next bytes the client sent); return how many messages it completed."""
        if self.encrypted:
            return 1 if data else 0
        completed = 0
        i, end = 0, len(data)
        while i < end:
            if self._skip:
                take = min(self._skip, end - i)
                i += take
                self._skip -= take
                if not self._skip:
                    completed += 1
                continue
            need = 8 if self._startup else 5
            take = min(need - len(self._header), end - i)
            self._header += data[i : i + take]
            i += take
            if len(self._header) < need:
                break
            if self._startup:
                length, code = struct.unpack("!ii", self._header)
                if code in (_SSL_REQUEST, _GSSENC_REQUEST):
                    self.counts["SSLRequest" if code == _SSL_REQUEST else "GSSENCRequest"] += 1
                    self.awaiting_encryption_answer = True  # another untyped packet may follow
                elif code == _CANCEL_REQUEST:
                    self.counts["CancelRequest"] += 1
                else:
                    self.counts["startup"] += 1
                    self._startup = False
                self._skip = length - 8
            else:
                self.counts[chr(self._header[0])] += 1
                self._skip = struct.unpack("!i", self._header[1:])[0] - 4
            self._header = b""
            if not self._skip:
                completed += 1
        return completed

    def server_answered(self, first_byte: int) -> None:
        """The server's one-byte answer to an SSLRequest/GSSENCRequest: ``S``/``G`` is encryption."""
        self.awaiting_encryption_answer = False
        if first_byte in (ord("S"), ord("G")):
            self.encrypted = True
            self.counts["encrypted"] += 1


class _Link:
    def __init__(self, proxy: CountingProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self.counter = FrontendCounter()
        self.held_s = 0.0  # how long the latency really held this connection's client bytes
        self.closed = False
        self.threads = [
            threading.Thread(target=self._client_to_server, daemon=True),
            threading.Thread(target=self._server_to_client, daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _client_to_server(self) -> None:
        delay = self.proxy.latency_ms / 1000.0
        marker = self.proxy.marker
        tail = b""  # the end of the bytes read so far: a marker split between two reads is found
        while True:
            try:
                data = self.client.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.close()
                return
            if marker and self.proxy.first_seen is None:
                window = tail + data
                if marker in window:
                    self.proxy.saw_marker()
                tail = window[-len(marker) :]
            if self.counter.feed(data) and delay:
                started = time.perf_counter()
                time.sleep(delay)
                self.held_s += time.perf_counter() - started
            try:
                self.server.sendall(data)
            except OSError:
                self.close()
                return

    def _server_to_client(self) -> None:
        while True:
            try:
                data = self.server.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.close()
                return
            if self.counter.awaiting_encryption_answer:
                self.counter.server_answered(data[0])
            try:
                self.client.sendall(data)
            except OSError:
                self.close()
                return

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class CountingProxy:
    """``with CountingProxy(database_url) as proxy: ...``; see the module docstring."""

    def __init__(self, database_url: str, *, latency_ms: float = 0.0, marker: bytes = b"") -> None:
        parts = urlsplit(database_url)
        self.marker = marker
        self.first_seen: float | None = None
        self.database_url = database_url
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.latency_ms = latency_ms
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.links: list[_Link] = []
        self._closing = False
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The database URL, through this proxy, without TLS (``sslmode=disable``)."""
        parts = urlsplit(self.database_url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@127.0.0.1:{self.port}" if auth else f"127.0.0.1:{self.port}"
        query = "&".join(
            q for q in (*parts.query.split("&"), "sslmode=disable") if q and not q.startswith("sslmode=")
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))

    def __enter__(self) -> CountingProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for sock in (client, server):  # no Nagle: the proxy must not add its own delays
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(self, client, server)
            with self._lock:
                self.links.append(link)
            link.start()

    def saw_marker(self) -> None:
        with self._lock:
            if self.first_seen is None:
                self.first_seen = time.perf_counter()

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every connection so far has been closed by its client (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            links = list(self.links)
        for link in links:
            for thread in link.threads:
                thread.join(max(0.0, deadline - time.monotonic()))

    def totals(self) -> Counter[str]:
        """Messages by type over every connection so far, plus ``connections``."""
        self.settle()
        total: Counter[str] = Counter()
        with self._lock:
            links = list(self.links)
        for link in links:
            total.update(link.counter.counts)
        total["connections"] = len(links)
        return total

    def held(self) -> float:
        """Seconds the added latency really held client bytes, over every connection so far (more
        than latency x round trips when the machine is busy: the proxy's threads wake up late)."""
        self.settle()
        with self._lock:
            return sum(link.held_s for link in self.links)

    def reset(self) -> None:
        """Forget the connections counted so far (they must be closed)."""
        self.settle()
        with self._lock:
            self.links.clear()
            self.first_seen = None

    def close(self) -> None:
        self._closing = True
        self.listener.close()
        with self._lock:
            links = list(self.links)
        for link in links:
            link.close()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def round_trips(counts: Counter[str]) -> int:
    """Client->server messages the client waits on: simple queries plus extended-protocol Syncs."""
    return counts["Q"] + counts["S"]
