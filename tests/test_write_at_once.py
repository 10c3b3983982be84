"""Where a healthy round trip runs: at once, without handing anything to the sender, while the
sender is idle and the server answers at once (sync mode: on export()'s own thread; async mode:
in one step of the exporter's loop). Whatever the server does not answer at once, the sender
finishes, each entry written once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis
from opentelemetry.sdk._logs.export import LogRecordExportResult
from redis.utils import HIREDIS_AVAILABLE

from otel_redis_exporter import FAST_PATH, RedisLogExporter
from otel_redis_exporter._write.transport import LoopSender, ThreadSender

from records import make_record

pytestmark = pytest.mark.skipif(not FAST_PATH, reason="round trips are made at once on the fast path only")

# Async mode reads the kept connection's replies itself only when hiredis's parser holds none.
ASYNC_HELD = HIREDIS_AVAILABLE

# The thread on which the sender finishes what the server does not answer at once.
SENDER_THREAD = {"sync": "otel-redis-exporter-sender", "async": "otel-redis-exporter-loop"}


@pytest.fixture(autouse=True)
def _held_in_this_mode(mode: str) -> None:
    if mode == "async" and not ASYNC_HELD:
        pytest.skip("async mode makes round trips at once with hiredis's parser only")


@pytest.fixture
def sender_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads on which the sender made or finished an attempt."""
    threads: list[str] = []
    sync_write, async_write = ThreadSender._write, LoopSender._write

    def sync_recorded(self: ThreadSender, job: Any) -> Any:
        threads.append(threading.current_thread().name)
        return sync_write(self, job)

    async def async_recorded(self: LoopSender, job: Any) -> Any:
        threads.append(threading.current_thread().name)
        return await async_write(self, job)

    monkeypatch.setattr(ThreadSender, "_write", sync_recorded)
    monkeypatch.setattr(LoopSender, "_write", async_recorded)
    return threads


def warm(exporter_factory: Callable[..., RedisLogExporter], **options: Any) -> RedisLogExporter:
    """An exporter that has connected (in async mode, its first round trip is the sender's)."""
    exporter = exporter_factory(**options)
    assert exporter.export([make_record("warm-up")]) is LogRecordExportResult.SUCCESS
    return exporter


def pause_writes(redis_client: redis.Redis, milliseconds: int) -> None:
    redis_client.execute_command("CLIENT", "PAUSE", milliseconds, "WRITE")


def test_healthy_round_trips_never_reach_the_sender(
    mode: str,
    redis_url: str,
    redis_client: redis.Redis,
    exporter_factory: Callable[..., RedisLogExporter],
    sender_writes: list[str],
) -> None:
    exporter = warm(exporter_factory, url=redis_url)
    first = list(sender_writes)
    for n in range(5):
        assert exporter.export([make_record(f"{n}-{i}") for i in range(100)]) is LogRecordExportResult.SUCCESS
    # sync mode connects on export()'s thread; async mode connects on the sender's task
    assert first == ([] if mode == "sync" else [SENDER_THREAD[mode]])
    assert sender_writes == first
    assert redis_client.xlen("otel:logs") == 501
    assert exporter.stats().exported == 501


def test_a_reply_that_comes_late_is_read_by_the_sender_and_written_once(
    mode: str,
    redis_url: str,
    redis_client: redis.Redis,
    exporter_factory: Callable[..., RedisLogExporter],
    sender_writes: list[str],
) -> None:
    """The server holds the replies past the hand-off: export() returns, the sender reads the
    replies of the same round trip when they come, and nothing is sent twice."""
    exporter = warm(exporter_factory, url=redis_url)
    sender_writes.clear()
    pause_writes(redis_client, 600)
    assert exporter.export([make_record(f"late {i}") for i in range(50)]) is LogRecordExportResult.FAILURE
    assert exporter.force_flush(10_000)
    assert sender_writes == [SENDER_THREAD[mode]]  # the rest of this round trip
    assert redis_client.xlen("otel:logs") == 51
    stats = exporter.stats()
    assert (stats.exported, stats.dropped_total) == (51, 0)


def test_a_batch_larger_than_the_socket_takes_at_once_is_sent_whole(
    redis_url: str,
    redis_client: redis.Redis,
    exporter_factory: Callable[..., RedisLogExporter],
) -> None:
    """6 MB in one round trip: the socket takes part of it at once, the sender sends the rest."""
    exporter = warm(exporter_factory, url=redis_url, max_value_length=8192)
    body = "x" * 4000
    exporter.export([make_record(f"{i} {body}") for i in range(1500)])
    assert exporter.force_flush(10_000)
    bodies = [fields["body"] for _, fields in redis_client.xrange("otel:logs")][1:]
    assert bodies == [f"{i} {body}" for i in range(1500)]
    assert exporter.stats().dropped_total == 0


def test_a_connection_the_server_closed_meanwhile_is_replaced_without_loss(
    redis_url: str,
    redis_client: redis.Redis,
    exporter_factory: Callable[..., RedisLogExporter],
) -> None:
    """The server closes the idle connection kept for the next round trip (as its ``timeout``
    setting or a failover does): the next batches land once each, on a new connection."""
    exporter = warm(exporter_factory, url=redis_url)
    assert redis_client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") >= 1
    for n in range(3):
        exporter.export([make_record(f"{n}-{i}") for i in range(100)])
    assert exporter.force_flush(10_000)
    uids = [fields["log.record.uid"] for _, fields in redis_client.xrange("otel:logs")]
    assert len(uids) == len(set(uids)) == 301
    stats = exporter.stats()
    assert (stats.exported, stats.dropped_total) == (301, 0)
