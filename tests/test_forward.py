"""`otel-redis forward` against a real OTLP/HTTP receiver on 127.0.0.1, started and stopped by the test."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from otel_redis_exporter import LogEntry, RedisLogExporter
from otel_redis_exporter._forward import TRUNCATED_ATTRIBUTE, to_records
from otel_redis_exporter._otlp import any_value, key_values

from records import SPAN_ID, TRACE_ID, make_record, span_context
from servers import free_port, wait_until

GROUP = "otlp"


class Receiver:
    """A minimal OTLP/HTTP logs endpoint: decodes every ExportLogsServiceRequest it is sent."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.records: list[dict[str, Any]] = []
        self.messages: list[ExportLogsServiceRequest] = []
        self.requests = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/logs"

    def bodies(self) -> list[Any]:
        with self._lock:
            return [record["body"] for record in self.records]

    def _receive(self, payload: bytes) -> None:
        request = ExportLogsServiceRequest.FromString(payload)
        with self._lock:
            self.requests += 1
            self.messages.append(request)
            for resource_logs in request.resource_logs:
                resource = key_values(resource_logs.resource.attributes)
                for scope_logs in resource_logs.scope_logs:
                    for log in scope_logs.log_records:
                        self.records.append(
                            {
                                "body": any_value(log.body),
                                "attributes": key_values(log.attributes),
                                "resource": resource,
                                "scope": scope_logs.scope.name,
                                "severity_number": log.severity_number,
                                "trace_id": log.trace_id.hex(),
                                "span_id": log.span_id.hex(),
                                "time_unix_nano": log.time_unix_nano,
                            }
                        )

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    payload = gzip.decompress(payload)
                elif encoding == "deflate":
                    payload = zlib.decompress(payload)
                receiver._receive(payload)
                reply = ExportLogsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver on a free loopback port, not yet started."""
    made = Receiver(free_port())
    yield made
    made.stop()


def forward_command(url: str, endpoint: str, *extra: str) -> list[str]:
    """`otel-redis forward` with short timeouts and backoff, so outages are noticed in tenths of seconds."""
    script = Path(sys.executable).parent / "otel-redis"
    return [
        str(script),
        "forward",
        "--url",
        url,
        "--endpoint",
        endpoint,
        "--group",
        GROUP,
        "--consumer",
        "fwd-1",
        "--export-timeout",
        "1",
        "--max-backoff",
        "0.3",
        "--block-ms",
        "100",
        *extra,
    ]


def env() -> dict[str, str]:
    """The environment without the exporter's variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_EXPORTER")}


def export(url: str, records: list[Any]) -> None:
    """Write records through the exporter, asserting success."""
    exporter = RedisLogExporter(url=url)
    try:
        assert exporter.export(records) is LogRecordExportResult.SUCCESS
    finally:
        exporter.shutdown()


def pending(client: redis.Redis) -> int:
    """Entries delivered to the group's consumers and not acknowledged."""
    return int(client.xpending("otel:logs", GROUP)["pending"])


def test_forward_delivers_every_record_with_its_content(
    redis_url: str, redis_client: redis.Redis, receiver: Receiver
) -> None:
    """Every record arrives with body, attributes, resource, severity and ids; all are acknowledged."""
    receiver.start()
    records = [
        make_record(
            f"r{i}", {"i": i, "nested": {"k": [1, 2]}}, context=span_context(), severity=SeverityNumber.WARN
        )
        for i in range(25)
    ]
    export(redis_url, records)
    result = subprocess.run(
        forward_command(redis_url, receiver.endpoint, "--exit-when-idle", "--batch-size", "10"),
        capture_output=True,
        text=True,
        timeout=60,
        env=env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "forwarded 25 log records" in result.stderr
    assert receiver.bodies() == [f"r{i}" for i in range(25)]
    assert receiver.requests == 3
    first = receiver.records[0]
    assert first["attributes"] == {"i": 0, "nested": {"k": [1, 2]}}
    assert first["resource"]["service.name"] == "checkout"
    assert first["scope"] == "app.orders"
    assert first["severity_number"] == 13
    assert (first["trace_id"], first["span_id"]) == (f"{TRACE_ID:032x}", f"{SPAN_ID:016x}")
    assert first["time_unix_nano"] == 1_700_000_000_000_000_001
    assert pending(redis_client) == 0


def test_receiver_down_keeps_entries_pending_until_it_is_back(
    redis_url: str, redis_client: redis.Redis, receiver: Receiver
) -> None:
    """Endpoint down: nothing acknowledged, entries stay pending; once it is up, everything arrives."""
    process = subprocess.Popen(
        forward_command(redis_url, receiver.endpoint, "--batch-size", "50"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    try:
        export(redis_url, [make_record(f"r{i}") for i in range(40)])
        # Delivered to the forwarder (so read from the stream) but not acknowledged:
        wait_until(lambda: pending(redis_client) == 40, timeout=20, what="entries pending in the group")
        wait_until(
            lambda: redis_client.xpending_range("otel:logs", GROUP, "-", "+", 1)[0]["times_delivered"] >= 2,
            timeout=20,
            what="a second delivery attempt while the receiver is down",
        )
        assert [c["name"] for c in redis_client.xinfo_consumers("otel:logs", GROUP)] == ["fwd-1"]
        assert pending(redis_client) == 40
        assert receiver.bodies() == []
        receiver.start()
        export(redis_url, [make_record("after restart")])
        expected = [f"r{i}" for i in range(40)] + ["after restart"]
        wait_until(
            lambda: sorted(set(receiver.bodies())) == sorted(expected), timeout=30, what="every record"
        )
        wait_until(lambda: pending(redis_client) == 0, timeout=10, what="everything acknowledged")
        assert receiver.bodies()[:40] == expected[:40]  # in stream order
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "they stay pending" in stderr
    assert "Traceback" not in stderr


def test_a_second_forwarder_takes_over_a_dead_ones_entries(
    redis_url: str, redis_client: redis.Redis, receiver: Receiver
) -> None:
    """Entries a crashed forwarder left pending are claimed by another consumer after the idle time."""
    redis_client.xgroup_create("otel:logs", GROUP, id="0", mkstream=True)
    export(redis_url, [make_record(f"r{i}") for i in range(5)])
    redis_client.xreadgroup(GROUP, "crashed", {"otel:logs": ">"}, count=5)  # ... and never acknowledged
    receiver.start()
    command = forward_command(redis_url, receiver.endpoint, "--exit-when-idle", "--claim-idle", "0.2")
    wait_until(
        lambda: (
            subprocess.run(command, capture_output=True, timeout=60, env=env(), check=False).returncode == 0
            and sorted(receiver.bodies()) == [f"r{i}" for i in range(5)]
        ),
        timeout=30,
        what="the crashed consumer's entries forwarded",
    )
    assert pending(redis_client) == 0


def test_forward_without_endpoint_or_group_is_a_usage_error(redis_url: str) -> None:
    """--endpoint and --group are required: exit 2."""
    script = Path(sys.executable).parent / "otel-redis"
    result = subprocess.run(
        [str(script), "forward", "--url", redis_url], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert "--endpoint" in result.stderr


def test_entries_become_sdk_records_with_their_types() -> None:
    """to_records: the SDK record carries the entry's values, trace context and resource."""
    entry = LogEntry(
        timestamp=5,
        observed_timestamp=6,
        severity_number=17,
        severity_text="ERROR",
        body={"b": b"\x00", "big": 2**70},
        trace_id=f"{TRACE_ID:032x}",
        span_id=f"{SPAN_ID:016x}",
        trace_flags=1,
        scope_name="app",
        scope_version="1",
        resource={"service.name": "api"},
        attributes={"k": [1, 2]},
        event_name="ev",
    )
    [record] = to_records([entry])
    log = record.log_record
    assert (log.timestamp, log.observed_timestamp, log.trace_id, log.span_id) == (5, 6, TRACE_ID, SPAN_ID)
    assert log.severity_number == SeverityNumber.ERROR
    assert log.body == {"b": b"\x00", "big": str(2**70)}
    assert dict(log.attributes or {}) == {"k": [1, 2]}
    assert record.resource == Resource({"service.name": "api"})
    assert record.instrumentation_scope is not None
    assert (record.instrumentation_scope.name, record.instrumentation_scope.version) == ("app", "1")


def test_records_keep_what_otlp_carries_besides_the_values() -> None:
    """to_records keeps an unset timestamp unset, schema URLs, the dropped count, and marks cut values."""
    entry = LogEntry(
        timestamp=6,
        observed_timestamp=6,
        timestamp_set=False,
        body="cut",
        attributes={"k": "v"},
        dropped_attributes_count=4,
        truncated=("body", "k"),
        resource={"service.name": "api"},
        resource_schema_url="https://opentelemetry.io/schemas/1.26.0",
        scope_name="lib",
        scope_schema_url="https://example.com/scope/1",
    )
    [message] = encode_logs(to_records([entry])).resource_logs
    log = message.scope_logs[0].log_records[0]
    assert (log.time_unix_nano, log.observed_time_unix_nano) == (0, 6)
    assert log.dropped_attributes_count == 4
    assert key_values(log.attributes) == {"k": "v", TRUNCATED_ATTRIBUTE: ["body", "k"]}
    assert message.schema_url == "https://opentelemetry.io/schemas/1.26.0"
    assert message.scope_logs[0].schema_url == "https://example.com/scope/1"
