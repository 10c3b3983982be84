"""Forwarding: a consumer group hands batches to an SDK log exporter (OTLP/HTTP in the CLI).

An entry is acknowledged only after the exporter returned SUCCESS. While the exporter fails,
the batch stays pending in the group and is offered again after a backoff (0.5 s doubling, at
most ``max_backoff_s``), so a Redis stream becomes a durable buffer in front of a collector:
at-least-once delivery, in order per stream key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from ._encoding import LogEntry, _dumps
from ._errors import describe
from ._log import logger
from .reader import DEFAULT_BLOCK_MS, DEFAULT_GROUP_COUNT, ConsumerGroup

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


class ExportFailedError(RuntimeError):
    """The exporter did not accept a batch; it stays pending."""


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
        self._resources: dict[str, Resource] = {}
        self._scopes: dict[str, InstrumentationScope] = {}

    def build(self, entry: LogEntry) -> ReadableLogRecord:
        """The SDK record an exporter can send; bodies and attributes keep their types."""
        from ._otlp import _otlp_value  # noqa: PLC0415 - the forwarder runs with the otlp extra

        resource_key = _dumps([entry.resource_schema_url, _jsonable(entry.resource)])
        resource = self._resources.get(resource_key)
        if resource is None:
            resource = self._resources[resource_key] = Resource(
                dict(entry.resource), entry.resource_schema_url
            )
        scope_key = _dumps(
            [entry.scope_name, entry.scope_version, entry.scope_schema_url, _jsonable(entry.scope_attributes)]
        )
        scope = self._scopes.get(scope_key)
        if scope is None:
            scope = self._scopes[scope_key] = InstrumentationScope(
                entry.scope_name or "",
                entry.scope_version,
                entry.scope_schema_url,
                attributes=dict(entry.scope_attributes) or None,
            )
        attributes = {key: _otlp_value(value) for key, value in entry.attributes.items()}
        if entry.truncated:
            attributes[TRUNCATED_ATTRIBUTE] = list(entry.truncated)
        record = LogRecord(
            # 0 (unset) stays unset: the observed-time fallback is for display only.
            timestamp=entry.own_timestamp or None,
            observed_timestamp=entry.observed_timestamp,
            context=_context(entry),
            severity_text=entry.severity_text,
            severity_number=_severity(entry.severity_number),
            body=_otlp_value(entry.body),
            attributes=attributes or None,
            event_name=entry.event_name,
        )
        return ForwardedLogRecord(
            log_record=record,
            resource=resource,
            instrumentation_scope=scope,
            dropped_attributes_count=entry.dropped_attributes_count,
        )


def _jsonable(value: Any) -> Any:
    from ._encoding import _Sanitizer  # noqa: PLC0415

    return _Sanitizer(1 << 30).value(value)


def to_records(entries: Sequence[LogEntry]) -> list[ReadableLogRecord]:
    """SDK log records for ``entries``, in order."""
    builder = RecordBuilder()
    return [builder.build(entry) for entry in entries]


@dataclass(slots=True)
class ForwardStats:
    """What a forwarder did so far."""

    forwarded: int = 0
    failed_attempts: int = 0


class Forwarder:
    """Consumes ``group`` and exports every batch with ``exporter``, acknowledging after SUCCESS.

    ``run`` loops until ``stop`` is set (or, with ``exit_when_idle``, until a read finds nothing
    within ``block_ms``). Exporter failures and Redis errors are logged and retried after a
    backoff; ``stop`` cuts the backoff short.
    """

    def __init__(
        self,
        group: ConsumerGroup,
        exporter: LogRecordExporter,
        *,
        count: int = DEFAULT_GROUP_COUNT,
        block_ms: int = DEFAULT_BLOCK_MS,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
        stop: threading.Event | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._group = group
        self._exporter = exporter
        self._count = count
        self._block_ms = block_ms
        self._max_backoff_s = max_backoff_s
        self.stop = stop or threading.Event()
        self._on_batch = on_batch
        self.stats = ForwardStats()

    def _export(self, entries: list[LogEntry]) -> None:
        try:
            result = self._exporter.export(to_records(entries))
        except Exception as error:  # some exporter versions raise on connection errors
            raise ExportFailedError(f"the exporter failed on {len(entries)} log records ({error})") from error
        if result is not LogRecordExportResult.SUCCESS:
            raise ExportFailedError(f"the exporter did not accept {len(entries)} log records")
        self.stats.forwarded += len(entries)
        if self._on_batch is not None:
            self._on_batch(len(entries))

    def run(self, *, exit_when_idle: bool = False) -> ForwardStats:
        """Forward until stopped; returns the counts."""
        failures = 0
        while not self.stop.is_set():
            try:
                handled = self._group.process(self._export, count=self._count, block_ms=self._block_ms)
            except ExportFailedError as error:
                failures += 1
                self.stats.failed_attempts += 1
                delay = min(FIRST_BACKOFF_S * 2 ** (failures - 1), self._max_backoff_s)
                logger.warning("%s; they stay pending, next attempt in %.1f s", error, delay)
                self.stop.wait(delay)
                continue
            except Exception as error:
                if not _is_redis_error(error):
                    raise
                failures += 1
                delay = min(FIRST_BACKOFF_S * 2 ** (failures - 1), self._max_backoff_s)
                logger.warning(
                    "Reading the stream failed: %s; next attempt in %.1f s", describe(error), delay
                )
                self.stop.wait(delay)
                continue
            failures = 0
            if handled == 0 and exit_when_idle:
                break
        return self.stats


def _is_redis_error(error: BaseException) -> bool:
    from redis.exceptions import AuthenticationError, RedisError  # noqa: PLC0415

    # A wrong password does not heal by waiting.
    return isinstance(error, RedisError | OSError) and not isinstance(error, AuthenticationError)
