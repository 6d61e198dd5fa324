"""A TCP proxy in front of PostgreSQL that loses the connection while a COMMIT is in flight.

Once armed, it forwards the client's next `COMMIT` to the server, holds back whatever the server answers,
calls `on_commit` (the test waits there for a real condition, e.g. the committed row being visible to
another session), then closes the client's socket. The client has sent COMMIT and never hears back: the
position a crash or a network cut leaves it in.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable

from psycopg.conninfo import conninfo_to_dict, make_conninfo

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_COMMIT = b"Q" + struct.pack("!i", 4 + len(b"COMMIT\x00")) + b"COMMIT\x00"


class CommitCutProxy:
    """Proxies one PostgreSQL server on 127.0.0.1; `url` is the proxied connection string."""

    def __init__(self, url: str) -> None:
        params = conninfo_to_dict(url)
        host, port = str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)
        # The embedded server may listen on a Unix socket in its data folder.
        self.upstream: str | tuple[str, int] = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        self.url = make_conninfo(url, host="127.0.0.1", port=port, sslmode="disable", gssencmode="disable")
        self.armed = threading.Event()
        self.cut = threading.Event()
        self.on_commit: Callable[[], None] = lambda: None
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, on_commit: Callable[[], None]) -> None:
        """Cut the connection that sends the next COMMIT, after `on_commit` returns."""
        self.on_commit = on_commit
        self.armed.set()

    def close(self) -> None:
        self._closed = True
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if isinstance(self.upstream, str):
                server = socket.socket(socket.AF_UNIX)
                server.connect(self.upstream)
            else:
                server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            hold = threading.Event()
            threading.Thread(target=self._to_server, args=(client, server, hold), daemon=True).start()
            threading.Thread(target=self._to_client, args=(server, client, hold), daemon=True).start()

    @staticmethod
    def _read(sock: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("peer closed")
            data += chunk
        return data

    def _to_server(self, client: socket.socket, server: socket.socket, hold: threading.Event) -> None:
        try:
            # Untyped start-up messages first (an SSL or GSS request may precede the real one).
            while True:
                head = self._read(client, 8)
                length, code = struct.unpack("!ii", head)
                server.sendall(head + self._read(client, length - 8))
                if code not in (_SSL_REQUEST, _GSSENC_REQUEST):
                    break
            while True:
                head = self._read(client, 5)
                message = head + self._read(client, struct.unpack("!i", head[1:])[0] - 4)
                if message == _COMMIT and self.armed.is_set() and not self.cut.is_set():
                    hold.set()  # from now on nothing the server says reaches this client
                    server.sendall(message)
                    self.on_commit()
                    self.cut.set()
                    client.close()
                    server.close()
                    return
                server.sendall(message)
        except (OSError, ConnectionError):
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.close()

    @staticmethod
    def _to_client(server: socket.socket, client: socket.socket, hold: threading.Event) -> None:
        try:
            while chunk := server.recv(65536):
                if hold.is_set():
                    return  # the COMMIT's answer is swallowed; the other pump closes the client when told
                client.sendall(chunk)
        except OSError:
            pass
        if not hold.is_set():
            with contextlib.suppress(OSError):
                client.close()
