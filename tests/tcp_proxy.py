"""A TCP proxy between a test's client and PostgreSQL that can stall or cut a connection on cue.

``stall_when(b"UPDATE accounts")``: when the client sends bytes holding that pattern (psycopg2
sends each query as one message, with its text), that connection stops forwarding in both
directions while both of its sockets stay open: the client's bytes are acknowledged by this
process's TCP stack and go nowhere, the server hears nothing more, and nothing the server sends
(not even its closing of the connection) reaches the client.  That is a stalled NAT, proxy or
VPN, which TCP keepalives cannot see.

``cut_when(b"...")``: the connection is reset on both sides at that point instead (a dead path
that the client and the server both notice).

``messages`` (and ``queries()``): every message the clients sent, read from the protocol's framing
(a type byte and a length; the startup packet has no type byte), so a test can count round trips:
each simple-query ``'Q'`` message is one round trip, whatever number of statements its text holds.

Threads, not asyncio, so it runs next to the blocking psycopg2 code under test.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from urllib.parse import urlsplit, urlunsplit


class _FrontendMessages:
    """Cuts the client's byte stream into protocol messages (the URL disables TLS, so they are readable)."""

    def __init__(self, sink: list[tuple[str, bytes]]) -> None:
        self.sink = sink
        self.buffer = b""
        self.started = False  # the startup packet (no type byte) was read

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if not self.started:
                if len(self.buffer) < 4:
                    return
                (length,) = struct.unpack("!i", self.buffer[:4])
                if len(self.buffer) < length:
                    return
                self.buffer = self.buffer[length:]
                self.started = True
                continue
            if len(self.buffer) < 5:
                return
            (length,) = struct.unpack("!i", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                return
            kind, body = chr(self.buffer[0]), self.buffer[5 : 1 + length]
            self.buffer = self.buffer[1 + length :]
            self.sink.append((kind, body))


class _Link:
    def __init__(self, proxy: TcpProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self.stalled = False
        self.closed = False
        self.frontend = _FrontendMessages(proxy.messages)

    def start(self) -> None:
        for source, target, from_client in (
            (self.client, self.server, True),
            (self.server, self.client, False),
        ):
            threading.Thread(target=self._pump, args=(source, target, from_client), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        tail = b""
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                if not self.stalled:  # a stalled path does not pass the close on either
                    self.close()
                return
            if self.stalled:
                continue
            if from_client:
                self.frontend.feed(data)
                action = self.proxy._trigger(tail + data)
                tail = data[-256:]
                if action == "stall":
                    self.stalled = True
                    self.proxy.stalled.set()
                    continue
                if action == "cut":
                    self.proxy.cut.set()  # before the reset: the client reacts to it at once
                    self.reset()
                    return
            try:
                target.sendall(data)
            except OSError:
                self.close()
                return

    def reset(self) -> None:
        """Close both sockets with an RST (SO_LINGER 0), as a dropped path ends."""
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.close()


class TcpProxy:
    """``with TcpProxy(database_url) as proxy: connect(proxy.url) ...``"""

    def __init__(self, database_url: str) -> None:
        parts = urlsplit(database_url)
        self.database_url = database_url
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.links: list[_Link] = []
        self.stalled = threading.Event()
        self.cut = threading.Event()
        self._rules: list[tuple[bytes, str]] = []
        self._lock = threading.Lock()
        self._closing = False
        self.messages: list[tuple[str, bytes]] = []  # (type, body) of every message clients sent

    def queries(self) -> list[str]:
        """The text of every simple-query ('Q') message the clients sent, in order."""
        return [body.rstrip(b"\0").decode("utf-8") for kind, body in self.messages if kind == "Q"]

    @property
    def url(self) -> str:
        """The database URL, through this proxy (without TLS, so that the patterns can be seen)."""
        parts = urlsplit(self.database_url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@127.0.0.1:{self.port}" if auth else f"127.0.0.1:{self.port}"
        query = "&".join(q for q in (parts.query, "sslmode=disable") if q)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))

    def stall_when(self, pattern: bytes) -> None:
        with self._lock:
            self._rules.append((pattern, "stall"))

    def cut_when(self, pattern: bytes) -> None:
        with self._lock:
            self._rules.append((pattern, "cut"))

    def _trigger(self, data: bytes) -> str | None:
        with self._lock:
            for rule in self._rules:
                if rule[0] in data:
                    self._rules.remove(rule)  # one shot
                    return rule[1]
        return None

    def __enter__(self) -> TcpProxy:
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
            link = _Link(self, client, server)
            self.links.append(link)
            link.start()

    def close(self) -> None:
        self._closing = True
        self.listener.close()
        for link in self.links:
            link.close()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
