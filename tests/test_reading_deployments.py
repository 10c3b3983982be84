"""Reading back from a Redis Cluster (with shards) and through Sentinel: the reader, the CLI and
forward take the exporter's deployment settings, on real servers of both kinds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import on_tls_kinds
from otel_redis_exporter import LogEntry, RedisLogReader
from otel_redis_exporter._keys import shard_keys, shard_of
from otel_redis_exporter.read.replies import order_key
from test_forward import Receiver

from records import make_record, span_context
from servers import Cluster, SentinelGroup, StartServer, TlsMaterial, free_port, wait_until, write_records

SHARDS = 3
TRACES = [0x1000 + n for n in range(6)]  # low bits differ: the traces spread over the shards
SCRIPT = Path(sys.executable).parent / "otel-redis"


def write(records: list[Any], **settings: Any) -> None:
    """Write through a sync exporter with these settings, asserting that every record landed."""
    write_records(records, mode="sync", **settings)


def traced(i: int) -> bool:
    return i % 4 != 0


def traced_records(prefix: str, count: int) -> list[Any]:
    """``count`` records, every fourth without a trace, the others spread over TRACES."""
    return [
        make_record(f"{prefix}{i}", {"i": i}, context=span_context(TRACES[i % 6]) if traced(i) else None)
        for i in range(count)
    ]


def trace_hex(trace: int) -> str:
    return f"{trace:032x}"


def cli_env(**variables: str) -> dict[str, str]:
    """The environment with only these exporter variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_EXPORTER")}
    env.update(variables)
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


def bodies_of(output: str) -> list[str]:
    return [json.loads(line)["body"] for line in output.splitlines()]


def follow_in_thread(
    reader: RedisLogReader, stop: threading.Event
) -> tuple[list[LogEntry], threading.Thread]:
    """``tail(1, follow=True)`` in a thread, collecting what it yields until ``stop``; returns
    once the newest record is shown, so the follower knows where it starts."""
    seen: list[LogEntry] = []

    def run() -> None:
        for entry in reader.tail(1, follow=True, block_ms=200, stop=stop):
            seen.append(entry)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(lambda: seen, timeout=5, what="the follower showing the newest record")
    return seen, thread


# --------------------------------------------------------------------------
# Redis Cluster, shards=3
# --------------------------------------------------------------------------


@pytest.fixture
def cluster_stream(cluster: Cluster, request: pytest.FixtureRequest) -> str:
    """A stream name of its own for each test on the shared cluster."""
    return f"otel:read:{request.node.name}".replace("[", ":").replace("]", "")


def cluster_settings(cluster: Cluster, stream: str) -> dict[str, Any]:
    return {"url": cluster.url, "cluster": True, "shards": SHARDS, "stream": stream}


def test_cluster_reader_merges_the_shards_by_entry_id(cluster: Cluster, cluster_stream: str) -> None:
    """The reader reads all shard keys of the stream, in entry-id order, each record once."""
    settings = cluster_settings(cluster, cluster_stream)
    write(traced_records("r", 60), **settings, trace_index_ttl=60)
    with RedisLogReader(**settings) as reader:
        assert reader.keys() == shard_keys(cluster_stream, SHARDS)
        entries = reader.range()
        assert sorted(e.body for e in entries) == sorted(f"r{i}" for i in range(60))
        assert {e.stream for e in entries} == set(shard_keys(cluster_stream, SHARDS))
        order = [order_key(e.stream or "", e.entry_id or "") for e in entries]
        assert order == sorted(order)
        newest = list(reader.tail(5, follow=False))
        assert [e.entry_id for e in newest] == [e.entry_id for e in entries[-5:]]
        stats = reader.stats()
        assert sorted(s.key for s in stats) == sorted(shard_keys(cluster_stream, SHARDS))
        assert sum(s.length for s in stats) == 60


def test_cluster_by_trace_goes_to_the_traces_shard(cluster: Cluster, cluster_stream: str) -> None:
    """by_trace finds a trace's records with the index and by scanning only the trace's shard."""
    settings = cluster_settings(cluster, cluster_stream)
    write(traced_records("t", 60), **settings, trace_index_ttl=60)
    trace = trace_hex(TRACES[1])
    expected = sorted(f"t{i}" for i in range(60) if traced(i) and i % 6 == 1)
    home = shard_keys(cluster_stream, SHARDS)[shard_of(trace, SHARDS, 0)]
    with RedisLogReader(**settings) as reader:
        for use_index in (True, False):
            found = reader.by_trace(trace, use_index=use_index)
            assert sorted(e.body for e in found) == expected, f"use_index={use_index}"
            assert {e.stream for e in found} == {home}


def test_cluster_consumer_group_works_per_shard_key(cluster: Cluster, cluster_stream: str) -> None:
    """A group is created on every shard key and hands over every record once, acknowledged."""
    settings = cluster_settings(cluster, cluster_stream)
    write(traced_records("g", 45), **settings)
    got: list[str] = []
    with RedisLogReader(**settings) as reader:
        group = reader.group("readers", "c1")
        assert group.ensure() == shard_keys(cluster_stream, SHARDS)
        wait_until(
            lambda: group.process(lambda batch: got.extend(e.body for e in batch), count=10) == 0,
            timeout=10,
            what="the group drained",
        )
        assert sorted(got) == sorted(f"g{i}" for i in range(45))
        for stats in reader.stats():
            [info] = stats.groups
            assert (info.name, info.pending) == ("readers", 0)


def test_cluster_tail_follow_sees_every_new_record(cluster: Cluster, cluster_stream: str) -> None:
    """Following across the shard keys yields every record written afterwards, once."""
    settings = cluster_settings(cluster, cluster_stream)
    write([make_record("before")], **settings)
    stop = threading.Event()
    with RedisLogReader(**settings) as reader:
        seen, thread = follow_in_thread(reader, stop)
        try:
            expected = ["before"]
            for round_ in range(3):
                records = traced_records(f"f{round_}-", 9)
                expected += [r.log_record.body for r in records]
                write(records, **settings)
            wait_until(lambda: len(seen) >= len(expected), timeout=10, what="every new record followed")
        finally:
            stop.set()
            thread.join(timeout=5)
    assert sorted(e.body for e in seen) == sorted(expected)


def test_cluster_cli_reads_the_exporters_environment(cluster: Cluster, cluster_stream: str) -> None:
    """tail, trace and stats with the exporter's OTEL_EXPORTER_REDIS_* variables read every shard."""
    settings = cluster_settings(cluster, cluster_stream)
    write(traced_records("c", 30), **settings)
    env = cli_env(
        OTEL_EXPORTER_REDIS_LOGS_URL=cluster.url,
        OTEL_EXPORTER_REDIS_CLUSTER="true",
        OTEL_EXPORTER_REDIS_LOGS_SHARDS=str(SHARDS),
        OTEL_EXPORTER_REDIS_LOGS_STREAM=cluster_stream,
    )
    tail = run_cli(env, "tail", "-n", "100", "--json")
    assert sorted(bodies_of(tail.stdout)) == sorted(f"c{i}" for i in range(30))
    trace = run_cli(env, "trace", trace_hex(TRACES[2]), "--json")
    assert sorted(bodies_of(trace.stdout)) == sorted(f"c{i}" for i in range(30) if traced(i) and i % 6 == 2)
    stats = json.loads(run_cli(env, "stats", "--json").stdout)
    assert sorted(s["stream"] for s in stats) == sorted(shard_keys(cluster_stream, SHARDS))
    # The same through options instead of variables.
    options = ["--url", cluster.url, "--cluster", "--shards", str(SHARDS), "--stream", cluster_stream]
    again = run_cli(cli_env(), *options, "tail", "-n", "100", "--json")
    assert sorted(bodies_of(again.stdout)) == sorted(bodies_of(tail.stdout))


def test_cluster_forward_delivers_every_shard(cluster: Cluster, cluster_stream: str) -> None:
    """forward on a Cluster with shards sends every record of every shard key and acknowledges it."""
    settings = cluster_settings(cluster, cluster_stream)
    write(traced_records("w", 40), **settings)
    receiver = Receiver(free_port()).start()
    try:
        options = ["--url", cluster.url, "--cluster", "--shards", str(SHARDS), "--stream", cluster_stream]
        result = run_cli(
            cli_env(),
            *options,
            "forward",
            "--endpoint",
            receiver.endpoint,
            "--group",
            "otlp",
            "--exit-when-idle",
            "--block-ms",
            "100",
        )
        assert "forwarded 40 log records" in result.stderr
        assert sorted(receiver.bodies()) == sorted(f"w{i}" for i in range(40))
    finally:
        receiver.stop()
    with RedisLogReader(**settings) as reader:
        assert all(group.pending == 0 for stats in reader.stats() for group in stats.groups)


# --------------------------------------------------------------------------
# Sentinel
# --------------------------------------------------------------------------


def sentinel_settings(group: SentinelGroup, stream: str) -> dict[str, Any]:
    return {
        "url": "redis://127.0.0.1:1/0",  # the sentinels say where the master is
        "sentinels": group.sentinels,
        "sentinel_master": group.master_name,
        "stream": stream,
    }


def test_sentinel_reader_group_and_follow(sentinel_group: SentinelGroup) -> None:
    """Through the sentinels the reader ranges, follows and consumes what the exporter wrote there."""
    settings = sentinel_settings(sentinel_group, "otel:read:sentinel")
    write([make_record(f"s{i}") for i in range(10)], **settings)
    stop = threading.Event()
    with RedisLogReader(**settings) as reader:
        assert [e.body for e in reader.range()] == [f"s{i}" for i in range(10)]
        seen, thread = follow_in_thread(reader, stop)
        try:
            write([make_record("later")], **settings)
            wait_until(lambda: len(seen) == 2, timeout=10, what="the new record followed")
            assert [e.body for e in seen] == ["s9", "later"]
        finally:
            stop.set()
            thread.join(timeout=5)
        got: list[str] = []
        assert reader.group("g", "c").process(lambda batch: got.extend(e.body for e in batch), count=50) == 11
        assert got == [f"s{i}" for i in range(10)] + ["later"]


def test_sentinel_cli_and_forward_from_the_environment(sentinel_group: SentinelGroup) -> None:
    """The CLI and forward find the master through OTEL_EXPORTER_REDIS_SENTINELS."""
    stream = "otel:read:sentinel-cli"
    write([make_record(f"e{i}") for i in range(12)], **sentinel_settings(sentinel_group, stream))
    env = cli_env(
        OTEL_EXPORTER_REDIS_LOGS_URL="redis://127.0.0.1:1/0",
        OTEL_EXPORTER_REDIS_SENTINELS=",".join(f"{h}:{p}" for h, p in sentinel_group.sentinels),
        OTEL_EXPORTER_REDIS_SENTINEL_MASTER=sentinel_group.master_name,
        OTEL_EXPORTER_REDIS_LOGS_STREAM=stream,
    )
    assert bodies_of(run_cli(env, "tail", "-n", "100", "--json").stdout) == [f"e{i}" for i in range(12)]
    receiver = Receiver(free_port()).start()
    try:
        result = run_cli(
            env, "forward", "--endpoint", receiver.endpoint, "--group", "otlp", "--exit-when-idle"
        )
        assert "forwarded 12 log records" in result.stderr
        assert receiver.bodies() == [f"e{i}" for i in range(12)]
    finally:
        receiver.stop()


# --------------------------------------------------------------------------
# TLS
# --------------------------------------------------------------------------


@on_tls_kinds
def test_mutual_tls_reader_and_cli_take_the_tls_files(
    start_server: StartServer, tls_material: TlsMaterial
) -> None:
    """With the CA and client certificate (arguments or the exporter's variables) the reader and
    the CLI read a server that requires client certificates."""
    server = start_server(tls=tls_material, tls_auth_clients="yes")
    url = f"rediss://{server.host}:{server.port}/0"
    files = {
        "certificate": tls_material.ca_cert,
        "client_certificate": tls_material.client_cert,
        "client_key": tls_material.client_key,
    }
    write([make_record(f"t{i}") for i in range(3)], url=url, **files)
    with RedisLogReader(url=url, **files) as reader:
        assert [e.body for e in reader.range()] == ["t0", "t1", "t2"]
    env = cli_env(
        OTEL_EXPORTER_REDIS_LOGS_URL=url,
        OTEL_EXPORTER_REDIS_CERTIFICATE=tls_material.ca_cert,
        OTEL_EXPORTER_REDIS_CLIENT_CERTIFICATE=tls_material.client_cert,
        OTEL_EXPORTER_REDIS_CLIENT_KEY=tls_material.client_key,
    )
    assert bodies_of(run_cli(env, "tail", "--json").stdout) == ["t0", "t1", "t2"]
    options = ["--certificate", tls_material.ca_cert, "--client-certificate", tls_material.client_cert]
    again = run_cli(
        cli_env(), "--url", url, *options, "--client-key", tls_material.client_key, "tail", "--json"
    )
    assert bodies_of(again.stdout) == ["t0", "t1", "t2"]
