"""Where a sync round trip runs: on export()'s own thread while the sender is idle and the server
answers at once; whatever the server does not answer at once, the sender finishes, each entry
written once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis
from opentelemetry.sdk._logs.export import LogRecordExportResult

from otel_redis_exporter import FAST_PATH, RedisLogExporter
from otel_redis_exporter._write.transport import ThreadSender

from records import make_record

pytestmark = pytest.mark.skipif(not FAST_PATH, reason="export() writes itself on the fast path only")


@pytest.fixture
def sender_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads on which the sender made or finished an attempt."""
    threads: list[str] = []
    original = ThreadSender._write

    def recorded(self: ThreadSender, job: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(self, job)

    monkeypatch.setattr(ThreadSender, "_write", recorded)
    return threads


def warm(exporter_factory: Callable[..., RedisLogExporter], **options: Any) -> RedisLogExporter:
    """A sync exporter that has connected (on the exporting thread too)."""
    exporter = exporter_factory(mode="sync", **options)
    assert exporter.export([make_record("warm-up")]) is LogRecordExportResult.SUCCESS
    return exporter


def pause_writes(redis_client: redis.Redis, milliseconds: int) -> None:
    redis_client.execute_command("CLIENT", "PAUSE", milliseconds, "WRITE")


def test_healthy_round_trips_run_on_the_exporting_thread_the_first_one_too(
    redis_url: str,
    redis_client: redis.Redis,
    exporter_factory: Callable[..., RedisLogExporter],
    sender_writes: list[str],
) -> None:
    exporter = warm(exporter_factory, url=redis_url)
    for n in range(5):
        assert exporter.export([make_record(f"{n}-{i}") for i in range(100)]) is LogRecordExportResult.SUCCESS
    assert sender_writes == []
    assert redis_client.xlen("otel:logs") == 501
    assert exporter.stats().exported == 501


def test_a_reply_that_comes_late_is_read_by_the_sender_and_written_once(
    redis_url: str,
    redis_client: redis.Redis,
    exporter_factory: Callable[..., RedisLogExporter],
    sender_writes: list[str],
) -> None:
    """The server holds the replies past the hand-off: export() returns, the sender reads the
    replies of the same round trip when they come, and nothing is sent twice."""
    exporter = warm(exporter_factory, url=redis_url)
    pause_writes(redis_client, 600)
    assert exporter.export([make_record(f"late {i}") for i in range(50)]) is LogRecordExportResult.FAILURE
    assert exporter.force_flush(10_000)
    assert sender_writes == ["otel-redis-exporter-sender"]  # the rest of this round trip
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
