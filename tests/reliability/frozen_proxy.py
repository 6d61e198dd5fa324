"""A TCP proxy in front of PostgreSQL that can be frozen: it stops forwarding bytes both ways and keeps every
socket open, as a hung proxy, pooler or load balancer does.

While frozen, the kernel still acknowledges what each side sends (so TCP keepalives and `tcp_user_timeout`
see a live peer), new connections are accepted and connected upstream, and nothing moves until `thaw()`.
`freeze_after(pattern)` freezes at a precise point: when a client sends a statement whose text holds
`pattern`, that statement (up to its Sync) goes to the server, and then everything stops, so the server
runs it and its answer stays in the proxy. The store under test must not prepare statements
(`prepare_threshold=None`), or a statement's text is sent only the first times it runs.

Threads in the test's process: one accepts, two per connection pump bytes (client to server message by
message, server to client in chunks). Every pump waits on the same gate before it forwards anything.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

from psycopg.conninfo import conninfo_to_dict, make_conninfo

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


class FrozenProxy:
    """Proxies one PostgreSQL server on 127.0.0.1; `url` is the proxied connection string.

    Args:
        url: The server's connection string (a TCP host or a Unix socket folder).
    """

    def __init__(self, url: str) -> None:
        params = conninfo_to_dict(url)
        host, port = str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)
        # The embedded server may listen on a Unix socket in its data folder.
        self.upstream: str | tuple[str, int] = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        self.url = make_conninfo(url, host="127.0.0.1", port=port, sslmode="disable", gssencmode="disable")
        #: Set while bytes flow; cleared while frozen.
        self._gate = threading.Event()
        self._gate.set()
        #: Set once the proxy froze (by `freeze()` or a matched statement).
        self.frozen = threading.Event()
        self._pattern: bytes | None = None
        self._lock = threading.Lock()
        #: Monotonic times of the last freeze and thaw.
        self.frozen_at: float | None = None
        self.thawed_at: float | None = None
        self._sockets: list[socket.socket] = []
        self._closed = False
        self.connections = 0
        threading.Thread(target=self._accept, name="frozen-proxy-accept", daemon=True).start()

    # -- control ---------------------------------------------------------------------------------------------

    def freeze(self) -> None:
        """Stop forwarding now, both ways, on every connection (new ones too); sockets stay open."""
        with self._lock:
            self._pattern = None
            self._freeze_locked()

    def freeze_after(self, pattern: bytes) -> None:
        """Freeze right after the next statement whose text holds `pattern` reaches the server."""
        with self._lock:
            self._pattern = pattern

    def thaw(self) -> None:
        """Forward again; what was held back is delivered, in order."""
        with self._lock:
            self._pattern = None
            self.thawed_at = time.monotonic()
            self.frozen.clear()
            self._gate.set()

    def close(self) -> None:
        """Close every socket; the pumps end."""
        self._closed = True
        self._gate.set()
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _freeze_locked(self) -> None:
        self._gate.clear()
        self.frozen_at = time.monotonic()
        self.frozen.set()

    # -- pumps -----------------------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                if isinstance(self.upstream, str):
                    server = socket.socket(socket.AF_UNIX)
                    server.connect(self.upstream)
                else:
                    server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            self.connections += 1
            self._sockets += [client, server]
            threading.Thread(target=self._to_server, args=(client, server), daemon=True).start()
            threading.Thread(target=self._to_client, args=(server, client), daemon=True).start()

    @staticmethod
    def _read(sock: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("peer closed")
            data += chunk
        return data

    def _forward(self, dst: socket.socket, data: bytes) -> None:
        self._gate.wait()
        if self._closed:
            raise ConnectionError("proxy closed")
        dst.sendall(data)

    def _to_server(self, client: socket.socket, server: socket.socket) -> None:
        try:
            # Untyped start-up messages first (an SSL or GSS request may precede the real one).
            while True:
                head = self._read(client, 8)
                length, code = struct.unpack("!ii", head)
                self._forward(server, head + self._read(client, length - 8))
                if code not in (_SSL_REQUEST, _GSSENC_REQUEST):
                    break
            tripped = False  # a matched statement was seen: freeze once its Sync is forwarded
            while True:
                head = self._read(client, 5)
                message = head + self._read(client, struct.unpack("!i", head[1:])[0] - 4)
                kind = message[:1]
                with self._lock:
                    pattern = self._pattern
                    if pattern is not None and kind in (b"P", b"Q") and pattern in message:
                        self._pattern = None
                        tripped = True
                self._forward(server, message)
                if tripped and kind in (b"S", b"Q"):
                    tripped = False
                    with self._lock:
                        # Frozen after the statement went out: the server runs it, its answer stays here.
                        self._freeze_locked()
        except (OSError, ConnectionError):
            self._close_pair(client, server)

    def _to_client(self, server: socket.socket, client: socket.socket) -> None:
        try:
            while chunk := server.recv(65536):
                self._forward(client, chunk)
        except (OSError, ConnectionError):
            pass
        self._close_pair(client, server)

    def _close_pair(self, client: socket.socket, server: socket.socket) -> None:
        # A closed side is passed on only while bytes flow: a frozen proxy keeps the other side open.
        self._gate.wait()
        for sock in (client, server):
            with contextlib.suppress(OSError):
                sock.close()
