"""The encoder's fast paths write exactly what the plain, general path writes (no server).

``reference_encode`` below is the straightforward encoder: every attribute through the sanitizer,
the stdlib's ``json.JSONEncoder``, one record at a time. ``BatchEncoder`` must produce the same
entries, byte for byte and in the same field order, for any record.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry._logs import SeverityNumber
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from redis.connection import Encoder, PythonRespSerializer

from otel_redis_exporter._encode import flat as _encoding
from otel_redis_exporter._encode.flat import (
    BODY_TYPE_JSON,
    SCHEMA_VERSION,
    BatchEncoder,
    Fields,
    Sanitizer,
    encode_attributes,
    safe_text,
    str_of,
)
from otel_redis_exporter._keys import StreamKeyTemplate
from otel_redis_exporter._write.attempt import pack

from records import make_record, span_context
from test_encoding import representable

_reference_dumps = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode


def reference_attributes(attributes: Any, limit: int, truncated: list[str]) -> str:
    out: dict[str, Any] = {}
    for raw_key, value in attributes.items():
        key = raw_key if type(raw_key) is str else str_of(raw_key)
        sanitizer = Sanitizer(limit)
        out[key] = sanitizer.value(value)
        if sanitizer.truncated:
            truncated.append(key)
    return _reference_dumps(out)


def reference_fields(record: ReadableLogRecord, limit: int, now_ns: int) -> Fields:
    """One record's entry, the plain way (the layout of the documented entry schema)."""
    log = record.log_record
    fields: Fields = {"v": SCHEMA_VERSION}
    observed = log.observed_timestamp or log.timestamp or now_ns
    fields["timestamp"] = str(log.timestamp or observed)
    fields["observed_timestamp"] = str(observed)
    if not log.timestamp:
        fields["timestamp_unset"] = "1"
    if log.severity_number is not None:
        fields["severity_number"] = str(log.severity_number.value)
    if log.severity_text:
        fields["severity_text"] = safe_text(log.severity_text)
    truncated: list[str] = []
    body = log.body
    if body is not None:
        if type(body) is str and len(body) > limit:
            body = body[:limit]
            truncated.append("body")
        if type(body) is str and safe_text(body) is body:
            fields["body"] = body
        else:
            sanitizer = Sanitizer(limit)
            fields["body"] = _reference_dumps(sanitizer.value(body))
            fields["body_type"] = BODY_TYPE_JSON
            if sanitizer.truncated and "body" not in truncated:
                truncated.append("body")
    if log.trace_id and log.span_id:
        fields["trace_id"] = format(log.trace_id, "032x")
        fields["span_id"] = format(log.span_id, "016x")
        fields["trace_flags"] = str(int(log.trace_flags or 0))
    if getattr(log, "event_name", None):
        fields["event_name"] = safe_text(log.event_name)
    if log.attributes:
        fields["attributes"] = reference_attributes(log.attributes, limit, truncated)
    if record.dropped_attributes:
        fields["dropped_attributes_count"] = str(record.dropped_attributes)
    if truncated:
        fields["truncated"] = _reference_dumps(truncated)
    scope = record.instrumentation_scope
    if scope is not None:
        if scope.name:
            fields["scope.name"] = safe_text(scope.name)
        if scope.version:
            fields["scope.version"] = safe_text(scope.version)
        if scope.attributes:
            fields["scope.attributes"] = reference_attributes(scope.attributes, limit, [])
        if scope.schema_url:
            fields["scope.schema_url"] = safe_text(scope.schema_url)
    resource = dict(record.resource.attributes)
    if resource.get("service.name") is not None:
        fields["service.name"] = safe_text(str_of(resource["service.name"]))
    fields["resource"] = reference_attributes(resource, limit, [])
    if record.resource.schema_url:
        fields["resource.schema_url"] = safe_text(record.resource.schema_url)
    return fields


def reference_encode(records: list[ReadableLogRecord], template: str, limit: int) -> dict[str, list[Fields]]:
    parsed = StreamKeyTemplate.parse(template)
    out: dict[str, list[Fields]] = {}
    for record in records:
        key = parsed.render(dict(record.resource.attributes))
        out.setdefault(key, []).append(reference_fields(record, limit, 42))
    return out


def as_items(entries: dict[str, list[Fields]]) -> list[tuple[str, list[list[tuple[str, str]]]]]:
    """Entries with field order made comparable."""
    return [(key, [list(fields.items()) for fields in batch]) for key, batch in entries.items()]


# Flat values take the fast path; the rest must fall back to the sanitizer and still agree.
flat_values = (
    st.text(max_size=12)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.lists(st.text(max_size=12) | st.integers() | st.floats() | st.booleans() | st.none(), max_size=4)
    | st.tuples(st.text(max_size=12), st.floats())
)
attribute_maps = st.dictionaries(st.text(max_size=8), flat_values | representable, max_size=8)
# Arbitrary objects only in plain dicts: the SDK's BoundedAttributes would expand e.g. a huge range().
odd_maps = st.dictionaries(st.text(max_size=8), flat_values | st.from_type(object), max_size=4)
bodies = st.none() | st.text(max_size=20) | representable
limits = st.sampled_from([4, 10, 65536])


@st.composite
def records(draw: st.DrawFn) -> ReadableLogRecord:
    wrapper = draw(st.sampled_from(["dict", "odd", "bounded", "bounded-mutable"]))
    attributes = draw(odd_maps if wrapper == "odd" else attribute_maps)
    packed: Any = attributes
    if wrapper.startswith("bounded"):
        packed = BoundedAttributes(
            maxlen=draw(st.sampled_from([None, 3])), attributes=attributes, immutable=wrapper == "bounded"
        )
    severity = draw(st.none() | st.sampled_from(list(SeverityNumber)))
    record = make_record(
        draw(bodies),
        None,
        severity=severity,
        context=span_context() if draw(st.booleans()) else None,
        timestamp=draw(st.none() | st.integers(min_value=1, max_value=2**63)),
        observed_timestamp=draw(st.none() | st.integers(min_value=1, max_value=2**63)),
        event_name=draw(st.none() | st.text(max_size=8)),
        resource=draw(
            st.sampled_from(
                [
                    Resource.create({"service.name": "checkout"}),
                    Resource.create({"service.name": "b\u00e9 ta", "n": 1.5}),
                    Resource({}),
                ]
            )
        ),
        scope=draw(
            st.sampled_from(
                [None, InstrumentationScope("app", "1.0"), InstrumentationScope("\u00fcber", None)]
            )
        ),
    )
    record.log_record.attributes = packed
    if severity is not None and draw(st.booleans()):
        record.log_record.severity_text = draw(st.text(max_size=6))
    return record


@settings(max_examples=150, deadline=None)
@given(batch=st.lists(records(), min_size=1, max_size=5), limit=limits)
def test_batch_encoder_matches_the_plain_encoder(batch: list[ReadableLogRecord], limit: int) -> None:
    """Any batch encodes to exactly the entries of the plain encoder, field order included."""
    template = "logs:{service.name}"
    encoded = BatchEncoder(StreamKeyTemplate.parse(template), limit).encode(batch, 42)
    assert as_items(encoded) == as_items(reference_encode(batch, template, limit))


def test_sdk_attributes_are_read_in_place_and_encoded_the_same() -> None:
    """Immutable BoundedAttributes of mixed flat types give the plain encoder's JSON."""
    attributes = BoundedAttributes(
        attributes={"s": "x", "i": 2**80, "f": 1e16, "b": True, "t": ("a", "\u00e9"), "n": -0.0}
    )
    record = make_record("body", None, context=span_context())
    record.log_record.attributes = attributes
    [(_, [fields])] = BatchEncoder(StreamKeyTemplate.parse("k"), 65536).encode([record], 0).items()
    assert (
        fields["attributes"]
        == '{"s":"x","i":1208925819614629174706176,"f":1e+16,"b":true,"t":["a","\\u00e9"],"n":-0.0}'
    )


@pytest.mark.parametrize("flags", [0, 1, 255])
def test_trace_flags_are_decimal(flags: int) -> None:
    """Trace flags are written as their decimal value whatever their size."""
    record = make_record("b", None, context=span_context())
    record.log_record.trace_flags = flags  # type: ignore[assignment]
    [(_, [fields])] = BatchEncoder(StreamKeyTemplate.parse("k"), 65536).encode([record], 0).items()
    assert fields["trace_flags"] == str(flags)


commands = st.lists(
    st.tuples(st.just("XADD"), st.text(min_size=1, max_size=8))
    .flatmap(lambda head: st.lists(st.text(max_size=30), max_size=8).map(lambda rest: (*head, *rest)))
    .map(lambda command: tuple(safe_text(arg) for arg in command)),
    min_size=1,
    max_size=6,
)


@given(batch=commands)
def test_packing_matches_redis_py(batch: list[tuple[str, ...]]) -> None:
    """The one-buffer packing (hiredis when installed) is byte for byte redis-py's pure-Python RESP."""
    serializer = PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode)
    expected = b"".join(b"".join(serializer.pack(*command)) for command in batch)
    assert pack(redis.Connection(), batch) == expected


# Values at the edges of what orjson (the `orjson` extra) writes exactly as the stdlib does.
orjson_edges = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e-4, 9.999999999999999e-05, 1e16, 9.999999999999998e15, -0.0, 0.0, 1e-05, 5e-324])
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1])
    | st.text(alphabet=st.characters(max_codepoint=0x80), max_size=6)
    | st.sampled_from(["\x7f", "\x00\x1f", "\u2028", "\ud800", "caf\u00e9", '"\\/'])
)


@settings(max_examples=300, deadline=None)
@given(
    attributes=st.dictionaries(
        st.text(max_size=4), orjson_edges | st.lists(orjson_edges, max_size=3), min_size=1, max_size=6
    )
)
def test_flat_attributes_encode_like_the_stdlib(attributes: dict[str, Any]) -> None:
    """Flat attributes, floats of every size, big ints and odd characters: the stdlib's JSON exactly."""
    truncated: list[str] = []
    assert encode_attributes(attributes, 65536, truncated) == reference_attributes(attributes, 65536, [])
    assert truncated == []


def test_orjson_is_used_when_installed() -> None:
    """With orjson importable, the encoder's orjson path is switched on (so the tests above cover it)."""
    pytest.importorskip("orjson")
    assert _encoding._fast_dumps is not None


@given(trace_id=st.integers(min_value=1, max_value=2**130), span_id=st.integers(min_value=1, max_value=2**66))
def test_ids_are_hex_as_format_writes_them(trace_id: int, span_id: int) -> None:
    """Trace and span ids are written as format(id, "032x") / "016x" would, valid or not."""
    assert _encoding._hex_ids(trace_id, span_id) == (format(trace_id, "032x"), format(span_id, "016x"))
