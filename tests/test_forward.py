"""`otel-redis forward` against a real OTLP/HTTP receiver on 127.0.0.1, started and stopped by the test."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
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
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from otel_redis_exporter import LogEntry, RedisLogReader
from otel_redis_exporter._encode.otlp import any_value, key_values
from otel_redis_exporter.cli.forward import TRUNCATED_ATTRIBUTE, Forwarder, to_records
from otel_redis_exporter.cli.send import MAX_RETRY_AFTER_S, Answer, OtlpHttpSender, retry_after

from records import SPAN_ID, TRACE_ID, make_record, span_context
from servers import free_port, wait_until, write_records

GROUP = "otlp"


class Receiver:
    """A minimal OTLP/HTTP logs endpoint: decodes every ExportLogsServiceRequest it is sent.

    ``script`` holds answers to give, in order, as (status, headers); once it is empty every
    request is accepted (200). Only accepted requests count as received. ``on_request`` is
    called with each request's status and record count before the answer goes out."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.records: list[dict[str, Any]] = []
        self.messages: list[ExportLogsServiceRequest] = []
        self.requests = 0
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.on_request: Callable[[int, int], None] | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/logs"

    def bodies(self) -> list[Any]:
        with self._lock:
            return [record["body"] for record in self.records]

    def _receive(self, payload: bytes) -> tuple[int, dict[str, str]]:
        request = ExportLogsServiceRequest.FromString(payload)
        with self._lock:
            status, headers = self.script.popleft() if self.script else (200, {})
            if self.on_request is not None:
                count = sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)
                self.on_request(status, count)
            if status != 200:
                return status, headers
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
        return 200, {}

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
                status, headers = receiver._receive(payload)
                reply = ExportLogsServiceResponse().SerializeToString() if status == 200 else b"refused"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/x-protobuf" if status == 200 else "text/plain")
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


def background_forward(url: str, endpoint: str, *extra: str) -> subprocess.Popen[str]:
    """`otel-redis forward` running in the background, its stderr piped."""
    return subprocess.Popen(
        forward_command(url, endpoint, *extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )


def env() -> dict[str, str]:
    """The environment without the exporter's variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_EXPORTER")}


def export(url: str, records: list[Any]) -> None:
    """Write records through the exporter, asserting that each landed."""
    write_records(records, url=url)


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
    process = background_forward(redis_url, receiver.endpoint, "--batch-size", "50")
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
    # The forwarder claims on its first read what has been idle past --claim-idle (200 ms).
    wait_until(
        lambda: all(
            entry["time_since_delivered"] > 200
            for entry in redis_client.xpending_range("otel:logs", GROUP, "-", "+", 5)
        ),
        timeout=2,
        what="the crashed consumer's entries idle past --claim-idle",
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env(), check=False)
    assert result.returncode == 0, result.stderr
    assert sorted(receiver.bodies()) == [f"r{i}" for i in range(5)]
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


def test_refusals_are_dead_lettered_split_or_retried_and_acknowledged_only_after(
    redis_url: str, redis_client: redis.Redis, receiver: Receiver
) -> None:
    """400 dead-letters its batch, 413 splits, 503 waits for Retry-After, 200 delivers: every record
    ends delivered once or dead-lettered, and none is acknowledged before."""
    export(redis_url, [make_record(f"r{i}") for i in range(20)])
    receiver.script.extend([(400, {}), (413, {}), (503, {"Retry-After": "1"})])
    seen: list[tuple[int, int, int, float]] = []  # status, records, pending then, time
    receiver.on_request = lambda status, count: seen.append(
        (status, count, pending(redis_client), time.monotonic())
    )
    receiver.start()
    result = subprocess.run(
        forward_command(redis_url, receiver.endpoint, "--exit-when-idle", "--batch-size", "10"),
        capture_output=True,
        text=True,
        timeout=60,
        env=env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "forwarded 10 log records, dead-lettered 10" in result.stderr
    assert [(status, count) for status, count, _, _ in seen] == [(400, 10), (413, 10), (503, 5), (200, 10)]
    # Nothing was acknowledged before it was delivered or dead-lettered:
    assert [pending_then for _, _, pending_then, _ in seen] == [10, 10, 10, 10]
    assert seen[3][3] - seen[2][3] >= 0.9, "the retry came before Retry-After: 1"
    assert receiver.bodies() == [f"r{i}" for i in range(10, 20)]
    dead = redis_client.xrange("otel:logs:dead")
    assert [fields["body"] for _, fields in dead] == [f"r{i}" for i in range(10)]
    assert {fields["dead_letter.status"] for _, fields in dead} == {"400"}
    assert all("400" in fields["dead_letter.reason"] for _, fields in dead)
    assert pending(redis_client) == 0
    stats = subprocess.run(
        [str(Path(sys.executable).parent / "otel-redis"), "--url", redis_url, "stats", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env(),
        check=True,
    )
    assert [(s["stream"], s["dead_letters"]) for s in json.loads(stats.stdout)] == [("otel:logs", 10)]


@pytest.mark.parametrize(
    ("status", "delivered", "too_large", "refused"),
    [
        (200, True, False, False),
        (204, True, False, False),
        (400, False, False, True),
        (401, False, False, True),
        (413, False, True, True),
        (408, False, False, False),
        (429, False, False, False),
        (500, False, False, False),
        (503, False, False, False),
        (None, False, False, False),
    ],
)
def test_answers_are_classified(status: int | None, delivered: bool, too_large: bool, refused: bool) -> None:
    """2xx is delivered, 413 too large, other 4xx refused for good, the rest (and no answer) retried."""
    answer = Answer(status, "why")
    assert (answer.delivered, answer.too_large, answer.refused) == (delivered, too_large, refused)


def test_retry_after_reads_seconds_and_dates() -> None:
    """Retry-After in seconds or as an HTTP date becomes seconds, capped; nonsense is ignored."""
    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    assert retry_after("3", now) == 3.0
    assert retry_after("Thu, 01 Jan 2026 12:00:05 GMT", now) == 5.0
    assert retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert retry_after("999999", now) == MAX_RETRY_AFTER_S
    assert retry_after("soon", now) is None
    assert retry_after(None, now) is None


def test_sigterm_finishes_the_batch_in_flight_and_exits_0(
    redis_url: str, redis_client: redis.Redis, receiver: Receiver
) -> None:
    """SIGTERM while a request is in flight: that batch is delivered and acknowledged, exit 0."""
    export(redis_url, [make_record(f"r{i}") for i in range(10)])
    in_flight = threading.Event()

    def slow_first(status: int, count: int) -> None:
        if not in_flight.is_set():
            in_flight.set()
            time.sleep(0.5)  # the endpoint takes its time (within --export-timeout 1)

    receiver.on_request = slow_first
    receiver.start()
    process = background_forward(redis_url, receiver.endpoint, "--batch-size", "10")
    try:
        assert in_flight.wait(timeout=20), "no request reached the endpoint"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "forwarded 10 log records, dead-lettered 0" in stderr
    assert receiver.bodies() == [f"r{i}" for i in range(10)]
    assert pending(redis_client) == 0


def test_progress_lines_report_counts_pending_and_lag(
    redis_url: str, redis_client: redis.Redis, receiver: Receiver
) -> None:
    """A running forwarder prints forwarded, dead-lettered, pending and lag on stderr periodically."""
    export(redis_url, [make_record(f"r{i}") for i in range(7)])
    receiver.script.append((400, {}))
    receiver.start()
    process = background_forward(
        redis_url, receiver.endpoint, "--batch-size", "2", "--progress-interval", "0.2"
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr or ()), daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: any("forwarded 5, dead-lettered 2, pending 0, lag 0" in line for line in lines),
            timeout=20,
            what="a progress line after everything was settled",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        reader.join(timeout=10)
    assert process.returncode == 0


def test_counts_go_to_the_metrics_api(redis_url: str, receiver: Receiver) -> None:
    """Forwarded and dead-lettered records, retries, pending and lag reach a MeterProvider."""
    export(redis_url, [make_record(f"r{i}") for i in range(4)])
    receiver.script.extend([(400, {}), (503, {"Retry-After": "0"})])
    receiver.start()
    metrics = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[metrics])
    with RedisLogReader(url=redis_url) as reader:
        forwarder = Forwarder(
            reader.group(GROUP, "c"),
            OtlpHttpSender(receiver.endpoint, timeout_s=5),
            count=2,
            block_ms=100,
            meter_provider=provider,
        )
        forwarder.run(exit_when_idle=True)
        forwarder.sample()
    values: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
    data = metrics.get_metrics_data()
    assert data is not None
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    values[(metric.name, tuple(sorted(point.attributes.items())))] = point.value
    assert values[("otel_redis_exporter.forward.records", (("outcome", "forwarded"),))] == 2
    assert values[("otel_redis_exporter.forward.records", (("outcome", "dead_lettered"),))] == 2
    assert values[("otel_redis_exporter.forward.retries", ())] == 1
    assert values[("otel_redis_exporter.forward.pending", ())] == 0
    assert values[("otel_redis_exporter.forward.lag", ())] == 0


def test_records_share_a_resource_only_when_it_is_the_same() -> None:
    """Resources that differ only in a value's type (1, 1.0, True) or in a nested value stay apart."""
    resources = [{"v": 1}, {"v": 1.0}, {"v": True}, {"v": [1]}, {"v": [2]}, {"v": 1}]
    records = to_records([LogEntry(timestamp=1, observed_timestamp=1, resource=r) for r in resources])
    assert [dict(record.resource.attributes) for record in records] == [
        {"v": 1},
        {"v": 1.0},
        {"v": True},
        {"v": (1,)},
        {"v": (2,)},
        {"v": 1},
    ]
    assert [type(record.resource.attributes["v"]) for record in records[:3]] == [int, float, bool]
    assert records[0].resource is records[5].resource
