"""The encoder's fast paths write exactly what the plain, general path writes (no server).

``reference_encode`` below is the straightforward encoder: every attribute through the sanitizer,
the stdlib's ``json.JSONEncoder``, one record at a time. ``BatchEncoder`` must produce the same
entries, byte for byte and in the same field order, for any record.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry._logs import SeverityNumber
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import TraceFlags
from redis.connection import Encoder, PythonRespSerializer

from otel_redis_exporter._encode import flat as _encoding
from otel_redis_exporter._encode.compiled import (
    COMPILED,
    SDK_NEXT_MAJOR,
    SDK_OLDEST,
    load_compiled,
    noting_fallbacks,
    sdk_version,
)
from otel_redis_exporter._encode.flat import (
    BODY_TYPE_JSON,
    PLACEHOLDER_BODY,
    SCHEMA_VERSION,
    UNBOUNDED,
    BatchEncoder,
    Fields,
    Sanitizer,
    encode_attributes,
    safe_text,
    str_of,
)
from otel_redis_exporter._fast import speedups
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


# --- the compiled encoder (C) against the pure one ---------------------------------------------

compiled_only = pytest.mark.skipif(COMPILED is None, reason="the compiled encoder is not active")


class Text(str):
    """A str subclass: its own __str__ is never what gets written."""

    def __str__(self) -> str:
        return "subclass"


class Number(int):
    """An int subclass."""


class Unprintable:
    """A value whose str() and == raise; hashed like a tag, so a map key is compared."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:  # hypothesis prints the examples it draws
        return "Unprintable()"

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")

    def __hash__(self) -> int:
        return hash("$str")


class Unreadable(list[Any]):
    """A list whose iterator raises."""

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("cannot iterate")


# Every character, lone surrogates and controls included; strings near the limits below.
any_text = st.text(st.characters(exclude_categories=()), max_size=12) | st.sampled_from(
    ["\ud800", "a\udfffb", "\x00\x1f\x7f", '"\\/\b\f\n\r\t', "\u2028\ufeff", "\U0001f600\U00010000", "x" * 11]
)
huge_ints = st.integers(min_value=-(2**80), max_value=2**80) | st.sampled_from(
    [2**63, -(2**63) - 1, 2**64, 2**14000 - 1, 2**14000, -(2**14000), 10**4214, 10**4215, 10**4300, 10**5000]
)
hostile_scalars = (
    any_text
    | huge_ints
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([-0.0, 1e16, 1e-4, 5e-324, 1.7976931348623157e308])
    | st.binary(max_size=8)
    | st.builds(Text, any_text)
    | st.builds(Number, huge_ints)
    | st.just(Unprintable())
)
hostile_values = (
    hostile_scalars | st.lists(hostile_scalars, max_size=5) | st.tuples(hostile_scalars, any_text)
)
hostile_maps = st.dictionaries(
    any_text,
    hostile_values
    | representable
    | st.builds(Unreadable, st.lists(st.integers(), max_size=2))
    | st.dictionaries(any_text | st.just("$str"), hostile_scalars, max_size=2),
    max_size=6,
) | st.dictionaries(
    st.integers() | st.builds(Text, any_text) | st.just(Unprintable()), hostile_scalars, max_size=2
)
# Ids and flags of every kind: valid, zero, negative, too long, not ints at all.
ids = st.none() | st.integers(min_value=-5, max_value=2**130) | st.sampled_from([2**128 - 1, 2**64, 1.0, "1"])
flags = (
    st.none()
    | st.integers(min_value=-2, max_value=300)
    | st.builds(TraceFlags, st.integers(0, 255))
    | st.just(1.5)
)
timestamps = (
    st.none() | st.integers(min_value=-5, max_value=2**70) | st.sampled_from([0, True, 1.5, 10**5000])
)


@st.composite
def hostile_records(draw: st.DrawFn) -> ReadableLogRecord:
    """A record with anything in any field the encoders read."""
    record = draw(records())
    log = record.log_record
    if draw(st.booleans()):
        wrapper = draw(st.sampled_from(["dict", "bounded", "bounded-mutable"]))
        attributes = draw(hostile_maps)
        if wrapper == "dict":
            log.attributes = attributes
        else:
            # Filled past the SDK's cleaning, which would refuse (or call) the hostile values.
            bounded = BoundedAttributes(immutable=False)
            bounded._dict.update(attributes)
            bounded._immutable = wrapper == "bounded"
            log.attributes = bounded
    log.body = draw(st.none() | any_text | st.text(max_size=70) | hostile_values | representable)
    log.timestamp = draw(timestamps)
    log.observed_timestamp = draw(timestamps)
    log.trace_id, log.span_id, log.trace_flags = draw(ids), draw(ids), draw(flags)
    log.severity_text = draw(st.none() | any_text | st.builds(Text, any_text) | st.just(7))
    log.event_name = draw(st.none() | any_text | st.just(Unprintable()))
    if isinstance(log.attributes, BoundedAttributes) and draw(st.booleans()):
        log.attributes.dropped = draw(st.integers(min_value=0, max_value=2**70))
    return record


@compiled_only
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.lists(hostile_records() | records(), min_size=1, max_size=6),
    limit=limits,
    max_entry_bytes=st.sampled_from([UNBOUNDED, 0, 8, 40, 120, 600]),
    uid_prefix=st.none() | st.just("01J0000000000000000000"),
)
def test_compiled_encoder_writes_the_pure_encoders_entries(
    batch: list[ReadableLogRecord], limit: int, max_entry_bytes: int, uid_prefix: str | None
) -> None:
    """Any batch, hostile values and budgets included, gives the pure encoder's entries to the byte."""
    template = StreamKeyTemplate.parse("logs:{service.name}")
    pure = BatchEncoder(template, limit, max_entry_bytes).encode(batch, 42, uid_prefix)
    fast = BatchEncoder(template, limit, max_entry_bytes, compiled=COMPILED).encode(batch, 42, uid_prefix)
    assert as_items(fast) == as_items(pure)


# Floats as measurements are: short decimals of every size, and any double at all.
short_decimals = st.builds(
    lambda digits, places: digits / 10**places,
    st.integers(min_value=-(10**17), max_value=10**17),
    st.integers(min_value=0, max_value=20),
)
float_edges = st.sampled_from(
    [1e-4, 9.999999999999999e-05, 1e16, 9.999999999999998e15, 2**53 - 1.0, 2.0**53, 0.1 + 0.2, -0.0, 5e-324]
)


@compiled_only
@settings(max_examples=300, deadline=None)
@given(floats=st.lists(st.floats(allow_nan=False) | short_decimals | float_edges, min_size=1, max_size=20))
def test_compiled_floats_are_written_as_repr_writes_them(floats: list[float]) -> None:
    """Floats in attributes, alone and in lists, are the pure encoder's text: float.__repr__'s digits."""
    batch = [make_record("f", {"f": value, "l": [value, -value]}) for value in floats]
    template = StreamKeyTemplate.parse("logs")
    fast = BatchEncoder(template, 100, compiled=COMPILED).encode(batch, 1)
    assert as_items(fast) == as_items(BatchEncoder(template, 100).encode(batch, 1))


@compiled_only
def test_common_records_are_encoded_without_the_pure_path() -> None:
    """Records of the usual shapes (SDK attributes, a span, unicode, big ints) never fall back."""
    bounded = BoundedAttributes(
        attributes={"s": "caf\u00e9", "i": 2**80, "f": 1e16, "b": True, "t": ("a", "\U0001f600"), "n": None}
    )
    batch = [
        make_record("order placed", {"http.status_code": 200, "ok": True}, context=span_context()),
        make_record("\u00fcber \U0001f600", None, timestamp=None, event_name="checkout.done"),
        make_record("", bounded, severity=None),
        make_record(None, {"x": [1.5, -0.0, "y"]}),
    ]
    handed_back: list[int] = []
    template = StreamKeyTemplate.parse("logs:{service.name}")
    compiled = noting_fallbacks(COMPILED, handed_back)
    fast = BatchEncoder(template, 65536, compiled=compiled).encode(batch, 1, "0" * 22)
    assert handed_back == []
    assert as_items(fast) == as_items(BatchEncoder(template, 65536).encode(batch, 1, "0" * 22))


@compiled_only
@pytest.mark.parametrize(
    ("body", "attributes"),
    [
        (Unprintable(), None),
        ("raising str", {"v": Unprintable()}),
        ("raising iter", {"v": Unreadable([1])}),
        ("raising eq", {Unprintable(): 1}),
        (Unreadable([1, 2]), {"n": 10**5000}),
        ("str subclass", {"v": Text("x")}),
        ("cut", {"v": "x" * 100}),
    ],
)
def test_a_record_the_compiled_encoder_does_not_take_falls_back_alone(body: Any, attributes: Any) -> None:
    """A record with a value it does not write is left to the pure path, and only that record."""
    batch = [make_record("before"), make_record(body, attributes), make_record("after")]
    handed_back: list[int] = []
    template = StreamKeyTemplate.parse("logs:{service.name}")
    compiled = noting_fallbacks(COMPILED, handed_back)
    fast = BatchEncoder(template, 64, compiled=compiled).encode(batch, 1, "0" * 22)
    assert handed_back == [1]
    assert as_items(fast) == as_items(BatchEncoder(template, 64).encode(batch, 1, "0" * 22))


@compiled_only
def test_a_record_whose_fields_raise_falls_back_to_the_placeholder() -> None:
    """A record whose attributes raise on read gets the pure path's placeholder; its neighbours are intact."""

    class Exploding:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(name)

    good = make_record("good")
    batch: list[Any] = [good, Exploding(), good]
    template = StreamKeyTemplate.parse("logs:{service.name}")
    fast = BatchEncoder(template, 64, compiled=COMPILED).encode(batch, 1)
    assert as_items(fast) == as_items(BatchEncoder(template, 64).encode(batch, 1))
    assert [entry["body"] for entries in fast.values() for entry in entries] == [
        "good",
        "good",
        PLACEHOLDER_BODY,
    ]


@compiled_only
@pytest.mark.parametrize("version", [(1, 38), (2, 0), None], ids=["older", "next major", "unreadable"])
def test_an_sdk_it_was_not_written_for_leaves_encoding_to_pure_python(
    version: tuple[int, int] | None, caplog: pytest.LogCaptureFixture
) -> None:
    """An opentelemetry-sdk release outside the supported ones turns the C encoder off, saying why once."""
    with caplog.at_level(logging.DEBUG, logger="otel_redis_exporter"):
        assert load_compiled(speedups, version=lambda: version) is None
    [message] = [record.getMessage() for record in caplog.records]
    assert message.startswith("The compiled encoder is not used")
    assert "opentelemetry-sdk" in message


@compiled_only
def test_the_installed_sdk_takes_the_compiled_encoder() -> None:
    """The SDK this runs with (the newest in `tests`, the oldest in `oldest`) passes the import checks."""
    assert SDK_OLDEST <= (sdk_version() or (0, 0)) < (SDK_NEXT_MAJOR, 0)
    assert load_compiled(speedups) is not None
