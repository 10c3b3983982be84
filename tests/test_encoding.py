"""The stream entry contract: pure encoding of SDK log records and its inverse (no server)."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_redis_exporter import decode_fields
from otel_redis_exporter._encode.flat import MAX_DEPTH, SCHEMA_VERSION, BatchEncoder, Fields
from otel_redis_exporter._encode.uid import uid_prefix
from otel_redis_exporter._keys import StreamKeyTemplate

from records import SPAN_ID, TRACE_ID, make_record, span_context

LIMIT = 4096


def encode_one(record: Any, limit: int = LIMIT, template: str = "otel:logs") -> tuple[str, Fields]:
    """Encode a one-record batch; return its key and fields."""
    [(key, [fields])] = BatchEncoder(StreamKeyTemplate.parse(template), limit).encode([record], 42).items()
    return key, fields


def assert_wire_safe(fields: Fields) -> None:
    """Every name and value is a str that Redis can take as UTF-8."""
    for name, value in fields.items():
        assert type(name) is str
        assert type(value) is str
        value.encode("utf-8")


# Values that JSON plus the documented tags bring back exactly.
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.binary(max_size=64)
)
representable = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        | st.dictionaries(st.integers() | st.booleans(), inner, max_size=3)
    ),
    max_leaves=20,
)


def same(left: Any, right: Any) -> bool:
    """Equality that treats NaN as equal to NaN and tuples as lists."""
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right


def test_every_documented_field_is_written() -> None:
    """A full record yields every field of the schema, all as str."""
    record = make_record(
        "order placed",
        {"order.id": 7, "paid": True},
        context=span_context(),
        event_name="order.placed",
    )
    key, fields = encode_one(record)
    assert key == "otel:logs"
    assert_wire_safe(fields)
    assert fields["v"] == SCHEMA_VERSION
    assert fields["timestamp"] == "1700000000000000001"
    assert fields["observed_timestamp"] == "1700000000000000002"
    assert fields["severity_number"] == "9"
    assert fields["severity_text"] == "INFO"
    assert fields["body"] == "order placed"
    assert "body_type" not in fields
    assert fields["trace_id"] == f"{TRACE_ID:032x}"
    assert fields["span_id"] == f"{SPAN_ID:016x}"
    assert fields["trace_flags"] == "1"
    assert fields["event_name"] == "order.placed"
    assert fields["scope.name"] == "app.orders"
    assert fields["scope.version"] == "1.2.3"
    assert fields["service.name"] == "checkout"
    assert json.loads(fields["resource"])["deployment.environment"] == "test"
    assert json.loads(fields["attributes"]) == {"order.id": 7, "paid": True}


def test_optional_fields_are_absent_when_unset() -> None:
    """No trace context, attributes, event name or scope means no such fields."""
    record = make_record("plain", None, scope=None, severity=None)
    _, fields = encode_one(record)
    for absent in (
        "trace_id",
        "span_id",
        "trace_flags",
        "attributes",
        "event_name",
        "scope.name",
        "severity_number",
        "severity_text",
        "dropped_attributes_count",
        "truncated",
    ):
        assert absent not in fields


def test_timestamp_falls_back_to_observed_time() -> None:
    """A record without a timestamp gets its observed timestamp, and a mark that it had none."""
    _, fields = encode_one(make_record(timestamp=None, observed_timestamp=123))
    assert fields["timestamp"] == "123"
    assert fields["observed_timestamp"] == "123"
    assert fields["timestamp_unset"] == "1"
    entry = decode_fields(fields)
    assert (entry.timestamp, entry.timestamp_set, entry.own_timestamp) == (123, False, 0)


def test_a_set_timestamp_is_the_records_own() -> None:
    """A record with a timestamp has no unset mark; its entry says the timestamp is its own."""
    _, fields = encode_one(make_record())
    assert "timestamp_unset" not in fields
    assert decode_fields(fields).own_timestamp == 1_700_000_000_000_000_001


def test_schema_urls_are_optional_fields_that_round_trip() -> None:
    """Resource and scope schema URLs get their own fields when set, and decode back."""
    record = make_record(
        resource=Resource({"service.name": "a"}, "https://opentelemetry.io/schemas/1.26.0"),
        scope=InstrumentationScope("lib", "1", "https://example.com/scope/1"),
    )
    _, fields = encode_one(record)
    assert fields["resource.schema_url"] == "https://opentelemetry.io/schemas/1.26.0"
    assert fields["scope.schema_url"] == "https://example.com/scope/1"
    entry = decode_fields(fields)
    assert entry.resource_schema_url == "https://opentelemetry.io/schemas/1.26.0"
    assert entry.scope_schema_url == "https://example.com/scope/1"
    _, plain = encode_one(make_record())
    assert "resource.schema_url" not in plain
    assert "scope.schema_url" not in plain


def test_non_string_body_is_json_and_marked() -> None:
    """A dict body is JSON-encoded, marked with body_type=json, and decodes to the same dict."""
    body = {"user": "ada", "items": [1, 2.5, None], "ok": False}
    _, fields = encode_one(make_record(body))
    assert fields["body_type"] == "json"
    assert decode_fields(fields).body == body


def test_string_that_looks_like_json_stays_a_string() -> None:
    """A str body is written as is, so it never turns into a dict on the way back."""
    _, fields = encode_one(make_record('{"a": 1}'))
    assert fields["body"] == '{"a": 1}'
    assert decode_fields(fields).body == '{"a": 1}'


def test_lone_surrogates_survive_the_round_trip() -> None:
    """A body with a lone surrogate is stored as escaped JSON and restored exactly."""
    body = "bad \ud800 half"
    _, fields = encode_one(make_record(body, {"k": "\udfff"}))
    assert_wire_safe(fields)
    entry = decode_fields(fields)
    assert entry.body == body
    assert entry.attributes == {"k": "\udfff"}


def test_long_values_are_truncated_and_marked() -> None:
    """Bodies and attribute values past the cap are cut and listed in `truncated`."""
    record = make_record("x" * 100, {"big": "y" * 100, "blob": b"z" * 100, "small": "ok"})
    _, fields = encode_one(record, limit=16)
    entry = decode_fields(fields)
    assert entry.body == "x" * 16
    assert entry.attributes["big"] == "y" * 16
    assert entry.attributes["blob"] == b"z" * 16
    assert entry.attributes["small"] == "ok"
    assert set(entry.truncated) == {"body", "big", "blob"}


def test_odd_values_are_encoded_not_dropped() -> None:
    """Objects, raising __str__, cycles and deep nesting get a documented representation."""

    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")

        def __repr__(self) -> str:
            raise RuntimeError("no")

    cycle: list[Any] = [1]
    cycle.append(cycle)
    deep: Any = "bottom"
    for _ in range(MAX_DEPTH + 10):
        deep = [deep]
    record = make_record({"obj": object()}, {"hostile": Hostile(), "cycle": cycle, "deep": deep})
    _, fields = encode_one(record)
    assert_wire_safe(fields)
    entry = decode_fields(fields)
    assert entry.attributes["hostile"] == "<unprintable Hostile>"
    assert entry.attributes["cycle"][0] == 1
    assert entry.attributes["cycle"][1].startswith("<cycle")
    assert str(entry.body["obj"]).startswith("<object object")


def test_dict_that_looks_like_a_tag_is_not_mistaken_for_one() -> None:
    """A user map {"$bytes": "..."} comes back as that map, not as bytes."""
    body = {"$bytes": "AAE="}
    _, fields = encode_one(make_record(body, {"a": {"$float": "nan"}}))
    entry = decode_fields(fields)
    assert entry.body == body
    assert entry.attributes["a"] == {"$float": "nan"}


def test_resource_and_scope_are_encoded_once_per_batch() -> None:
    """Records sharing a resource share one encoded resource string object."""
    encoder = BatchEncoder(StreamKeyTemplate.parse("otel:logs"), LIMIT)
    [entries] = encoder.encode([make_record("a"), make_record("b")], 0).values()
    assert entries[0]["resource"] is entries[1]["resource"]


def test_templated_key_uses_resource_attributes() -> None:
    """`logs:{service.name}` puts each service in its own stream."""
    other = Resource.create({"service.name": "billing"})
    encoder = BatchEncoder(StreamKeyTemplate.parse("logs:{service.name}"), LIMIT)
    entries = encoder.encode([make_record("a"), make_record("b", resource=other), make_record("c")], 0)
    assert {key: [e["body"] for e in batch] for key, batch in entries.items()} == {
        "logs:checkout": ["a", "c"],
        "logs:billing": ["b"],
    }


def test_severity_numbers_follow_the_spec() -> None:
    """Severity is written as the spec's number and name."""
    _, fields = encode_one(make_record(severity=SeverityNumber.ERROR))
    assert (fields["severity_number"], fields["severity_text"]) == ("17", "ERROR")


@given(body=representable, attributes=st.dictionaries(st.text(max_size=10), representable, max_size=6))
def test_round_trip_restores_representable_values(body: Any, attributes: dict[str, Any]) -> None:
    """Decoding an entry gives back the body and attributes that were logged, types included."""
    _, fields = encode_one(make_record(body, attributes))
    assert_wire_safe(fields)
    entry = decode_fields(fields)
    assert same(entry.body, body)
    assert same(dict(entry.attributes), attributes)


@given(
    body=st.from_type(type).flatmap(st.from_type) | representable,
    attributes=st.dictionaries(st.text(max_size=5), st.from_type(object) | representable, max_size=4),
)
def test_encoding_never_raises_and_stays_wire_safe(body: Any, attributes: dict[str, Any]) -> None:
    """Whatever is logged, encoding yields str fields and never raises."""
    _, fields = encode_one(make_record(body, attributes))
    assert_wire_safe(fields)
    decode_fields(fields)


def test_every_record_gets_a_distinct_sortable_uid() -> None:
    """log.record.uid is a 26-character ULID, distinct and increasing within a batch."""
    encoder = BatchEncoder(StreamKeyTemplate.parse("otel:logs"), LIMIT)
    prefix = uid_prefix(1_700_000_000_000, 0xFFFF_FFFF_FFFF_FFFF_FFFF)
    [entries] = encoder.encode([make_record(str(i)) for i in range(2000)], 0, prefix).values()
    uids = [fields["log.record.uid"] for fields in entries]
    assert len(set(uids)) == 2000
    assert uids == sorted(uids)
    assert all(len(uid) == 26 and set(uid) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for uid in uids)
    assert decode_fields(entries[0]).uid == uids[0]


def test_uid_starts_with_the_time_like_a_ulid() -> None:
    """The first ten characters encode the millisecond time, so later batches sort after earlier ones."""
    earlier = uid_prefix(1_700_000_000_000, 123)
    later = uid_prefix(1_700_000_000_001, 0)
    assert earlier[:10] < later[:10]
    assert uid_prefix(0, 0) == "0" * 22


def test_a_missing_template_attribute_is_logged_once_per_key(caplog: Any) -> None:
    """A resource without the template's attribute: written to logs:unknown, and one warning saying so."""
    template = StreamKeyTemplate.parse("logs:{service.name}")
    with caplog.at_level("WARNING", logger="otel_redis_exporter"):
        keys = {template.render({"host.name": "a"}) for _ in range(3)}
    assert keys == {"logs:unknown"}
    warnings = [record for record in caplog.records if "service.name" in record.getMessage()]
    assert len(warnings) == 1, [record.getMessage() for record in warnings]
    assert "logs:unknown" in warnings[0].getMessage()
