"""A TCP proxy on loopback that the fault tests put between the exporter and the server.

``blackhole()`` makes the path go silent the way a dropped route does: nothing moves in either
direction and new connections are not accepted (their SYNs wait in a full backlog), until
``restore()``, when whatever was held moves on, as TCP retransmission would deliver it.
``close_all()`` resets every client connection at once.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from types import TracebackType

from servers import free_port

CHUNK = 65536
TICK_S = 0.02


class Proxy:
    """Forwards 127.0.0.1:<port> to a server address until ``stop()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port), backlog=1)
        self._flowing = threading.Event()
        self._flowing.set()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True, name="test-proxy-accept")]
        self._threads[0].start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def blackhole(self) -> None:
        """Stop moving bytes and accepting connections."""
        self._flowing.clear()

    def restore(self) -> None:
        """Move held bytes on and accept again."""
        self._flowing.set()

    def close_all(self) -> None:
        """Reset every client connection (the server side is closed too)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            with contextlib.suppress(OSError):
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        self._listener.settimeout(TICK_S)
        while not self._stopped.is_set():
            if not self._flowing.wait(TICK_S):
                continue
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            thread = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            thread.start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
            while not self._stopped.is_set():
                if not self._flowing.wait(TICK_S):
                    continue  # held: the bytes wait in the kernel buffers
                try:
                    ready = selector.select(TICK_S)
                    for key, _ in ready:
                        source = key.fileobj
                        assert isinstance(source, socket.socket)
                        data = source.recv(CHUNK)
                        if not data:
                            raise ConnectionError("closed")
                        peers[source].setblocking(True)
                        peers[source].sendall(data)
                        peers[source].setblocking(False)
                except (OSError, ValueError, ConnectionError):
                    break
        for sock in peers:
            with contextlib.suppress(OSError):
                sock.close()

    def stop(self) -> None:
        self._stopped.set()
        self._flowing.set()
        self.close_all()
        self._listener.close()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
