"""Forwarding: a consumer group hands batches to a sender (OTLP/HTTP in the CLI, see ``send``).

An entry is acknowledged only once it was delivered or, refused for good, copied to the dead
letters. While the endpoint cannot take a batch, the batch stays pending in the group and is
offered again after a backoff, so a Redis stream becomes a durable buffer in front of a
collector: at-least-once delivery, in order per stream key. Records are rebuilt with everything
OTLP carries (``RecordBuilder``), so what arrives is what the SDK would have sent directly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation, get_meter_provider
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from .._encode.entry import LogEntry
from .._encode.flat import dumps
from .._errors import describe
from .._log import logger
from ..read import DEAD_LETTER_SUFFIX, DEFAULT_BLOCK_MS, DEFAULT_GROUP_COUNT, ConsumerGroup
from .send import Answer, ExporterSender, Sender

FIRST_BACKOFF_S = 0.5
DEFAULT_MAX_BACKOFF_S = 30.0
# The attribute a forwarded record gets when the exporter cut some of its values to
# ``max_value_length``: the list of what was cut (attribute keys, and ``body``).
TRUNCATED_ATTRIBUTE = "otel_redis.truncated"


@dataclass(frozen=True)
class ForwardedLogRecord(ReadableLogRecord):
    """A record rebuilt from an entry: carries the SDK's count of dropped attributes, which the
    OTLP encoder reads from ``dropped_attributes``, exactly as it was recorded."""

    dropped_attributes_count: int = 0

    @property
    def dropped_attributes(self) -> int:
        return self.dropped_attributes_count


def _severity(number: int | None) -> SeverityNumber | None:
    if number is None:
        return None
    try:
        return SeverityNumber(number)
    except ValueError:
        return None


def _context(entry: LogEntry) -> Context | None:
    if not entry.trace_id or not entry.span_id:
        return None
    span = SpanContext(
        int(entry.trace_id, 16),
        int(entry.span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(entry.trace_flags or 0),
    )
    return set_span_in_context(NonRecordingSpan(span), Context())


class RecordBuilder:
    """``LogEntry`` -> SDK ``ReadableLogRecord``, sharing resources and scopes within a batch."""

    def __init__(self) -> None:
        self._resources: dict[Hashable, Resource] = {}
        self._scopes: dict[Hashable, InstrumentationScope] = {}

    def build(self, entry: LogEntry) -> ReadableLogRecord:
        """The SDK record an exporter can send; bodies and attributes keep their types."""
        from .._encode.otlp import otlp_value  # noqa: PLC0415 - the forwarder runs with the otlp extra

        resource_key = _key(entry.resource_schema_url, entry.resource)
        resource = self._resources.get(resource_key)
        if resource is None:
            resource = self._resources[resource_key] = Resource(
                dict(entry.resource), entry.resource_schema_url
            )
        scope_key = _key(
            (entry.scope_name, entry.scope_version, entry.scope_schema_url), entry.scope_attributes
        )
        scope = self._scopes.get(scope_key)
        if scope is None:
            scope = self._scopes[scope_key] = InstrumentationScope(
                entry.scope_name or "",
                entry.scope_version,
                entry.scope_schema_url,
                attributes=dict(entry.scope_attributes) or None,
            )
        attributes = {key: otlp_value(value) for key, value in entry.attributes.items()}
        if entry.truncated:
            attributes[TRUNCATED_ATTRIBUTE] = list(entry.truncated)
        record = LogRecord(
            # 0 (unset) stays unset: the observed-time fallback is for display only.
            timestamp=entry.own_timestamp or None,
            observed_timestamp=entry.observed_timestamp,
            context=_context(entry),
            severity_text=entry.severity_text,
            severity_number=_severity(entry.severity_number),
            body=otlp_value(entry.body),
            attributes=attributes or None,
            event_name=entry.event_name,
        )
        return ForwardedLogRecord(
            log_record=record,
            resource=resource,
            instrumentation_scope=scope,
            dropped_attributes_count=entry.dropped_attributes_count,
        )


def _key(head: Hashable, attributes: Mapping[str, Any]) -> Hashable:
    """What tells resources (or scopes) apart: the items themselves when they hash (flat values,
    the common case) with their types (1, 1.0 and True are equal keys but other values), else
    their JSON."""
    items = (head, tuple((name, type(value), value) for name, value in attributes.items()))
    try:
        hash(items)
    except TypeError:  # a list or map value
        return dumps([head, _jsonable(attributes)])
    return items


def _jsonable(value: Any) -> Any:
    from .._encode.flat import Sanitizer  # noqa: PLC0415

    return Sanitizer(1 << 30).value(value)


def to_records(entries: Sequence[LogEntry]) -> list[ReadableLogRecord]:
    """SDK log records for ``entries``, in order."""
    builder = RecordBuilder()
    return [builder.build(entry) for entry in entries]


@dataclass(slots=True)
class ForwardStats:
    """What a forwarder did so far, and the group's backlog when last asked (``None``: not yet)."""

    forwarded: int = 0
    dead_lettered: int = 0
    failed_attempts: int = 0
    pending: int | None = None
    lag: int | None = None


class ForwardMetrics:
    """The forwarder's counts through the OpenTelemetry metrics API (meter ``otel_redis_exporter``):

    * ``otel_redis_exporter.forward.records`` (counter, ``{log_record}``): records settled, with
      ``outcome`` = ``forwarded`` or ``dead_lettered``;
    * ``otel_redis_exporter.forward.retries`` (counter, ``{batch}``): batches left pending to retry;
    * ``otel_redis_exporter.forward.pending`` / ``.lag`` (observable gauges, ``{entry}``): the
      group's entries delivered but not acknowledged, and not yet delivered, when last sampled.
    """

    def __init__(self, stats: ForwardStats, meter_provider: MeterProvider | None = None) -> None:
        meter = (meter_provider or get_meter_provider()).get_meter("otel_redis_exporter")
        self._records = meter.create_counter(
            "otel_redis_exporter.forward.records",
            unit="{log_record}",
            description="Records forwarded or dead-lettered",
        )
        self._retries = meter.create_counter(
            "otel_redis_exporter.forward.retries", unit="{batch}", description="Batches left pending to retry"
        )

        def gauge(read: Callable[[], int | None]) -> Callable[[CallbackOptions], Iterable[Observation]]:
            def observe(options: CallbackOptions) -> Iterable[Observation]:
                value = read()
                return [] if value is None else [Observation(value)]

            return observe

        meter.create_observable_gauge(
            "otel_redis_exporter.forward.pending", [gauge(lambda: stats.pending)], unit="{entry}"
        )
        meter.create_observable_gauge(
            "otel_redis_exporter.forward.lag", [gauge(lambda: stats.lag)], unit="{entry}"
        )

    def settled(self, count: int, outcome: str) -> None:
        self._records.add(count, {"outcome": outcome})

    def retried(self) -> None:
        self._retries.add(1)


class RetryLaterError(RuntimeError):
    """The endpoint may take the batch later; it stays pending."""

    def __init__(self, count: int, answer: Answer) -> None:
        super().__init__(f"the endpoint did not take {count} log records ({answer.reason})")
        self.answer = answer


Item = tuple[str, bytes, LogEntry]


class Forwarder:
    """Consumes ``group`` and sends every batch, acknowledging each entry only once it was
    delivered or dead-lettered.

    ``sender`` is a ``Sender`` (see ``_send``) or any SDK ``LogRecordExporter``. Per answer:
    delivered (2xx): acknowledged; too large (413): split in halves, each sent on its own;
    refused for good (another 4xx): copied to the dead-letter stream (``dead_letter(key)``, by
    default ``key:dead``) with the status and reason, then acknowledged; anything else (429,
    5xx, no answer): left pending and offered again after the endpoint's ``Retry-After`` or a
    backoff (0.5 s doubling, at most ``max_backoff_s``). ``run`` loops until ``stop`` is set (or,
    with ``exit_when_idle``, until a read finds nothing within ``block_ms``); ``stop`` cuts a
    wait short but never a batch in flight.
    """

    def __init__(
        self,
        group: ConsumerGroup,
        sender: Sender | LogRecordExporter,
        *,
        count: int = DEFAULT_GROUP_COUNT,
        block_ms: int = DEFAULT_BLOCK_MS,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
        stop: threading.Event | None = None,
        on_batch: Callable[[int], None] | None = None,
        dead_letter: Callable[[str], str] | None = None,
        progress_interval_s: float = 0.0,
        on_progress: Callable[[ForwardStats], None] | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._group = group
        self._sender: Sender = ExporterSender(sender) if isinstance(sender, LogRecordExporter) else sender
        self._count = count
        self._block_ms = block_ms
        self._max_backoff_s = max_backoff_s
        self.stop = stop or threading.Event()
        self._on_batch = on_batch
        self._dead_letter = dead_letter or (lambda key: key + DEAD_LETTER_SUFFIX)
        self.stats = ForwardStats()
        self._metrics = ForwardMetrics(self.stats, meter_provider)
        self._progress_interval_s = progress_interval_s
        self._on_progress = on_progress
        self._next_progress = time.monotonic() + progress_interval_s

    def _deliver(self, items: list[Item]) -> None:
        """Send ``items``; acknowledge what was delivered or dead-lettered, raise for the rest."""
        answer = self._sender.send(to_records([entry for _, _, entry in items]))
        if answer.delivered:
            self._group.ack((key, entry_id) for key, entry_id, _ in items)
            self.stats.forwarded += len(items)
            self._metrics.settled(len(items), "forwarded")
            if self._on_batch is not None:
                self._on_batch(len(items))
        elif answer.too_large and len(items) > 1:
            half = len(items) // 2
            self._deliver(items[:half])
            self._deliver(items[half:])
        elif answer.refused:
            note = {"dead_letter.status": str(answer.status), "dead_letter.reason": answer.reason}
            self._group.dead_letter([(key, entry_id) for key, entry_id, _ in items], self._dead_letter, note)
            self.stats.dead_lettered += len(items)
            self._metrics.settled(len(items), "dead_lettered")
            logger.warning(
                "The endpoint refused %d log records for good (%s); they went to the dead letters",
                len(items),
                answer.reason,
            )
        else:
            raise RetryLaterError(len(items), answer)

    def _handle(self, batch: list[tuple[str, bytes, LogEntry | None]]) -> None:
        gone = [(key, entry_id) for key, entry_id, entry in batch if entry is None]
        if gone:  # deleted or not ours (logged when read): nothing to send
            self._group.ack(gone)
        items = [(key, entry_id, entry) for key, entry_id, entry in batch if entry is not None]
        if items:
            self._deliver(items)

    def _backoff(self, failures: int, answer: Answer | None = None) -> float:
        if answer is not None and answer.retry_after_s is not None:
            return answer.retry_after_s
        return float(min(FIRST_BACKOFF_S * 2 ** (failures - 1), self._max_backoff_s))

    def sample(self) -> ForwardStats:
        """Ask the group for its backlog (pending, lag) and return the counts with it."""
        self.stats.pending, self.stats.lag = self._group.backlog()
        return self.stats

    def _report(self) -> None:
        if self._on_progress is None or not self._progress_interval_s:
            return
        now = time.monotonic()
        if now < self._next_progress:
            return
        self._next_progress = now + self._progress_interval_s
        try:
            self.sample()
        except Exception as error:
            if not _is_redis_error(error):
                raise
            self.stats.pending = self.stats.lag = None  # unknown now; the counts still hold
        self._on_progress(self.stats)

    def run(self, *, exit_when_idle: bool = False) -> ForwardStats:
        """Forward until stopped; returns the counts. Every ``progress_interval_s`` seconds (0:
        never) ``on_progress`` gets the counts and the group's backlog."""
        failures = 0
        while not self.stop.is_set():
            self._report()
            try:
                batch = self._group.read(self._count, self._block_ms)
                if batch:
                    self._handle(batch)
            except RetryLaterError as error:
                failures += 1
                self.stats.failed_attempts += 1
                self._metrics.retried()
                delay = self._backoff(failures, error.answer)
                logger.warning("%s; they stay pending, next attempt in %.1f s", error, delay)
                self.stop.wait(delay)
                continue
            except Exception as error:
                if not _is_redis_error(error):
                    raise
                failures += 1
                delay = self._backoff(failures)
                logger.warning(
                    "Reading the stream failed: %s; next attempt in %.1f s", describe(error), delay
                )
                self.stop.wait(delay)
                continue
            failures = 0
            if not batch and exit_when_idle:
                break
        return self.stats


def _is_redis_error(error: BaseException) -> bool:
    from redis.exceptions import AuthenticationError, RedisError  # noqa: PLC0415

    # A wrong password does not heal by waiting.
    return isinstance(error, RedisError | OSError) and not isinstance(error, AuthenticationError)
