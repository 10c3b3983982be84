"""Fidelity through a real collector: the same records sent directly with the SDK's OTLP exporter
and sent exporter -> Redis -> forward arrive the same, field by field, in every encoding.

The collector is rotel (the `rotel` package ships its binary): it receives OTLP/HTTP on loopback
and exports OTLP/HTTP to a receiver this test runs, so both paths cross the same third-party
decoder and encoder.
"""

from __future__ import annotations

import math
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_redis_exporter import RedisLogReader
from otel_redis_exporter._encode.otlp import any_value, key_values
from otel_redis_exporter.cli.forward import TRUNCATED_ATTRIBUTE, Forwarder
from test_forward import Receiver

from records import make_record, span_context
from servers import free_port, wait_until, write_records

rotel = pytest.importorskip("rotel", reason="the fidelity test needs the rotel collector (pip install rotel)")

OTLPLogExporter = pytest.importorskip("opentelemetry.exporter.otlp.proto.http._log_exporter").OTLPLogExporter

RESOURCE = Resource({"service.name": "fidelity", "host.id": 7}, "https://opentelemetry.io/schemas/1.26.0")
SCOPE = InstrumentationScope("app.fidelity", "2.0", "https://example.com/scope/1", {"scope.attr": True})
MAX_VALUE_LENGTH = 64
BODIES: list[Any] = [
    "plain text",
    "ünïcödé ✓",
    "",
    42,
    -(2**63),
    2.5,
    math.inf,
    True,
    b"\x00\x01bytes",
    None,
    [1, "two", 3.0, False, None],
    {"map": {"nested": [1, {"deep": b"\xff"}]}, "n": 1},
]
ATTRIBUTES: list[dict[str, Any]] = [
    {},
    {"str": "v", "int": 1, "float": 0.25, "bool": False},
    {"bytes": b"\x01", "list": ["a", "b"], "ints": [1, 2], "map": {"k": {"k2": [True]}}},
    {"empty.list": [], "big": 2**62, "neg": -1.5e300},
]
SEVERITIES = [None, SeverityNumber.TRACE, SeverityNumber.INFO, SeverityNumber.WARN4, SeverityNumber.FATAL]


def fidelity_records() -> list[ReadableLogRecord]:
    """Every body and attribute type, severities, trace context or not, unset timestamps, event
    names, a record with dropped attributes; each carries its position in attribute ``seq``."""
    records = []
    for seq in range(len(BODIES) * len(ATTRIBUTES)):
        body = BODIES[seq % len(BODIES)]
        attributes = {"seq": seq, **ATTRIBUTES[seq % len(ATTRIBUTES)]}
        record = make_record(
            body,
            attributes,
            resource=RESOURCE,
            scope=SCOPE,
            severity=SEVERITIES[seq % len(SEVERITIES)],
            context=span_context(0x1000 + seq, 0x2000 + seq) if seq % 3 else None,
            timestamp=None if seq % 2 else 1_700_000_000_000_000_000 + seq,
            observed_timestamp=1_700_000_000_500_000_000 + seq,
            event_name="app.event" if seq % 5 == 0 else None,
        )
        if seq % 7 == 0:  # the SDK dropped attributes for a limit (the oldest go first)
            record.log_record.attributes = BoundedAttributes(
                maxlen=2, attributes={"a": 1, "b": 2, "c": 3, "seq": seq}, immutable=True
            )
        records.append(record)
    return records


def cut_record() -> ReadableLogRecord:
    """A record with a body and an attribute longer than ``MAX_VALUE_LENGTH``."""
    return make_record("x" * 100, {"seq": 10_000, "long": "y" * 100}, resource=RESOURCE, scope=SCOPE)


def received(receiver: Receiver) -> dict[int, dict[str, Any]]:
    """Every record the receiver got, as plain fields, by its ``seq`` attribute."""
    out: dict[int, dict[str, Any]] = {}
    for request in list(receiver.messages):
        for resource_logs in request.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                scope = scope_logs.scope
                for log in scope_logs.log_records:
                    attributes = key_values(log.attributes)
                    out[attributes["seq"]] = {
                        "resource.attributes": key_values(resource_logs.resource.attributes),
                        "resource.dropped_attributes_count": resource_logs.resource.dropped_attributes_count,
                        "resource.schema_url": resource_logs.schema_url,
                        "scope.name": scope.name,
                        "scope.version": scope.version,
                        "scope.attributes": key_values(scope.attributes),
                        "scope.schema_url": scope_logs.schema_url,
                        "time_unix_nano": log.time_unix_nano,
                        "observed_time_unix_nano": log.observed_time_unix_nano,
                        "severity_number": log.severity_number,
                        "severity_text": log.severity_text,
                        "body": any_value(log.body) if log.HasField("body") else "<unset>",
                        "attributes": attributes,
                        "dropped_attributes_count": log.dropped_attributes_count,
                        "flags": log.flags,
                        "trace_id": log.trace_id.hex(),
                        "span_id": log.span_id.hex(),
                        "event_name": getattr(log, "event_name", ""),
                    }
    return out


class Collector:
    """rotel on loopback: OTLP/HTTP in on ``port``, OTLP/HTTP out to ``export_to``."""

    def __init__(self, directory: Path, export_to: str) -> None:
        self.port = free_port()
        self.grpc_port = free_port()
        binary = Path(rotel.__file__).parent / "rotel-agent"
        self._process = subprocess.Popen(
            [
                str(binary),
                "start",
                "--otlp-http-endpoint",
                f"127.0.0.1:{self.port}",
                "--otlp-grpc-endpoint",
                f"127.0.0.1:{self.grpc_port}",
                "--exporter",
                "otlp",
                "--otlp-exporter-endpoint",
                export_to,
                "--otlp-exporter-protocol",
                "http",
                "--otlp-exporter-compression",
                "none",
                "--logs-batch-timeout",
                "50ms",
                "--pid-file",
                str(directory / "rotel.pid"),
                "--log-file",
                str(directory / "rotel.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_until(self._listening, timeout=10, what="rotel listening")

    def _listening(self) -> bool:
        if self._process.poll() is not None:
            raise AssertionError(f"rotel exited: {self._process.stderr.read()!r}")  # type: ignore[union-attr]
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/logs"

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    made = Receiver(free_port()).start()
    yield made
    made.stop()


@pytest.fixture(scope="module")
def collector(receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    made = Collector(tmp_path_factory.mktemp("rotel"), f"http://127.0.0.1:{receiver.port}")
    yield made
    made.stop()


@pytest.fixture(scope="module")
def direct(collector: Collector, receiver: Receiver) -> dict[int, dict[str, Any]]:
    """What arrives when the SDK's OTLPLogExporter sends the records straight to the collector."""
    records = fidelity_records()
    receiver.messages.clear()
    exporter = OTLPLogExporter(endpoint=collector.endpoint, timeout=10)
    try:
        assert exporter.export(records) is LogRecordExportResult.SUCCESS
    finally:
        exporter.shutdown()
    wait_until(lambda: len(received(receiver)) == len(records), timeout=10, what="every direct record")
    return received(receiver)


def through_redis(
    url: str, encoding: str, records: list[ReadableLogRecord], collector: Collector, receiver: Receiver
) -> dict[int, dict[str, Any]]:
    """Export into Redis with ``encoding``, forward to the collector, return what arrived."""
    receiver.messages.clear()
    write_records(records, url=url, encoding=encoding, max_value_length=MAX_VALUE_LENGTH)
    otlp = OTLPLogExporter(endpoint=collector.endpoint, timeout=10)
    with RedisLogReader(url=url) as reader:
        group = reader.group("fidelity", "c")
        try:
            stats = Forwarder(group, otlp, count=200, block_ms=100).run(exit_when_idle=True)
        finally:
            otlp.shutdown()
    assert stats.forwarded == len(records)
    wait_until(lambda: len(received(receiver)) == len(records), timeout=10, what="every forwarded record")
    return received(receiver)


@pytest.mark.parametrize("encoding", ["flat", "otlp_json", "otlp_proto"])
def test_forward_delivers_what_the_sdk_sends_directly(
    redis_url: str,
    encoding: str,
    direct: dict[int, dict[str, Any]],
    collector: Collector,
    receiver: Receiver,
) -> None:
    """Field by field, every record forwarded from Redis arrives as the direct OTLP export's copy."""
    records = fidelity_records()
    forwarded = through_redis(redis_url, encoding, records, collector, receiver)
    assert sorted(forwarded) == sorted(direct)
    differences = [
        f"seq {seq} {name}: direct {direct[seq][name]!r}, forwarded {forwarded[seq][name]!r}"
        for seq in sorted(direct)
        for name in direct[seq]
        if not _same(direct[seq][name], forwarded[seq][name])
    ]
    assert differences == []
    # The cases that must be covered are: unset timestamps, dropped attributes, schema URLs.
    assert any(fields["time_unix_nano"] == 0 for fields in forwarded.values())
    assert any(fields["dropped_attributes_count"] == 2 for fields in forwarded.values())
    assert {fields["scope.schema_url"] for fields in forwarded.values()} == {SCOPE.schema_url}


@pytest.mark.parametrize("encoding", ["flat", "otlp_json", "otlp_proto"])
def test_a_cut_value_arrives_marked(
    redis_url: str, encoding: str, collector: Collector, receiver: Receiver, direct: Any
) -> None:
    """A value the flat encoding cut to max_value_length arrives cut and listed in otel_redis.truncated;
    the OTLP encodings do not cut."""
    [fields] = through_redis(redis_url, encoding, [cut_record()], collector, receiver).values()
    if encoding == "flat":
        assert fields["body"] == "x" * MAX_VALUE_LENGTH
        assert fields["attributes"]["long"] == "y" * MAX_VALUE_LENGTH
        assert fields["attributes"][TRUNCATED_ATTRIBUTE] == ["body", "long"]
    else:
        assert fields["body"] == "x" * 100
        assert TRUNCATED_ATTRIBUTE not in fields["attributes"]


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    return bool(left == right)


def test_forward_over_grpc(redis_url: str, collector: Collector, receiver: Receiver, direct: Any) -> None:
    """forward --protocol grpc delivers through the collector's OTLP/gRPC receiver, field for field."""
    records = fidelity_records()
    receiver.messages.clear()
    write_records(records, url=redis_url)
    command = [str(Path(sys.executable).parent / "otel-redis"), "--url", redis_url, "forward"]
    endpoint = f"http://127.0.0.1:{collector.grpc_port}"
    result = subprocess.run(
        [*command, "--protocol", "grpc", "--endpoint", endpoint, "--group", "grpc", "--exit-when-idle"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"forwarded {len(records)} log records" in result.stderr
    wait_until(lambda: len(received(receiver)) == len(records), timeout=10, what="every record over gRPC")
    assert received(receiver) == direct
