"""The real logging pipeline at default settings, with an application thread logging at a set rate.

stdlib ``logging`` -> OpenTelemetry's logging handler -> ``LoggerProvider`` ->
``BatchLogRecordProcessor`` (its defaults: queue 2048, batch 512) -> a counting pass-through ->
``RedisLogExporter`` (its defaults). The pass-through changes nothing; it counts what the
processor handed over, so records the processor dropped are told apart from the exporter's.
"""

from __future__ import annotations

import itertools
import logging
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from otel_redis_exporter import RedisLogExporter
from otel_redis_exporter._setup import make_handler

# The application never logs for longer than this, whatever a test asks.
MAX_APP_SECONDS = 60.0
_names = itertools.count()


class Counting(LogRecordExporter):
    """Passes batches on; counts the records and times each export() call."""

    def __init__(self, inner: RedisLogExporter, shutdown_timeout_ms: int = 30_000) -> None:
        self.inner = inner
        self.shutdown_timeout_ms = shutdown_timeout_ms
        self.received = 0
        self.durations: list[float] = []

    @property
    def longest_export_s(self) -> float:
        return max(self.durations, default=0.0)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        started = time.monotonic()
        try:
            return self.inner.export(batch)
        finally:
            self.received += len(batch)
            self.durations.append(time.monotonic() - started)

    def shutdown(self) -> None:
        self.inner.shutdown(timeout_millis=self.shutdown_timeout_ms)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


@dataclass
class Books:
    """What the application logged and where every record ended."""

    emitted: int
    received: int
    entries: int
    landed: int
    dropped: dict[str, int]
    longest_export_s: float
    p99_ms: dict[str, float] = field(default_factory=dict)

    @property
    def processor_dropped(self) -> int:
        return self.emitted - self.received

    @property
    def duplicates(self) -> int:
        return self.entries - self.landed

    @property
    def exporter_dropped(self) -> int:
        return sum(self.dropped.values())

    def __str__(self) -> str:
        p99 = " ".join(f"{phase}={ms:.2f}ms" for phase, ms in self.p99_ms.items())
        return (
            f"emitted={self.emitted} landed={self.landed} duplicates={self.duplicates} "
            f"processor_dropped={self.processor_dropped} exporter_dropped={self.dropped} "
            f"longest_export={self.longest_export_s * 1000:.0f}ms logging_p99[{p99}]"
        )


class Pipeline:
    """One exporter behind the SDK's pipeline, and an application thread that logs into it."""

    def __init__(self, url: str, mode: str, stream: str = "otel:logs") -> None:
        self.stream = stream
        self.exporter = RedisLogExporter(url=url, mode=mode, stream=stream)
        self.counting = Counting(self.exporter)
        self.provider = LoggerProvider(
            resource=Resource.create({"service.name": "faults"}), shutdown_on_exit=False
        )
        self.provider.add_log_record_processor(BatchLogRecordProcessor(self.counting))
        self.logger = logging.getLogger(f"faults.app{next(_names)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(make_handler(self.provider, logging.INFO))
        self.emitted = 0
        self.phase = "before"
        self.latencies: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, rate: float) -> None:
        """Log ``rate`` records per second on a thread of its own until ``stop()``."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._log, args=(rate,), name="test-app", daemon=True)
        self._thread.start()

    def _log(self, rate: float) -> None:
        started = time.monotonic()
        for i in itertools.count():
            due = started + i / rate
            now = time.monotonic()
            if self._stop.is_set() or now - started > MAX_APP_SECONDS:
                return
            if due > now:
                self._stop.wait(due - now)
            before = time.perf_counter()
            self.logger.info(f"r{self.emitted}")
            self.latencies.setdefault(self.phase, []).append(time.perf_counter() - before)
            self.emitted += 1

    def wait_for_records(self, count: int, timeout_s: float) -> None:
        """Poll until the application has logged ``count`` more records (fail at the deadline)."""
        target = self.emitted + count
        deadline = time.monotonic() + timeout_s
        while self.emitted < target:
            assert time.monotonic() < deadline, f"the application logged {self.emitted} of {target}"
            time.sleep(0.01)

    def hold(self, seconds: float) -> None:
        """Let ``seconds`` of wall time pass while the application logs (how long a fault lasts)."""
        assert self._thread is not None, "start() the application first"
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            assert self._thread.is_alive(), "the application stopped logging"
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def finish(self, client: redis.Redis) -> Books:
        """Stop logging, shut the pipeline down (the last flush included) and balance the books."""
        self.stop()
        self.provider.shutdown()
        entries = client.xrange(self.stream)
        uids = {fields["log.record.uid"] for _, fields in entries}
        bodies = {fields["body"] for _, fields in entries}
        assert len(uids) == len(bodies), "two records shared a uid, or one record got two"
        return Books(
            emitted=self.emitted,
            received=self.counting.received,
            entries=len(entries),
            landed=len(uids),
            dropped=dict(self.exporter.stats().dropped),
            longest_export_s=self.counting.longest_export_s,
            p99_ms={
                phase: statistics.quantiles(samples, n=100)[98] * 1000
                for phase, samples in self.latencies.items()
                if len(samples) >= 100
            },
        )
