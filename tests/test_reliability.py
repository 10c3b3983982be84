"""Server states during steady logging: nothing is lost without being counted.

Freezes, kills, black holes and exits at default settings are in ``test_faults.py``; these are
the server's own refusals and pauses (CLIENT KILL, CLIENT PAUSE, DEBUG SLEEP, OOM), small bounds
and shutdown during an outage.

Each test logs through LoggerProvider -> BatchLogRecordProcessor -> RedisLogExporter while it
breaks the server, then checks the books: every emitted record landed (duplicates from retried
writes are recognised by log.record.uid) or was counted as dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource

from otel_redis_exporter import RedisLogExporter

from pipeline import Counting
from servers import ServerProcess, logged

# Small batches, exported often: many exports happen during each fault.
BATCH = 64
SCHEDULE_DELAY_MS = 20
PACE_S = 0.002  # between records: ~500 records/s, far below what the pipeline sustains


@dataclass
class Books:
    """What a logging run emitted, what landed, and what the exporter counted as dropped."""

    emitted: int
    entries: int
    landed: int
    dropped: int

    @property
    def duplicates(self) -> int:
        return self.entries - self.landed

    def __str__(self) -> str:
        return (
            f"emitted={self.emitted} landed={self.landed} dropped={self.dropped} duplicates={self.duplicates}"
        )


class LoggingRun:
    """A steady stream of records through the SDK's batch processor into one exporter."""

    def __init__(self, exporter: RedisLogExporter) -> None:
        self.exporter = exporter
        self.timed = Counting(exporter, shutdown_timeout_ms=20_000)
        self.provider = LoggerProvider(resource=Resource.create({"service.name": "faulty"}))
        self.provider.add_log_record_processor(
            BatchLogRecordProcessor(
                self.timed, schedule_delay_millis=SCHEDULE_DELAY_MS, max_export_batch_size=BATCH
            )
        )
        self.logger = self.provider.get_logger("load")
        self.emitted = 0
        self.slowest_emit_s = 0.0

    def log_for(self, seconds: float, max_records: int = 5_000) -> None:
        """Emit paced records for ``seconds`` (at most ``max_records``)."""
        until = time.monotonic() + seconds
        for _ in range(max_records):
            if time.monotonic() >= until:
                break
            started = time.monotonic()
            self.logger.emit(
                LogRecord(body=f"r{self.emitted}", severity_number=SeverityNumber.INFO, severity_text="INFO")
            )
            self.slowest_emit_s = max(self.slowest_emit_s, time.monotonic() - started)
            self.emitted += 1
            time.sleep(PACE_S)

    def finish(self, client: redis.Redis, key: str = "otel:logs") -> Books:
        """Shut the pipeline down (the last flush included) and balance the books."""
        self.provider.shutdown()
        entries = client.xrange(key)
        uids = {fields["log.record.uid"] for _, fields in entries}
        bodies = {fields["body"] for _, fields in entries}
        assert len(uids) == len(bodies), "two records shared a uid, or one record got two"
        return Books(self.emitted, len(entries), len(uids), self.exporter.stats().dropped_total)


@pytest.fixture
def run_factory(mode: str) -> Iterator[Callable[..., LoggingRun]]:
    """Builds logging runs in the current mode; shuts down whatever a failed test left."""
    runs: list[LoggingRun] = []

    def make(url: str, **kwargs: object) -> LoggingRun:
        run = LoggingRun(RedisLogExporter(url=url, mode=mode, **kwargs))  # type: ignore[arg-type]
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.provider.shutdown()


def test_killed_client_connections_lose_nothing(
    start_server: Callable[..., ServerProcess], run_factory: Callable[..., LoggingRun]
) -> None:
    """CLIENT KILL of every other connection, three times mid-run: every record lands."""
    server = start_server()
    admin = server.client()
    run = run_factory(server.url, timeout=2)
    for _ in range(3):
        run.log_for(0.4)
        admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    run.log_for(0.4)
    books = run.finish(admin)
    print(f"client kill: {books}")
    assert books.landed == books.emitted
    assert books.dropped == 0


@pytest.mark.parametrize("fault", ["CLIENT PAUSE 1500 WRITE", "DEBUG SLEEP 1.5"])
def test_paused_or_sleeping_server_loses_nothing_and_no_export_outlives_its_deadline(
    start_server: Callable[..., ServerProcess], run_factory: Callable[..., LoggingRun], fault: str
) -> None:
    """Writes paused / server busy for 1.5 s with a 1 s deadline: all lands, exports stay bounded."""
    server = start_server(config={"enable-debug-command": "yes"})
    admin = server.client()
    run = run_factory(server.url, timeout=1)
    run.log_for(0.3)
    blocker = server.client()
    if fault.startswith("DEBUG"):
        # DEBUG SLEEP blocks the caller too: send it without waiting for the reply.
        connection = blocker.connection_pool.get_connection()
        connection.send_command(*fault.split())
    else:
        blocker.execute_command(*fault.split())
    run.log_for(2.0)
    books = run.finish(admin)
    blocker.close()
    print(f"{fault}: {books}, slowest export {max(run.timed.durations):.2f} s")
    assert books.landed == books.emitted
    assert books.dropped == 0
    assert max(run.timed.durations) < 1 + 2


def test_out_of_memory_is_reported_and_every_record_accounted_for(
    start_server: Callable[..., ServerProcess],
    run_factory: Callable[..., LoggingRun],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """maxmemory with noeviction: OOM is logged clearly; records are buffered, then land."""
    server = start_server(config={"maxmemory-policy": "noeviction"})
    admin = server.client()
    run = run_factory(server.url, timeout=1)
    run.log_for(0.2)
    # A limit far below what the server already uses: every write is refused with OOM.
    admin.config_set("maxmemory", "1")
    with caplog.at_level(logging.WARNING, logger="otel_redis_exporter"):
        run.log_for(1.0)
        logged(lambda: caplog.text, "out of memory")
    buffered = run.exporter.stats().buffered_records
    assert buffered > 0
    admin.execute_command("CONFIG", "SET", "maxmemory", "0")
    run.log_for(0.5)
    books = run.finish(admin)
    print(f"OOM: {books}, buffered during OOM {buffered}")
    assert books.landed + books.dropped == books.emitted
    assert books.dropped == 0


def test_outage_longer_than_the_buffer_drops_exactly_what_it_counts(
    start_server: Callable[..., ServerProcess], run_factory: Callable[..., LoggingRun]
) -> None:
    """Buffer of 100 records, ~1000 logged while the server is down: bounded memory, exact drop count."""
    server = start_server(config={"appendonly": "yes", "appendfsync": "always"})
    run = run_factory(server.url, timeout=1, buffer_max_records=100)
    run.log_for(0.2)
    server.stop()
    peak = 0
    for _ in range(10):
        run.log_for(0.2, max_records=100)
        peak = max(peak, run.exporter.stats().buffered_records)
    server.restart()
    run.log_for(0.3)
    books = run.finish(server.client())
    print(f"outage beyond the buffer: {books}, peak buffered {peak}")
    assert peak <= 100
    assert books.dropped > 0
    assert books.landed + books.dropped == books.emitted


def test_shutdown_during_an_outage_returns_in_time_and_reports_what_it_gave_up(
    start_server: Callable[..., ServerProcess], mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Frozen server, buffered records: shutdown keeps to its timeout and counts what it gave up."""
    server = start_server()
    exporter = RedisLogExporter(url=server.url, mode=mode, timeout=0.5)
    server.freeze()
    try:
        batch = [LogRecord(body=f"stuck {i}", severity_number=SeverityNumber.WARN) for i in range(20)]
        provider = LoggerProvider()
        records = [ReadableLogRecord(log_record=r, resource=provider.resource) for r in batch]
        assert exporter.export(records) is LogRecordExportResult.FAILURE
        assert exporter.stats().buffered_records == 20
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="otel_redis_exporter"):
            exporter.shutdown(timeout_millis=1_500)
        elapsed = time.monotonic() - started
    finally:
        server.thaw()
    stats = exporter.stats()
    print(f"shutdown during outage: {elapsed:.2f} s, gave up {stats.dropped}")
    assert elapsed < 1.5 + 2
    # "unconfirmed" when they were sent to the frozen server (they may land when it wakes up),
    # "shutdown" when the connection never got that far.
    assert sum(stats.dropped.values()) == 20
    assert set(stats.dropped) <= {"shutdown", "unconfirmed"}
    assert stats.buffered_records == 0
    assert "gave up 20 log records" in caplog.text
