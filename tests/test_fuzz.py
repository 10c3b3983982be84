"""Hostile input on a real server: export never raises, never loses a batch, never leaves its key space."""

from __future__ import annotations

import re
from typing import Any

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from otel_redis_exporter import RedisLogExporter, decode_fields

from records import make_record
from test_encoding import representable

KEY = re.compile(r"^fuzz:[A-Za-z0-9._-]{1,64}$")
SURROGATE = re.compile("[\ud800-\udfff]")


class Unprintable:
    """An object whose __str__ and __repr__ both raise."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def nested(depth: int) -> Any:
    """A list nested ``depth`` levels deep."""
    value: Any = "core"
    for _ in range(depth):
        value = [value]
    return value


def cyclic() -> Any:
    """A dict that contains itself."""
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    return loop


hostile = (
    representable
    | st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=5)
    | st.integers(min_value=2**64, max_value=2**512)
    | st.integers(min_value=-(2**512), max_value=-(2**64))
    | st.integers(min_value=40, max_value=400).map(nested)
    | st.builds(cyclic)
    | st.builds(Unprintable)
    | st.integers(min_value=70_000, max_value=300_000).map(lambda n: "é" * n)
    | st.builds(object)
)
records = st.builds(
    lambda body, attributes, service: make_record(
        body, attributes, resource=Resource({"service.name": service} if service is not None else {})
    ),
    hostile,
    st.dictionaries(st.text(max_size=20), hostile, max_size=5),
    st.none() | st.text(max_size=100) | st.sampled_from(["*", "a:b", "{x}", " ", "../..", "\x00", "\ud800"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(records, min_size=1, max_size=6))
def test_hostile_batches_are_written_whole_inside_the_key_space(
    redis_url: str, redis_client: redis.Redis, batch: list[Any]
) -> None:
    """Every record of a hostile batch lands, in a key the template allows, and decodes."""
    redis_client.flushdb()
    exporter = RedisLogExporter(url=redis_url, stream="fuzz:{service.name}", max_value_length=65536)
    try:
        assert exporter.export(batch) is LogRecordExportResult.SUCCESS
    finally:
        exporter.shutdown()
    keys = redis_client.keys("*")
    assert all(KEY.match(key) for key in keys), keys
    decoded = [
        decode_fields(fields, entry_id=entry_id, stream=key)
        for key in keys
        for entry_id, fields in redis_client.xrange(key)
    ]
    # The uids sort in batch order: each record exactly once, and in order.
    decoded.sort(key=lambda entry: entry.uid or "")
    assert len({entry.uid for entry in decoded}) == len(decoded) == len(batch)
    for record, entry in zip(batch, decoded, strict=True):
        body = record.log_record.body
        if isinstance(body, str) and len(body) <= 65536 and not SURROGATE.search(body):
            assert entry.body == body  # a representable str comes back as it was
        else:
            assert entry.body is not None or body is None  # anything else is encoded somehow
