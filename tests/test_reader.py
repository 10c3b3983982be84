"""RedisLogReader against real servers: ranges, following, consumer groups, trace lookup, encodings."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_redis_exporter import LogEntry, RedisLogExporter, RedisLogReader, shard_keys
from otel_redis_exporter._index import index_key
from otel_redis_exporter.read.reader import PAGE_SIZE

from records import SPAN_ID, TRACE_ID, make_record, span_context
from servers import delivered, wait_until, write_records
from test_encoding import representable, same

SUCCESS = LogRecordExportResult.SUCCESS
TRACE = f"{TRACE_ID:032x}"
OTHER_TRACE = 0x0AF7651916CD43DD8448EB211C80319C
ENCODINGS = ("flat", "otlp_json", "otlp_proto")


@pytest.fixture
def write(redis_url: str) -> Iterator[Callable[..., None]]:
    """write(records, **exporter options): one export through a fresh exporter, asserted to succeed."""
    exporters: list[RedisLogExporter] = []

    def export(records: list[Any], **options: Any) -> None:
        exporter = RedisLogExporter(url=redis_url, **options)
        exporters.append(exporter)
        assert delivered(exporter, records)

    yield export
    for exporter in exporters:
        exporter.shutdown()


@pytest.fixture
def reader_factory(redis_url: str) -> Iterator[Callable[..., RedisLogReader]]:
    """Readers on the test's server, closed after the test."""
    made: list[RedisLogReader] = []

    def make(**kwargs: Any) -> RedisLogReader:
        reader = RedisLogReader(url=redis_url, **kwargs)
        made.append(reader)
        return reader

    yield make
    for reader in made:
        reader.close()


def bodies(entries: list[LogEntry]) -> list[Any]:
    return [entry.body for entry in entries]


def numbered(count: int, **kwargs: Any) -> list[Any]:
    return [make_record(f"r{i}", {"i": i}, **kwargs) for i in range(count)]


def next_millisecond() -> None:
    """Return once the wall clock is in a later millisecond (so entry ids of keys order by time)."""
    start = time.time_ns() // 1_000_000
    wait_until(lambda: time.time_ns() // 1_000_000 > start, timeout=1, interval=0.0005)


def following(client: redis.Redis) -> bool:
    """Whether some client is blocked in XREAD."""
    return any(c.get("cmd") == "xread" for c in client.client_list())


def xrange_calls(client: redis.Redis) -> int:
    """How many XRANGE commands the server ran since the last CONFIG RESETSTAT."""
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_xrange", {}).get("calls", 0))


# ---------------------------------------------------------------------------- ranges


def test_range_returns_decoded_records_in_order(
    write: Callable[..., None], reader_factory: Callable[..., RedisLogReader]
) -> None:
    """range() gives every record with its types restored, oldest first, and honours count."""
    write(numbered(5, context=span_context()))
    reader = reader_factory()
    entries = reader.range()
    assert bodies(entries) == [f"r{i}" for i in range(5)]
    first = entries[0]
    assert first.attributes == {"i": 0}
    assert (first.trace_id, first.span_id, first.trace_flags) == (TRACE, f"{SPAN_ID:016x}", 1)
    assert first.stream == "otel:logs"
    assert first.entry_id is not None
    assert bodies(reader.range(count=2)) == ["r0", "r1"]
    assert bodies(reader.range(start=entries[3].entry_id or "")) == ["r3", "r4"]
    assert bodies(reader.range(start=f"({entries[3].entry_id}")) == ["r4"]


def test_range_pages_through_long_streams(
    write: Callable[..., None], reader_factory: Callable[..., RedisLogReader]
) -> None:
    """More entries than one page: every one comes back once, in order."""
    total = PAGE_SIZE * 2 + 7
    write(numbered(total))
    assert bodies(reader_factory().range()) == [f"r{i}" for i in range(total)]
    assert bodies(list(reader_factory().entries(reverse=True)))[:2] == [f"r{total - 1}", f"r{total - 2}"]


def test_range_bounds_in_milliseconds(
    write: Callable[..., None], redis_client: redis.Redis, reader_factory: Callable[..., RedisLogReader]
) -> None:
    """Integer bounds are milliseconds since the epoch (the entry-id time)."""
    redis_client.xadd(
        "otel:logs", {"v": "1", "timestamp": "1", "observed_timestamp": "1", "body": "old"}, id="1000-0"
    )
    write([make_record("new")])
    reader = reader_factory()
    assert bodies(reader.range(end=5000)) == ["old"]
    assert bodies(reader.range(start=5000)) == ["new"]


def test_templated_keys_are_merged_in_time_order(
    write: Callable[..., None], reader_factory: Callable[..., RedisLogReader]
) -> None:
    """A templated stream reads every key it produces; a key list or pattern reads just those keys."""
    services = ["api", "billing", "db"]
    for round_ in range(3):
        for service in services:
            write(
                [make_record(f"{service}-{round_}", resource=Resource({"service.name": service}))],
                stream="logs:{service.name}",
            )
            next_millisecond()  # distinct entry-id milliseconds, so the merge order is the write order
    expected = [f"{service}-{round_}" for round_ in range(3) for service in services]
    assert reader_factory(stream="logs:{service.name}").keys() == ["logs:api", "logs:billing", "logs:db"]
    assert bodies(reader_factory(stream="logs:{service.name}").range()) == expected
    assert bodies(reader_factory(pattern="logs:*").range()) == expected
    only = reader_factory(keys=["logs:db", "logs:api"]).range()
    assert bodies(only) == [b for b in expected if not b.startswith("billing")]
    assert {entry.stream for entry in only} == {"logs:db", "logs:api"}


def test_undecodable_entries_are_skipped(
    write: Callable[..., None], redis_client: redis.Redis, reader_factory: Callable[..., RedisLogReader]
) -> None:
    """An entry someone else wrote into the stream does not stop the reader."""
    write([make_record("before")])
    redis_client.xadd("otel:logs", {"attributes": "{not json"})
    write([make_record("after")])
    assert bodies(reader_factory().range()) == ["before", "after"]


# ---------------------------------------------------------------------------- tail


def test_tail_without_follow_gives_the_newest(
    write: Callable[..., None], reader_factory: Callable[..., RedisLogReader]
) -> None:
    """tail(count, follow=False) yields the newest `count` records, oldest first, matching `where`."""
    write(numbered(20))
    reader = reader_factory()
    assert bodies(list(reader.tail(3, follow=False))) == ["r17", "r18", "r19"]
    even = list(reader.tail(3, follow=False, where=lambda e: e.attributes["i"] % 2 == 0))
    assert bodies(even) == ["r14", "r16", "r18"]


def test_tail_follow_yields_new_records_until_stopped(
    write: Callable[..., None], redis_client: redis.Redis, reader_factory: Callable[..., RedisLogReader]
) -> None:
    """Following yields what is written after it started, and ends when `stop` is set."""
    write([make_record("old")], stream="logs:{service.name}")
    stop = threading.Event()
    seen: list[Any] = []
    reader = reader_factory(stream="logs:{service.name}")

    def follow() -> None:
        for entry in reader.tail(0, follow=True, block_ms=100, stop=stop):
            seen.append(entry.body)

    worker = threading.Thread(target=follow)
    worker.start()
    try:
        wait_until(lambda: following(redis_client), timeout=10, what="the follower's XREAD")
        write([make_record("new-1"), make_record("new-2")], stream="logs:{service.name}")
        wait_until(lambda: seen == ["new-1", "new-2"], timeout=10, what="followed records")
    finally:
        stop.set()
        worker.join(timeout=5)
    assert not worker.is_alive()


def test_follow_picks_up_keys_that_appear_later(
    write: Callable[..., None], redis_client: redis.Redis, reader_factory: Callable[..., RedisLogReader]
) -> None:
    """A key created after following started under a pattern is read from its first entry."""
    write([make_record("first", resource=Resource({"service.name": "first"}))], stream="logs:{service.name}")
    stop = threading.Event()
    seen: list[Any] = []
    reader = reader_factory(stream="logs:{service.name}", _key_refresh_s=0.1)

    def follow() -> None:
        for entry in reader.tail(0, follow=True, block_ms=50, stop=stop):
            seen.append(entry.body)

    worker = threading.Thread(target=follow)
    worker.start()
    try:
        wait_until(lambda: following(redis_client), timeout=10, what="the follower's XREAD")
        write(
            [make_record("late", resource=Resource({"service.name": "late"}))], stream="logs:{service.name}"
        )
        wait_until(lambda: "late" in seen, timeout=10, what="record of a new key")
    finally:
        stop.set()
        worker.join(timeout=5)
    assert seen == ["late"]


# ---------------------------------------------------------------------------- consumer groups


def test_group_is_created_with_mkstream_and_twice_is_fine(
    redis_client: redis.Redis, reader_factory: Callable[..., RedisLogReader]
) -> None:
    """A missing stream and group are created; a second consumer finds the group already there."""
    reader = reader_factory()
    reader.group("workers", "a").ensure()
    reader.group("workers", "b").ensure()
    assert redis_client.type("otel:logs") == "stream"
    assert [g["name"] for g in redis_client.xinfo_groups("otel:logs")] == ["workers"]


def test_two_consumers_share_the_work_and_claim_a_dead_ones_entries(
    write: Callable[..., None], redis_client: redis.Redis, reader_factory: Callable[..., RedisLogReader]
) -> None:
    """Each entry is handled once: split between live consumers, the dead one's taken over after idling."""
    reader = reader_factory()
    dead = reader.group("workers", "dead")
    alive = [reader.group("workers", name) for name in ("a", "b")]
    write(numbered(30))
    taken_by_dead = dead.read(count=10, block_ms=None)  # ... and then it dies without acknowledging
    assert len(taken_by_dead) == 10
    handled: dict[str, list[Any]] = {"a": [], "b": []}
    for _ in range(2):
        for consumer, name in zip(alive, ("a", "b"), strict=True):
            consumer.process(
                lambda records, name=name: handled[name].extend(bodies(records)), count=5, block_ms=None
            )
    assert len(handled["a"]) == len(handled["b"]) == 10
    assert redis_client.xpending("otel:logs", "workers")["pending"] == 10  # the dead consumer's
    claimer = reader.group("workers", "a", claim_idle_ms=300)
    wait_until(
        lambda: claimer.process(
            lambda records: handled["a"].extend(bodies(records)), count=10, block_ms=None
        ),
        timeout=10,
        what="claim of the dead consumer's entries",
    )
    everything = handled["a"] + handled["b"]
    assert sorted(everything) == sorted(f"r{i}" for i in range(30))
    assert sorted(handled["a"][-10:]) == sorted(entry.body for _, _, entry in taken_by_dead if entry)
    assert redis_client.xpending("otel:logs", "workers")["pending"] == 0


def test_nothing_is_acknowledged_when_the_handler_raises(
    write: Callable[..., None], redis_client: redis.Redis, reader_factory: Callable[..., RedisLogReader]
) -> None:
    """A failing handler leaves its batch pending; the same consumer gets it again next time."""
    write(numbered(4))
    group = reader_factory().group("workers", "a")

    def fail(records: list[LogEntry]) -> None:
        raise RuntimeError("downstream is down")

    with pytest.raises(RuntimeError):
        group.process(fail, block_ms=None)
    assert redis_client.xpending("otel:logs", "workers")["pending"] == 4
    again: list[Any] = []
    assert group.process(lambda records: again.extend(bodies(records)), block_ms=None) == 4
    assert again == [f"r{i}" for i in range(4)]
    assert redis_client.xpending("otel:logs", "workers")["pending"] == 0
    assert group.process(lambda records: again.extend(bodies(records)), block_ms=50) == 0


def test_group_reads_every_templated_key(
    write: Callable[..., None], redis_client: redis.Redis, reader_factory: Callable[..., RedisLogReader]
) -> None:
    """A group over a template gets the entries of every key, and acknowledges them per key."""
    for service in ("api", "db"):
        write(
            [make_record(service, resource=Resource({"service.name": service}))], stream="logs:{service.name}"
        )
    group = reader_factory(stream="logs:{service.name}").group("workers", "a")
    seen: list[Any] = []
    assert group.process(lambda records: seen.extend(bodies(records)), block_ms=None) == 2
    assert sorted(seen) == ["api", "db"]
    for key in ("logs:api", "logs:db"):
        assert redis_client.xpending(key, "workers")["pending"] == 0


def test_trimmed_pending_entries_are_acknowledged_not_handed_over(
    write: Callable[..., None], redis_client: redis.Redis, reader_factory: Callable[..., RedisLogReader]
) -> None:
    """An entry deleted while pending is dropped from the group without reaching the handler."""
    write(numbered(3))
    group = reader_factory().group("workers", "a")
    [(_, first_id, _), *_] = group.read(count=3)
    redis_client.xdel("otel:logs", first_id)
    seen: list[Any] = []
    assert group.process(lambda records: seen.extend(bodies(records)), block_ms=None) == 3
    assert seen == ["r1", "r2"]
    assert redis_client.xpending("otel:logs", "workers")["pending"] == 0


# ---------------------------------------------------------------------------- by trace


def trace_batch() -> list[Any]:
    """Records of two traces and some without trace context, timestamps out of write order."""
    return [
        make_record("t1-b", context=span_context(), timestamp=2_000),
        make_record("other", context=span_context(OTHER_TRACE)),
        make_record("t1-a", context=span_context(), timestamp=1_000),
        make_record("no trace"),
    ]


def test_by_trace_with_the_index_reads_only_that_trace(
    write: Callable[..., None], redis_client: redis.Redis, reader_factory: Callable[..., RedisLogReader]
) -> None:
    """With the index: the trace's records in time order, fetched without scanning the stream."""
    write(numbered(3000), trace_index_ttl=60)
    write(trace_batch(), trace_index_ttl=60)
    key = index_key("otel:logs", TRACE)
    assert redis_client.llen(key) == 2
    assert 0 < redis_client.pttl(key) <= 60_000
    reader = reader_factory()
    redis_client.config_resetstat()
    assert bodies(reader.by_trace(TRACE)) == ["t1-a", "t1-b"]
    assert xrange_calls(redis_client) == 2  # one XRANGE id id per record of the trace


def test_by_trace_without_the_index_scans(
    write: Callable[..., None], redis_client: redis.Redis, reader_factory: Callable[..., RedisLogReader]
) -> None:
    """Without the index the same records come back, found by reading the whole stream."""
    write(numbered(3000))
    write(trace_batch())
    assert not redis_client.keys("*:trace:*")
    reader = reader_factory()
    redis_client.config_resetstat()
    assert bodies(reader.by_trace(TRACE.upper())) == ["t1-a", "t1-b"]
    assert xrange_calls(redis_client) >= 3004 // PAGE_SIZE
    assert reader.by_trace(TRACE, use_index=True) == []


def test_index_spans_templated_keys(
    write: Callable[..., None],
    redis_client: redis.Redis,
    reader_factory: Callable[..., RedisLogReader],
    mode: str,
) -> None:
    """One trace across services: one index key next to the template's prefix, found by by_trace."""
    for service, timestamp in (("api", 1), ("db", 2), ("api", 3)):
        write(
            [
                make_record(
                    f"{service}-{timestamp}",
                    resource=Resource({"service.name": service}),
                    context=span_context(),
                    timestamp=timestamp,
                )
            ],
            stream="logs:{service.name}",
            trace_index_ttl=30,
            mode=mode,
        )
    assert redis_client.type(index_key("logs", TRACE)) == "list"
    reader = reader_factory(stream="logs:{service.name}")
    assert reader.keys() == ["logs:api", "logs:db"]  # the index key is not a stream
    assert bodies(reader.by_trace(TRACE, use_index=True)) == ["api-1", "db-2", "api-3"]


def test_index_failure_does_not_fail_the_export(
    redis_url: str, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    """When the index key cannot be written the records still land and export succeeds, with a warning."""
    redis_client.set(index_key("otel:logs", TRACE), "not a list")
    exporter = RedisLogExporter(url=redis_url, trace_index_ttl=30, mode=mode)
    try:
        with caplog.at_level("WARNING", logger="otel_redis_exporter"):
            assert exporter.export([make_record("kept", context=span_context())]) is SUCCESS
    finally:
        exporter.shutdown()
    assert redis_client.xlen("otel:logs") == 1
    assert "trace index was not updated" in caplog.text


def test_by_trace_rejects_a_malformed_id(reader_factory: Callable[..., RedisLogReader]) -> None:
    """A trace id that is not 32 hex digits is a ValueError, before any I/O."""
    with pytest.raises(ValueError, match="32 hex digits"):
        reader_factory().by_trace("xyz")


# ---------------------------------------------------------------------------- encodings and stats


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_each_encoding_reads_back_the_same(
    encoding: str,
    write: Callable[..., None],
    redis_url: str,
    reader_factory: Callable[..., RedisLogReader],
) -> None:
    """flat, otlp_json and otlp_proto entries decode to the same record; the entry names its encoding."""
    record = make_record(
        {"order": 42, "items": [1, 2.5, True, None, b"\x00\xff"]},
        {"user.id": 7, "ok": True, "ratio": 0.25, "tags": ["a", "b"], "raw": b"\x01"},
        context=span_context(),
        scope=InstrumentationScope("app.orders", "1.2.3", attributes={"scope.kind": "module"}),
        severity=SeverityNumber.WARN,
        event_name="order.placed",
    )
    write([record], encoding=encoding, trace_index_ttl=30)
    with redis.Redis.from_url(redis_url) as raw_client:  # bytes: an otlp_proto payload is not UTF-8
        [(_, fields)] = raw_client.xrange("otel:logs")
    if encoding == "flat":
        assert b"encoding" not in fields
    else:
        assert fields[b"encoding"] == encoding.encode()
        assert fields[b"trace_id"] == TRACE.encode()
        assert fields[b"payload"]
    [entry] = reader_factory().range()
    assert entry.encoding == encoding
    assert entry.body == {"order": 42, "items": [1, 2.5, True, None, b"\x00\xff"]}
    assert entry.attributes == {"user.id": 7, "ok": True, "ratio": 0.25, "tags": ["a", "b"], "raw": b"\x01"}
    assert (entry.trace_id, entry.span_id, entry.trace_flags) == (TRACE, f"{SPAN_ID:016x}", 1)
    assert (entry.severity_number, entry.severity_text, entry.event_name) == (13, "WARN", "order.placed")
    assert (entry.timestamp, entry.observed_timestamp) == (
        1_700_000_000_000_000_001,
        1_700_000_000_000_000_002,
    )
    assert (entry.scope_name, entry.scope_version) == ("app.orders", "1.2.3")
    assert entry.scope_attributes == {"scope.kind": "module"}
    assert entry.service_name == "checkout"
    assert entry.resource["deployment.environment"] == "test"
    assert bodies(reader_factory().by_trace(TRACE, use_index=True)) == [entry.body]


def test_stats_report_length_times_memory_and_groups(
    write: Callable[..., None], reader_factory: Callable[..., RedisLogReader]
) -> None:
    """stats(): length, first and last entry, memory, and each group's pending count and lag."""
    write(numbered(5))
    reader = reader_factory()
    group = reader.group("workers", "a")
    group.read(count=2)
    [stats] = reader.stats()
    assert stats.key == "otel:logs"
    assert stats.length == 5
    assert stats.first_ms is not None
    assert stats.last_ms is not None
    assert abs(stats.first_ms / 1000 - time.time()) < 600
    assert stats.first_ms <= stats.last_ms
    assert stats.memory_bytes

    [info] = stats.groups
    assert (info.name, info.consumers, info.pending, info.lag) == ("workers", 1, 2, 3)


# ---------------------------------------------------------------------------- round trip property


resource_values = st.one_of(
    st.text(max_size=10), st.integers(-(2**63), 2**63 - 1), st.booleans(), st.floats(allow_nan=False)
)
trace_ids = st.integers(1, 2**128 - 1)
span_ids = st.integers(1, 2**64 - 1)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=representable,
    attributes=st.dictionaries(st.text(max_size=10), representable, max_size=4),
    resource=st.dictionaries(st.text(min_size=1, max_size=10), resource_values, max_size=3),
    scope=st.tuples(st.text(min_size=1, max_size=10), st.none() | st.text(min_size=1, max_size=5)),
    ids=st.none() | st.tuples(trace_ids, span_ids),
)
def test_exporter_to_reader_round_trip(  # noqa: PLR0917 - hypothesis passes the drawn values by name
    redis_url: str,
    redis_client: redis.Redis,
    body: Any,
    attributes: dict[str, Any],
    resource: dict[str, Any],
    scope: tuple[str, str | None],
    ids: tuple[int, int] | None,
) -> None:
    """Whatever the exporter writes, the reader returns the same body, attributes, resource, scope, ids."""
    redis_client.delete("roundtrip")
    record = make_record(
        body,
        attributes,
        resource=Resource(resource),
        scope=InstrumentationScope(scope[0], scope[1]),
        context=span_context(*ids) if ids else None,
    )
    write_records([record], url=redis_url, stream="roundtrip")
    with RedisLogReader(url=redis_url, stream="roundtrip") as reader:
        [entry] = reader.range()
    assert same(entry.body, body)
    assert same(dict(entry.attributes), attributes)
    assert same(dict(entry.resource), dict(Resource(resource).attributes))
    assert (entry.scope_name, entry.scope_version) == scope
    if ids is None:
        assert (entry.trace_id, entry.span_id) == (None, None)
    else:
        assert (entry.trace_id, entry.span_id) == (f"{ids[0]:032x}", f"{ids[1]:016x}")


def test_group_is_recreated_when_the_stream_is_deleted(
    write: Callable[..., None], redis_client: redis.Redis, reader_factory: Callable[..., RedisLogReader]
) -> None:
    """A stream deleted and written again under a running consumer: the group comes back, nothing is lost."""
    write(numbered(2))
    group = reader_factory().group("workers", "a")
    seen: list[Any] = []
    assert group.process(lambda records: seen.extend(bodies(records)), block_ms=None) == 2
    redis_client.delete("otel:logs")
    write([make_record("after delete")])
    assert group.process(lambda records: seen.extend(bodies(records)), block_ms=None) == 1
    assert seen == ["r0", "r1", "after delete"]


def test_reader_constructor_does_no_io_and_hides_the_password() -> None:
    """A reader for an unreachable server is built without connecting; its repr has no password."""
    reader = RedisLogReader(url="redis://:s3cret@127.0.0.1:1/0", stream="logs:{service.name}")
    assert "s3cret" not in repr(reader)
    assert "s3cret" not in repr(reader.config)
    assert "logs:*" in repr(reader)
    reader.close()
    with pytest.raises(ValueError, match="exclusive"):
        RedisLogReader(url="redis://127.0.0.1:1/0", keys=["a"], pattern="b*")
    with pytest.raises(ValueError, match="must start with one of redis://"):
        RedisLogReader(url="http://127.0.0.1:1")


def test_a_retried_write_that_landed_twice_is_read_once(redis_url: str, redis_client: redis.Redis) -> None:
    """Two entries with the same log.record.uid (a retried write) come back as one record."""
    write_records([make_record("once", context=span_context())], url=redis_url)
    [(_, fields)] = redis_client.xrange("otel:logs")
    redis_client.xadd("otel:logs", fields)  # the copy a lost reply would have caused
    reader = RedisLogReader(url=redis_url)
    try:
        assert [entry.body for entry in reader.range()] == ["once"]
        assert [entry.body for entry in reader.tail(10, follow=False)] == ["once"]
        trace = f"{TRACE_ID:032x}"
        assert [entry.body for entry in reader.by_trace(trace)] == ["once"]
    finally:
        reader.close()


def test_trace_index_points_into_the_right_shard(redis_url: str) -> None:
    """With shards, the index names the shard key each record went to, so by_trace finds them all."""
    batch = [make_record(f"sharded {i}", context=span_context()) for i in range(5)]
    write_records(batch, url=redis_url, shards=3, trace_index_ttl=60)
    reader = RedisLogReader(url=redis_url)
    try:
        found = reader.by_trace(f"{TRACE_ID:032x}", use_index=True)
    finally:
        reader.close()
    assert [entry.body for entry in found] == [f"sharded {i}" for i in range(5)]
    assert {entry.stream for entry in found} <= set(shard_keys("otel:logs", 3))


def test_close_releases_every_connection(redis_url: str, redis_client: redis.Redis) -> None:
    """After close(), the server sees none of the reader's connections (blocking ones included)."""
    before = len(redis_client.client_list())
    reader = RedisLogReader(url=redis_url)
    reader.range()
    list(reader.tail(1, follow=False))
    reader.group("g", "c").read(block_ms=10)
    assert len(redis_client.client_list()) > before
    reader.close()
    wait_until(lambda: len(redis_client.client_list()) == before, timeout=2, what="the connections closed")
