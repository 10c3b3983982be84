"""The OTLP entry encodings, the per-trace index commands and their options (pure, no server)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

import otel_redis_exporter
from otel_redis_exporter import OtlpNotInstalledError, RedisLogExporter, decode_fields
from otel_redis_exporter._config import resolve_config
from otel_redis_exporter._encode.otlp import OtlpEncoder, resource_logs_from_json
from otel_redis_exporter._index import TraceIndex, index_base, index_key, parse_member
from otel_redis_exporter._keys import StreamKeyTemplate

from records import SPAN_ID, TRACE_ID, make_record, span_context
from test_encoding import same

TRACE = f"{TRACE_ID:032x}"


def encode(record: Any, encoding: str, template: str = "otel:logs") -> tuple[str, dict[str, Any]]:
    """One record through the OTLP encoder: its key and entry fields."""
    [(key, [fields])] = OtlpEncoder(StreamKeyTemplate.parse(template), encoding).encode([record], 0).items()
    return key, dict(fields)


def test_proto_payload_is_the_standard_resource_logs() -> None:
    """otlp_proto: the payload parses as ResourceLogs equal to what the OpenTelemetry encoder makes."""
    record = make_record("hello", {"n": 1}, context=span_context())
    _, fields = encode(record, "otlp_proto")
    assert (fields["v"], fields["encoding"], fields["trace_id"]) == ("1", "otlp_proto", TRACE)
    assert isinstance(fields["payload"], bytes)
    assert ResourceLogs.FromString(fields["payload"]) == encode_logs([record]).resource_logs[0]


def test_json_payload_follows_the_otlp_json_rules() -> None:
    """otlp_json: camelCase names, hex ids, integer enums, 64-bit integers as strings."""
    record = make_record("hello", {"n": 2**40}, context=span_context())
    _, fields = encode(record, "otlp_json")
    document = json.loads(fields["payload"])
    [log] = document["scopeLogs"][0]["logRecords"]
    assert log["traceId"] == TRACE
    assert log["spanId"] == f"{SPAN_ID:016x}"
    assert log["severityNumber"] == 9
    assert log["timeUnixNano"] == "1700000000000000001"
    assert log["attributes"] == [{"key": "n", "value": {"intValue": str(2**40)}}]
    assert {"key": "service.name", "value": {"stringValue": "checkout"}} in document["resource"]["attributes"]
    assert resource_logs_from_json(fields["payload"]) == encode_logs([record]).resource_logs[0]


@pytest.mark.parametrize("encoding", ["otlp_json", "otlp_proto"])
def test_templated_key_and_missing_trace_context(encoding: str) -> None:
    """The key comes from the template as in the flat encoding; no trace context, no trace_id field."""
    key, fields = encode(
        make_record(resource=Resource({"service.name": "api"})), encoding, "logs:{service.name}"
    )
    assert key == "logs:api"
    assert "trace_id" not in fields
    entry = decode_fields(fields)
    assert (entry.trace_id, entry.span_id, entry.trace_flags) == (None, None, None)


@pytest.mark.parametrize("encoding", ["otlp_json", "otlp_proto"])
def test_values_otlp_cannot_hold_are_kept_as_strings(encoding: str) -> None:
    """Huge ints, objects and lone surrogates do not cost the record: they become strings."""
    record = make_record({"big": 2**70, "obj": object()}, {"big": -(2**64), "bad": "a\ud800b", "t": (1, 2)})
    _, fields = encode(record, encoding)
    entry = decode_fields(fields)
    assert entry.body["big"] == str(2**70)
    assert entry.body["obj"].startswith("<object object")
    assert entry.attributes == {"big": str(-(2**64)), "bad": "a\\ud800b", "t": [1, 2]}


@pytest.mark.parametrize("encoding", ["otlp_json", "otlp_proto"])
def test_unset_timestamp_schema_urls_and_dropped_count_survive(encoding: str) -> None:
    """An unset timestamp stays unset; schema URLs and the dropped-attributes count come back."""
    record = make_record(
        {"a": 1},
        timestamp=None,
        observed_timestamp=7,
        resource=Resource({"service.name": "a"}, "https://opentelemetry.io/schemas/1.26.0"),
        scope=InstrumentationScope("lib", "1", "https://example.com/scope/1"),
    )
    record.log_record.attributes = BoundedAttributes(maxlen=1, attributes={"a": 1, "b": 2})
    _, fields = encode(record, encoding)
    entry = decode_fields(fields)
    assert (entry.timestamp, entry.timestamp_set, entry.own_timestamp) == (7, False, 0)
    assert entry.resource_schema_url == "https://opentelemetry.io/schemas/1.26.0"
    assert entry.scope_schema_url == "https://example.com/scope/1"
    assert entry.dropped_attributes_count == 1


def test_decode_says_which_encodings_it_knows() -> None:
    """An unknown encoding is a clear ValueError."""
    with pytest.raises(ValueError, match="unknown entry encoding 'avro'"):
        decode_fields({"v": "1", "encoding": "avro", "payload": "x"})


otlp_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(max_size=16),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(
    body=otlp_values,
    attributes=st.dictionaries(st.text(max_size=8), otlp_values, max_size=4),
    encoding=st.sampled_from(["otlp_json", "otlp_proto"]),
)
def test_otlp_round_trip(body: Any, attributes: dict[str, Any], encoding: str) -> None:
    """Every value OTLP can represent comes back the same from both OTLP encodings."""
    _, fields = encode(make_record(body, attributes, context=span_context()), encoding)
    entry = decode_fields(fields)
    assert same(entry.body, body)
    assert same(dict(entry.attributes), attributes)
    assert entry.trace_id == TRACE


def test_missing_extra_is_a_clear_error_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the otlp extra, an OTLP encoding fails in the constructor naming the extra; flat works."""
    monkeypatch.delitem(sys.modules, "otel_redis_exporter._encode.otlp", raising=False)
    monkeypatch.delattr(otel_redis_exporter._encode, "otlp", raising=False)
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.common._log_encoder", None)
    with pytest.raises(OtlpNotInstalledError, match=r"otel-redis-exporter\[otlp\]"):
        RedisLogExporter(url="redis://127.0.0.1:1/0", encoding="otlp_proto")
    RedisLogExporter(url="redis://127.0.0.1:1/0").shutdown()


# ---------------------------------------------------------------------------- options


def test_encoding_and_index_options_resolve() -> None:
    """argument > environment > default for encoding and trace_index_ttl; 0 turns the index off."""
    env = {"OTEL_EXPORTER_REDIS_LOGS_ENCODING": "OTLP_JSON", "OTEL_EXPORTER_REDIS_LOGS_TRACE_INDEX_TTL": "90"}
    assert resolve_config(environ={}).encoding == "flat"
    assert resolve_config(environ={}).trace_index_ttl_s is None
    assert resolve_config(environ=env).encoding == "otlp_json"
    assert resolve_config(environ=env).trace_index_ttl_s == 90.0
    assert resolve_config(encoding="otlp_proto", trace_index_ttl=0, environ=env).trace_index_ttl_s is None
    assert resolve_config(encoding="otlp_proto", environ=env).encoding == "otlp_proto"


def test_bad_encoding_or_ttl_argument_raises_and_bad_env_warns(caplog: pytest.LogCaptureFixture) -> None:
    """A wrong argument names the allowed values; a wrong environment value falls back with a warning."""
    with pytest.raises(ValueError, match="flat, otlp_json, otlp_proto"):
        resolve_config(encoding="xml", environ={})
    with pytest.raises(ValueError, match="trace_index_ttl"):
        resolve_config(trace_index_ttl=-1, environ={})
    env = {"OTEL_EXPORTER_REDIS_LOGS_ENCODING": "xml", "OTEL_EXPORTER_REDIS_LOGS_TRACE_INDEX_TTL": "soon"}
    with caplog.at_level(logging.WARNING):
        config = resolve_config(environ=env)
    assert (config.encoding, config.trace_index_ttl_s) == ("flat", None)
    assert "OTEL_EXPORTER_REDIS_LOGS_ENCODING" in caplog.text
    assert "OTEL_EXPORTER_REDIS_LOGS_TRACE_INDEX_TTL" in caplog.text


# ---------------------------------------------------------------------------- index commands


def test_index_base_follows_the_stream_setting() -> None:
    """Fixed key: the key itself; template: its literal prefix; a leading placeholder: otel."""
    assert index_base("otel:logs") == "otel:logs"
    assert index_base("logs:{service.name}") == "logs"
    assert index_base("app:{service.name}:{deployment.environment}") == "app"
    assert index_base("{service.name}") == "otel"
    assert index_key("logs", TRACE) == f"logs:trace:{TRACE}"


def test_index_commands_map_positions_to_traces() -> None:
    """Ids match entries by position across keys; RPUSH + PEXPIRE per trace; unwritten entries skipped."""
    other = "0af7651916cd43dd8448eb211c80319c"
    entries = {
        "logs:api": [{"trace_id": TRACE}, {"body": "no trace"}, {"trace_id": other}],
        "logs:db": [{"trace_id": TRACE}, {"trace_id": TRACE}],
    }
    ids = {0: "1-0", 1: "1-1", 2: "1-2", 3: "2-0"}  # position 4 was not written
    commands = TraceIndex("logs", 1.5).commands(entries, ids)
    assert commands == [
        ("RPUSH", f"logs:trace:{TRACE}", "1-0 logs:api", "2-0 logs:db"),
        ("PEXPIRE", f"logs:trace:{TRACE}", "1500"),
        ("RPUSH", f"logs:trace:{other}", "1-2 logs:api"),
        ("PEXPIRE", f"logs:trace:{other}", "1500"),
    ]
    assert parse_member(b"2-0 logs:db") == ("logs:db", "2-0")
    assert parse_member("3-1 key with spaces") == ("key with spaces", "3-1")
