"""Builders for SDK log records, shared by the tests (no servers here)."""

from __future__ import annotations

from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

TRACE_ID = 0x5B8AA5A2D2C872E8321CF37308D69DF2
SPAN_ID = 0x051581BF3CB55C13
RESOURCE = Resource.create({"service.name": "checkout", "deployment.environment": "test"})
SCOPE = InstrumentationScope("app.orders", "1.2.3")


def span_context(trace_id: int = TRACE_ID, span_id: int = SPAN_ID) -> Context:
    """A context whose current span has these ids (sampled)."""
    ctx = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return set_span_in_context(NonRecordingSpan(ctx))


def make_record(
    body: Any = "hello",
    attributes: dict[str, Any] | None = None,
    *,
    resource: Resource = RESOURCE,
    scope: InstrumentationScope | None = SCOPE,
    severity: SeverityNumber | None = SeverityNumber.INFO,
    context: Context | None = None,
    timestamp: int | None = 1_700_000_000_000_000_001,
    observed_timestamp: int | None = 1_700_000_000_000_000_002,
    event_name: str | None = None,
) -> ReadableLogRecord:
    """A ReadableLogRecord as the batch processor hands it to an exporter."""
    record = LogRecord(
        timestamp=timestamp,
        observed_timestamp=observed_timestamp,
        context=context,
        severity_number=severity,
        severity_text=severity.name if severity is not None else None,
        body=body,
        attributes=attributes,
        event_name=event_name,
    )
    return ReadableLogRecord(log_record=record, resource=resource, instrumentation_scope=scope)
