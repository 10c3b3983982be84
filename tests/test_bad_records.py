"""One bad or huge record never costs its neighbours: the encoders isolate each record.

Values that used to fail a whole batch (an int past 4300 digits, a collection whose iterator
raises) and values that made huge entries (a 3 MB dict, 2.5 M ints) are put among good records;
every good record lands, and the bad ones land in a documented form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from opentelemetry.sdk._logs.export import LogRecordExportResult

from otel_redis_exporter import RedisLogExporter, RedisLogReader
from otel_redis_exporter._config import resolve_config
from otel_redis_exporter._encode.flat import PLACEHOLDER_BODY
from otel_redis_exporter._encode.select import batch_encoder, decode_fields
from otel_redis_exporter._keys import StreamKeyTemplate

from records import make_record

HUGE_INT = 10**5000  # 5001 digits: str() refuses it


class RaisingList(list[Any]):
    """A list whose iterator raises."""

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("cannot iterate")


class RaisingRecordBody:
    """A value whose str() and repr() both raise."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _bad_values() -> dict[int, tuple[Any, dict[str, Any] | None]]:
    """Position in the batch -> (body, attributes) of a bad or huge record."""
    three_mb = {f"key{n:07d}": "v" * 20 for n in range(100_000)}
    return {
        7: (HUGE_INT, None),
        100: ("int attribute", {"n": HUGE_INT}),
        200: ("int in a list", {"l": [1, HUGE_INT]}),
        300: (RaisingList([1, 2]), None),
        301: ("raising list attribute", {"l": RaisingList([1])}),
        400: ("3 MB dict", {"d": three_mb}),
        401: (three_mb, None),
        500: ("2.5 M ints", {"l": list(range(2_500_000))}),
        511: (RaisingRecordBody(), {"other": RaisingRecordBody()}),
    }


ENCODINGS = ["flat", "otlp_json", "otlp_proto"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_bad_records_land_and_good_neighbours_are_kept(
    encoding: str,
    exporter_factory: Callable[..., RedisLogExporter],
    redis_client: redis.Redis,
    redis_url: str,
) -> None:
    """A 512-record batch with bad and huge records: SUCCESS, 512 entries, every good body intact."""
    bad = _bad_values()
    batch = [make_record(f"good {n}") if n not in bad else make_record(*bad[n]) for n in range(512)]
    exporter = exporter_factory(url=redis_url, stream="otel:bad", encoding=encoding)
    assert exporter.export(batch) is LogRecordExportResult.SUCCESS
    assert exporter.stats().dropped == {}
    assert redis_client.xlen("otel:bad") == 512
    with RedisLogReader(url=redis_url, stream="otel:bad") as reader:
        entries = reader.range()
    bodies = [entry.body for entry in entries]
    assert [bodies[n] for n in range(512) if n not in bad] == [
        f"good {n}" for n in range(512) if n not in bad
    ]
    assert bodies[7] == hex(HUGE_INT)
    assert entries[100].attributes["n"] == hex(HUGE_INT)
    assert entries[200].attributes["l"] == [1, hex(HUGE_INT)]
    assert bodies[300] == "<unreadable RaisingList>"
    assert entries[301].attributes["l"] == "<unreadable RaisingList>"
    for position in (400, 401, 500):
        assert entries[position].truncated, f"entry {position} is not marked truncated"
    assert isinstance(bodies[511], str)  # str() and repr() raise: a placeholder text


def test_every_entry_stays_under_max_entry_bytes(
    exporter_factory: Callable[..., RedisLogExporter], redis_client: redis.Redis, redis_url: str
) -> None:
    """With max_entry_bytes=64 KiB, no entry of the bad batch is much larger than that."""
    bad = _bad_values()
    cap = 64 * 1024
    exporter = exporter_factory(url=redis_url, stream="otel:cap", max_entry_bytes=cap)
    assert exporter.export([make_record(*values) for values in bad.values()]) is LogRecordExportResult.SUCCESS
    raw = redis.Redis.from_url(redis_url)
    try:
        sizes = [sum(len(value) for value in fields.values()) for _, fields in raw.xrange("otel:cap")]
    finally:
        raw.close()
    assert len(sizes) == len(bad)
    # The cap is approximate: it is checked while values are encoded, plus the fixed fields.
    assert max(sizes) < cap * 1.25, sizes


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_record_that_cannot_be_encoded_gets_a_placeholder(encoding: str) -> None:
    """A record whose encoding raises is written alone with PLACEHOLDER_BODY and the error's type."""
    good = make_record("fine")
    broken = make_record("broken")
    broken.log_record.trace_id = "not a trace id"  # type: ignore[assignment]
    broken.log_record.span_id = 1
    config = resolve_config(encoding=encoding, environ={})
    encode = batch_encoder(config, StreamKeyTemplate.parse("otel:logs"))
    entries = encode([good, broken, good], 1, None)["otel:logs"]
    assert [decode_fields(entry).body for entry in entries] == ["fine", PLACEHOLDER_BODY, "fine"]
    assert entries[1]["encoding_error"] in ("AttributeError", "TypeError", "ValueError")
    assert decode_fields(entries[1]).timestamp == decode_fields(entries[0]).timestamp
    assert decode_fields(entries[1]).service_name == "checkout"
