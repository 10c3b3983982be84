"""The records every benchmark case exports: real SDK log records, made the way an application makes them.

Records come from stdlib ``logging`` through the SDK's ``LoggingHandler`` inside real spans, and are
turned into ``ReadableLogRecord`` by the SDK's own ``BatchLogRecordProcessor`` (collected by its
in-memory exporter), so every case sees exactly what the batch processor hands an exporter.

The default shape: 8 attributes of mixed types (5 from ``extra=`` plus the 3 ``code.*`` attributes the
handler adds), a body of about 110 characters, a resource of 5 attributes, a span context.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, InMemoryLogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

LOGGER_NAME = "shop.checkout"
# ~110 characters once formatted.
MESSAGE = "order %s placed by customer %s: 3 items, total %.2f EUR, payment authorised via card ending %s"


def resource_for(service: str = "checkout") -> Resource:
    """A resource of 5 attributes (``Resource.create`` would add the SDK's own, so it is built as is)."""
    return Resource(
        {
            "service.name": service,
            "service.version": "2.14.1",
            "service.instance.id": "c0ffee00-1234-4cde-9abc-0123456789ab",
            "deployment.environment": "production",
            "host.name": "ip-10-0-12-34.eu-west-1.compute.internal",
        }
    )


def base_extra(index: int) -> dict[str, Any]:
    """The 5 attributes of ``extra=``: str, int, float, bool and a list of str."""
    return {
        "http.route": "/api/v2/orders/{order_id}",
        "http.response.status_code": 200 + index % 3,
        "duration_ms": 12.5 + index % 17,
        "cache.hit": index % 2 == 0,
        "feature.flags": ["new-checkout", "fast-pay"],
    }


def extra_with(count: int, index: int) -> dict[str, Any]:
    """``count`` attributes of mixed types (besides the 3 ``code.*`` ones the handler adds)."""
    kinds = (
        lambda i: f"value-{i}-{index}",
        lambda i: i * 1000 + index,
        lambda i: i + index / 7,
        lambda i: (i + index) % 2 == 0,
    )
    return {f"app.attr_{i}": kinds[i % len(kinds)](i) for i in range(count)}


def make_records(
    count: int,
    *,
    attributes: int | None = None,
    body_size: int | None = None,
    services: int = 1,
) -> list[ReadableLogRecord]:
    """``count`` records as the batch processor hands them to an exporter.

    ``attributes``: number of ``extra=`` attributes (None: the default 5 of mixed types; the handler
    always adds 3 ``code.*`` attributes, so 0 here still means 3 on the record). ``body_size``: body
    length in characters (None: ~110). ``services``: records cycle over this many resources (different
    ``service.name``), one logger provider each.
    """
    tracer = TracerProvider().get_tracer("bench")
    sinks = []
    handlers = []
    for service in range(services):
        sink = InMemoryLogRecordExporter()
        sinks.append(sink)
        provider = LoggerProvider(
            resource=resource_for(f"checkout-{service}" if services > 1 else "checkout")
        )
        provider.add_log_record_processor(
            BatchLogRecordProcessor(
                sink,
                schedule_delay_millis=3_600_000,
                max_queue_size=count + 1,
                max_export_batch_size=count + 1,
            )
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            handlers.append((provider, LoggingHandler(logger_provider=provider)))
    logger = logging.getLogger(LOGGER_NAME)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        for index in range(count):
            provider, handler = handlers[index % services]
            logger.handlers = [handler]
            extra = base_extra(index) if attributes is None else extra_with(attributes, index)
            with tracer.start_as_current_span("POST /api/v2/orders"):
                if body_size is None:
                    logger.info(
                        MESSAGE,
                        f"ord-{index:08d}",
                        f"cus-{index % 977:06d}",
                        99.5 + index,
                        "4242",
                        extra=extra,
                    )
                else:
                    logger.info("x" * body_size, extra=extra)
    finally:
        logger.handlers = []
    for provider, _ in handlers:
        provider.shutdown()
    records = [record for sink in sinks for record in sink.get_finished_logs()]
    if len(records) != count:
        raise RuntimeError(f"expected {count} records, the SDK produced {len(records)}")
    # Per-service flushes come out grouped; restore the logging order so batches mix services.
    if services > 1:
        records.sort(key=lambda record: record.log_record.observed_timestamp or 0)
    return records


def batches(records: list[ReadableLogRecord], size: int) -> list[list[ReadableLogRecord]]:
    """``records`` cut into consecutive batches of ``size`` (the last one may be shorter)."""
    return [records[start : start + size] for start in range(0, len(records), size)]


# The one-line records of the forward and shard benchmarks: INFO, fixed times, a sampled span.
REQUEST_TRACE_ID, REQUEST_SPAN_ID = 0x5B8AA5A2D2C872E8321CF37308D69DF2, 0x051581BF3CB55C13
REQUEST_RESOURCE = Resource.create({"service.name": "checkout", "deployment.environment": "test"})
REQUEST_SCOPE = InstrumentationScope("app.orders", "1.2.3")


def request_record(
    body: str, attributes: dict[str, Any], trace_id: int = REQUEST_TRACE_ID
) -> ReadableLogRecord:
    """One record as the batch processor hands it on, logged inside span ``trace_id``."""
    span = SpanContext(trace_id, REQUEST_SPAN_ID, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    record = LogRecord(
        timestamp=1_700_000_000_000_000_001,
        observed_timestamp=1_700_000_000_000_000_002,
        context=set_span_in_context(NonRecordingSpan(span)),
        severity_number=SeverityNumber.INFO,
        severity_text="INFO",
        body=body,
        attributes=attributes,
    )
    return ReadableLogRecord(
        log_record=record, resource=REQUEST_RESOURCE, instrumentation_scope=REQUEST_SCOPE
    )
