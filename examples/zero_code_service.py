"""An HTTP service with no OpenTelemetry setup of its own: ``opentelemetry-instrument`` wires it.

Each request is a SERVER span (OpenTelemetry's WSGI middleware around a stdlib ``wsgiref``
app); everything the request logs with stdlib ``logging`` carries that span's trace id and lands
in a Redis Stream through ``RedisLogExporter``, configured by environment variables only.

    pip install "otel-redis-exporter[hiredis,logging]" opentelemetry-distro opentelemetry-instrumentation-wsgi

    OTEL_SERVICE_NAME=shop OTEL_LOGS_EXPORTER=redis \\
    OTEL_TRACES_EXPORTER=none OTEL_METRICS_EXPORTER=none \\
    OTEL_EXPORTER_REDIS_URL=redis://localhost:6379/0 \\
        opentelemetry-instrument python examples/zero_code_service.py

Then, in another shell:

    curl -s localhost:8000/order/7     # {"order": 7, "status": "accepted", "trace_id": "4bf9..."}
    curl -s localhost:8000/order/8     # every 4th order fails and logs an exception
    redis-cli XRANGE otel:logs - +     # the requests' logs, each with its trace_id

``SERVICE_HOST`` and ``SERVICE_PORT`` change the address (default 127.0.0.1:8000). Ctrl-C or
SIGTERM stops the service; queued log records are flushed to Redis before it exits.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from opentelemetry import trace
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

StartResponse = Callable[..., Any]

log = logging.getLogger("shop.orders")
log.setLevel(logging.INFO)


def orders(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """GET /order/<n>: logs inside the request's span and answers with the span's trace id."""
    trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
    path = environ.get("PATH_INFO", "")
    if not path.startswith("/order/") or not path.rsplit("/", 1)[-1].isdigit():
        return reply(start_response, "404 Not Found", {"error": "try /order/<n>", "trace_id": trace_id})
    order = int(path.rsplit("/", 1)[-1])
    log.info(
        "received order %d", order, extra={"order.id": order, "client.address": environ.get("REMOTE_ADDR")}
    )
    try:
        if order % 4 == 0:
            raise ValueError(f"order {order} has no items")
        total = round(order * 4.2, 2)
        log.info("charged %.2f EUR", total, extra={"order.id": order, "order.total": total})
        return reply(start_response, "200 OK", {"order": order, "status": "accepted", "trace_id": trace_id})
    except ValueError:
        log.exception("order %d rejected", order, extra={"order.id": order})
        return reply(start_response, "422 Unprocessable Entity", {"order": order, "trace_id": trace_id})


def reply(start_response: StartResponse, status: str, payload: dict[str, Any]) -> list[bytes]:
    """A JSON response."""
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class QuietHandler(WSGIRequestHandler):
    """No access log on stderr: the request's own logs are in Redis."""

    def log_message(self, format: str, *args: Any) -> None:
        """Drop the access line."""


def main() -> None:
    """Serve until SIGTERM or Ctrl-C; then return normally, so exit handlers flush the logs."""
    host = os.environ.get("SERVICE_HOST", "127.0.0.1")
    port = int(os.environ.get("SERVICE_PORT", "8000"))
    # The middleware makes each request a SERVER span, continuing a W3C traceparent if sent.
    with make_server(host, port, OpenTelemetryMiddleware(orders), handler_class=QuietHandler) as server:

        def stop(signum: int, frame: FrameType | None) -> None:
            # shutdown() waits for serve_forever, which runs on this very thread: ask from another.
            threading.Thread(target=server.shutdown, name="shutdown").start()

        # Both signals stop the loop between requests (wsgiref would swallow a KeyboardInterrupt
        # raised inside one).
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        print(f"listening on http://{host}:{server.server_port}", flush=True)
        server.serve_forever()
    print("stopped", file=sys.stderr)


if __name__ == "__main__":
    main()
