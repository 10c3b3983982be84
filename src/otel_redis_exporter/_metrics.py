"""Self-observability: the SDK exporter metrics conventions, plus plain counters for ``stats()``.

Instruments (meter ``otel_redis_exporter``), with ``otel.component.type=redis_log_exporter``,
``otel.component.name=redis_log_exporter/<n>``, ``server.address`` and ``server.port``:

* ``otel.sdk.exporter.log.exported`` (counter, ``{log_record}``): records finished, written or
  given up; given-up records carry ``error.type`` (``buffer_full``, ``shutdown``, ``WRONGTYPE``...).
* ``otel.sdk.exporter.log.inflight`` (up-down counter, ``{log_record}``): records being written.
* ``otel.sdk.exporter.operation.duration`` (histogram, ``s``): one round trip to Redis (one
  attempt); ``error.type`` when it did not write everything.
* ``otel_redis_exporter.buffer.records`` / ``.buffer.bytes`` (observable up-down counters): what
  the sender's queue holds, waiting or in flight.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation, get_meter_provider

COMPONENT_TYPE = "redis_log_exporter"
_component_numbers = itertools.count()


@dataclass(frozen=True, slots=True)
class ExporterStats:
    """A snapshot of what one exporter did since it was built (``RedisLogExporter.stats()``)."""

    exported: int = 0
    """Records written to Redis."""
    dropped: Mapping[str, int] = field(default_factory=dict)
    """Records given up, by reason: ``buffer_full`` (the queue's bounds), ``shutdown`` (not written
    by the end of shutdown), ``unconfirmed`` (given up at shutdown while the server had not answered:
    they may have landed), or the server's refusal (``WRONGTYPE``...)."""
    buffered_records: int = 0
    """Records in the sender's queue now, waiting or in flight."""
    buffered_bytes: int = 0
    """Approximate bytes those records take."""
    failed_exports: int = 0
    """``export()`` calls that returned FAILURE."""

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class ExporterMetrics:
    """Counts in plain integers and reports the same through the OpenTelemetry metrics API."""

    def __init__(
        self,
        meter_provider: MeterProvider | None,
        *,
        server_address: str | None,
        server_port: int | None,
        buffered: Callable[[], tuple[int, int]],
    ) -> None:
        self._lock = threading.Lock()
        self._exported = 0
        self._dropped: Counter[str] = Counter()
        self._failed_exports = 0
        self._buffered = buffered
        attributes: dict[str, Any] = {
            "otel.component.type": COMPONENT_TYPE,
            "otel.component.name": f"{COMPONENT_TYPE}/{next(_component_numbers)}",
        }
        if server_address:
            attributes["server.address"] = server_address
        if server_port:
            attributes["server.port"] = server_port
        self._attributes = attributes
        meter = (meter_provider or get_meter_provider()).get_meter("otel_redis_exporter")
        self._exported_counter = meter.create_counter(
            "otel.sdk.exporter.log.exported",
            unit="{log_record}",
            description="Log records the exporter finished with, written or given up (with error.type).",
        )
        self._inflight = meter.create_up_down_counter(
            "otel.sdk.exporter.log.inflight",
            unit="{log_record}",
            description="Log records being written to Redis now.",
        )
        self._duration = meter.create_histogram(
            "otel.sdk.exporter.operation.duration",
            unit="s",
            description="Duration of one round trip (one attempt) to Redis.",
        )
        meter.create_observable_up_down_counter(
            "otel_redis_exporter.buffer.records",
            callbacks=[self._observe(0)],
            unit="{log_record}",
            description="Log records in the sender's queue, waiting or in flight.",
        )
        meter.create_observable_up_down_counter(
            "otel_redis_exporter.buffer.bytes",
            callbacks=[self._observe(1)],
            unit="By",
            description="Approximate size of the log records in the sender's queue.",
        )

    def _observe(self, index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(self._buffered()[index], self._attributes)]

        return callback

    def written(self, count: int) -> None:
        if count:
            with self._lock:
                self._exported += count
            self._exported_counter.add(count, self._attributes)

    def dropped(self, count: int, error_type: str) -> None:
        if count:
            with self._lock:
                self._dropped[error_type] += count
            self._exported_counter.add(count, {**self._attributes, "error.type": error_type})

    def inflight(self, delta: int) -> None:
        self._inflight.add(delta, self._attributes)

    def operation(self, seconds: float, error_type: str | None) -> None:
        """One round trip to Redis took ``seconds``; ``error_type`` when it did not write everything."""
        if error_type is None:
            self._duration.record(seconds, self._attributes)
            return
        self._duration.record(seconds, {**self._attributes, "error.type": error_type})

    def failed_export(self) -> None:
        with self._lock:
            self._failed_exports += 1

    def snapshot(self) -> ExporterStats:
        records, size = self._buffered()
        with self._lock:
            return ExporterStats(
                exported=self._exported,
                dropped=dict(self._dropped),
                buffered_records=records,
                buffered_bytes=size,
                failed_exports=self._failed_exports,
            )
