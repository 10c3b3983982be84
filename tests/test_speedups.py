"""The compiled fast path (``_speedups``) packs and parses exactly as the pure-Python path does.

Packing is compared byte for byte with redis-py's own pure-Python RESP serializer, parsing with
hiredis's reader (or, without hiredis, with the values the replies were made from). The last test
reads real replies from a server both ways. Every test here skips when the extension is not
built or ``OTEL_REDIS_EXPORTER_PURE_PYTHON=1`` turned it off.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import itertools
import socket
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.attributes import BoundedAttributes
from redis.connection import Encoder, PythonRespSerializer
from redis.exceptions import ResponseError

from otel_redis_exporter import FAST_PATH, ExporterConfig
from otel_redis_exporter._encode.compiled import COMPILED, noting_fallbacks
from otel_redis_exporter._encode.flat import BatchEncoder
from otel_redis_exporter._fast import speedups
from otel_redis_exporter._keys import StreamKeyTemplate
from otel_redis_exporter._write import attempt, delivery
from otel_redis_exporter._write.attempt import (
    Packed,
    pack_xadds,
    read_replies,
    read_replies_async,
    read_replies_at_once,
    read_replies_at_once_async,
    reads_at_once,
    reads_at_once_async,
    trim_arguments,
    xadd_commands,
)

from records import make_record, span_context

pytestmark = pytest.mark.skipif(not FAST_PATH, reason="the compiled fast path is not active")

_serializer = PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode)


def NOTHING_HEARD() -> None:
    """The writers tell the delivery of each reply; here nobody listens."""


def reference_pack(commands: list[tuple[str | bytes, ...]]) -> bytes:
    """redis-py's pure-Python RESP, one command after the other."""
    return b"".join(b"".join(_serializer.pack(*command)) for command in commands)


def trimming(maxlen: int | None = 100_000, retention_s: float | None = None) -> ExporterConfig:
    """A config that only matters for its trimming."""
    return ExporterConfig(
        url="redis://127.0.0.1",
        stream="logs",
        maxlen=maxlen,
        retention_s=retention_s,
        timeout_s=1.0,
        max_value_length=100,
    )


def fast() -> Any:
    assert speedups is not None
    return speedups


# Strings that break naive packers: CR/LF, NUL, multi-byte, astral, digits that look like headers.
hostile_text = st.text(max_size=40) | st.sampled_from(
    ["", "\r\n", "$5\r\n", "*1\r\n", "\x00", "caf\u00e9", "\U0001f600", "\u2028", "-ERR x", "é" * 300]
)
payloads = st.binary(max_size=200) | st.sampled_from([b"", b"\r\n", b"\x00\xff", b"\x80" * 70_000])
values = hostile_text | payloads
field_dicts = st.dictionaries(hostile_text, values, max_size=8)
entry_maps = st.dictionaries(hostile_text.filter(bool), st.lists(field_dicts, max_size=5), max_size=4)


@given(
    entries=entry_maps,
    maxlen=st.sampled_from([0, 1, 100_000]),
    retention=st.sampled_from([None, 0.001, 3600.0]),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_packed_xadds_are_the_pure_commands_byte_for_byte(
    entries: dict[str, list[dict[str, str | bytes]]], maxlen: int, retention: float | None
) -> None:
    """Every XADD (key, MAXLEN or MINID trim, fields in order, str and bytes) packs to redis-py's bytes."""
    config = trimming(maxlen, retention)
    packed = pack_xadds(entries, config, 1_700_000_000_000)
    assert packed is not None
    assert packed.data == reference_pack(xadd_commands(entries, config, 1_700_000_000_000))
    assert packed.count == sum(len(key_entries) for key_entries in entries.values())


# redis-py splits a command name on spaces ("CONFIG GET"); ours are single words.
command_names = st.sampled_from(["XADD", "WAIT", "ZADD", "EXPIRE", "PEXPIRE"])


@given(
    commands=st.lists(
        st.tuples(command_names, st.lists(values, max_size=8)).map(lambda c: (c[0], *c[1])), max_size=10
    )
)
@settings(max_examples=300, deadline=None)
def test_packed_commands_are_redis_pys_bytes(commands: list[tuple[str | bytes, ...]]) -> None:
    """Any commands of str and bytes arguments pack to redis-py's bytes, in one call."""
    assert attempt.pack(redis.Connection(), commands) == reference_pack(commands)


@pytest.mark.parametrize(
    "value",
    [1, 1.5, None, bytearray(b"x"), memoryview(b"x"), ["list"], "\ud800"],
    ids=["int", "float", "None", "bytearray", "memoryview", "list", "lone surrogate"],
)
def test_an_argument_the_fast_path_does_not_pack_leaves_it_to_the_pure_path(value: Any) -> None:
    """pack_xadds declines (None) a value that is not str or bytes, or not UTF-8: the pure path decides."""
    assert pack_xadds({"k": [{"f": value}]}, trimming(), 0) is None
    with pytest.raises((TypeError, UnicodeEncodeError)):
        fast().pack_commands([("SET", "k", value)])


def test_a_str_subclass_packs_as_its_text() -> None:
    """A str subclass with a hostile __str__ packs as its characters, the way redis-py encodes it."""

    class Loud(str):
        def __str__(self) -> str:
            raise RuntimeError("never called")

    commands: list[tuple[str | bytes, ...]] = [("XADD", "k", "*", "f", Loud("value\u00e9"))]
    assert fast().pack_commands(commands) == reference_pack(commands)


# --- queue sizes -----------------------------------------------------------------------------


@given(entries=entry_maps)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_entry_sizes_are_the_pure_sizes(entries: dict[str, list[dict[str, str | bytes]]]) -> None:
    """Each queued entry weighs what the pure path says, in order: characters of str, bytes of bytes."""
    pure = [delivery.entry_size(fields) for group in entries.values() for fields in group]
    assert fast().entry_sizes(entries, delivery.ENTRY_OVERHEAD_BYTES) == pure
    assert delivery.entry_sizes(entries) == pure


@pytest.mark.parametrize(
    "entries",
    [{"k": [{"f": 1}]}, {"k": [{2: "v"}]}, {"k": [{"f": bytearray(b"xy")}]}, {"k": ({"f": "v"},)}],
    ids=["int value", "int name", "bytearray", "tuple of entries"],
)
def test_an_entry_the_fast_path_does_not_measure_is_measured_the_pure_way(entries: dict[str, Any]) -> None:
    """entry_sizes refuses what is not an exact list of dicts of str or bytes (len() could run
    Python code); the queue then measures it the pure way, or raises what the pure way raises."""
    with pytest.raises(TypeError):
        fast().entry_sizes(entries, 0)
    try:
        pure = [delivery.entry_size(fields) for group in entries.values() for fields in group]
    except TypeError:
        with pytest.raises(TypeError):
            delivery.entry_sizes(entries)
    else:
        assert delivery.entry_sizes(entries) == pure


def test_a_str_subclass_is_measured_by_its_own_len() -> None:
    """A str subclass may say its own length: the queue asks it, as the pure path does."""

    class Long(str):
        def __len__(self) -> int:
            return 1_000

    assert delivery.entry_sizes({"k": [{"f": Long("v")}]}) == [delivery.ENTRY_OVERHEAD_BYTES + 1 + 1_000]


# --- replies ---------------------------------------------------------------------------------

reply_values: st.SearchStrategy[Any] = st.recursive(
    st.binary(max_size=50)
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.none()
    | st.text(max_size=30).map(lambda text: ("error", text.replace("\r", " ").replace("\n", " "))),
    lambda children: st.lists(children, max_size=4),
    max_leaves=12,
)


def resp(value: Any) -> bytes:
    """One reply as a server writes it (RESP2)."""
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, tuple):
        return b"-" + value[1].encode() + b"\r\n"
    return b"*%d\r\n" % len(value) + b"".join(resp(item) for item in value)


def expected(value: Any) -> Any:
    """What the fast path gives for ``value``: error replies as their text."""
    if isinstance(value, tuple):
        return value[1]
    if isinstance(value, list):
        return [expected(item) for item in value]
    return value


def parse_in_chunks(data: bytes, count: int, cuts: list[int]) -> list[Any]:
    """Parse as a socket would deliver ``data``: cut at ``cuts``, leftovers carried over."""
    replies: list[Any] = []
    pending = b""
    edges = [0, *sorted(set(cuts)), len(data)]
    for start, end in itertools.pairwise(edges):
        pending += data[start:end]
        parsed, offset = fast().parse_replies(pending, 0, count - len(replies))
        replies.extend(parsed)
        pending = pending[offset:]
    assert pending == b""
    return replies


@given(replies=st.lists(reply_values, max_size=20), cuts=st.lists(st.integers(min_value=0, max_value=4000)))
@settings(max_examples=300, deadline=None)
def test_replies_parse_to_what_the_server_sent_however_the_bytes_arrive(
    replies: list[Any], cuts: list[int]
) -> None:
    """Bulk, integer, nil, error and nested replies parse whole, split at any byte."""
    data = b"".join(resp(reply) for reply in replies)
    parsed = parse_in_chunks(data, len(replies), [cut for cut in cuts if cut < len(data)])
    assert parsed == [expected(reply) for reply in replies]


@given(replies=st.lists(reply_values, min_size=1, max_size=10))
@settings(max_examples=200, deadline=None)
def test_replies_parse_as_hiredis_parses_them(replies: list[Any]) -> None:
    """The same replies as hiredis's reader, error replies as their text."""
    hiredis = pytest.importorskip("hiredis")
    reader = hiredis.Reader(replyError=lambda text: ("error", text))
    data = b"".join(resp(reply) for reply in replies)
    reader.feed(data)
    theirs = [reader.gets() for _ in replies]
    parsed, offset = fast().parse_replies(data, 0, len(replies))
    assert offset == len(data)
    assert parsed == [expected(reply) for reply in theirs]


@given(data=st.binary(max_size=300), limit=st.integers(min_value=0, max_value=20))
@settings(max_examples=500, deadline=None)
def test_garbage_is_a_protocol_error_or_a_short_read_never_a_crash(data: bytes, limit: int) -> None:
    """Any bytes give replies (maybe fewer than asked), or ValueError; the offset stays in the buffer."""
    try:
        parsed, offset = fast().parse_replies(data, 0, limit)
    except ValueError:
        return
    assert len(parsed) <= limit
    assert 0 <= offset <= len(data)


@pytest.mark.parametrize(
    "data",
    [
        b"$536870913\r\n",
        b"*99999999999999999999\r\n",
        b"*9\r\n" * 20,
        b":12x\r\n",
        b"$3\r\nabcd\r\n",
        b"?\r\n",
    ],
    ids=["bulk too long", "count overflows", "too deep", "bad integer", "bulk without CRLF", "unknown type"],
)
def test_malformed_replies_are_protocol_errors(data: bytes) -> None:
    """Lengths out of range, nesting beyond the limit and bad framing raise ValueError."""
    with pytest.raises(ValueError, match="protocol error"):
        fast().parse_replies(data, 0, 1)


def test_a_reply_that_has_not_fully_arrived_is_left_for_the_next_read() -> None:
    """A bulk string or array cut short parses nothing and keeps the offset before it."""
    assert fast().parse_replies(b"$10\r\nabc", 0, 1) == ([], 0)
    assert fast().parse_replies(b":1\r\n*2\r\n:1\r\n", 0, 2) == ([1], 4)


# --- memory ----------------------------------------------------------------------------------

RECORDS = 100_000
BATCH = 500


def growth(work: Callable[[], None]) -> tuple[int, int]:
    """Traced bytes and gc objects added by ``work`` after a warm-up run."""
    work()
    gc.collect()
    objects = len(gc.get_objects())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before, len(gc.get_objects()) - objects


def test_packing_and_parsing_100000_records_leaks_nothing() -> None:
    """100,000 entries packed, measured and their replies parsed (errors too) leave no bytes or
    objects behind."""
    entries = {
        "logs": [
            {"v": "1", "body": f"record {n} caf\u00e9", "payload": b"\x00\xff" * (n % 7)}
            for n in range(BATCH)
        ]
    }
    trim = trim_arguments(trimming(), 0)
    replies = b"".join(
        b"$15\r\n1700000000000-%d\r\n" % (n % 10) if n % 50 else b"-ERR nope\r\n" for n in range(BATCH)
    )
    garbage = b":1\r\n$3\r\nabcd\r\n"

    def work() -> None:
        for _ in range(RECORDS // BATCH):
            fast().pack_xadds(entries, trim)
            fast().entry_sizes(entries, 64)
            with pytest.raises(TypeError):
                fast().entry_sizes({"logs": [{"f": 1}]}, 64)
            fast().pack_commands([("XADD", "logs", *trim, "*", "f", "v")] * 10)
            fast().parse_replies(replies, 0, BATCH)
            with pytest.raises(ValueError, match="protocol error"):
                fast().parse_replies(garbage, 0, 2)
            with pytest.raises(TypeError):
                fast().pack_xadds({"logs": [{"f": 1}]}, trim)

    traced, objects = growth(work)
    # A leak of one object or one byte per record would be 100,000 of them.
    assert traced < 64 * 1024, f"{traced} bytes more after {RECORDS} records"
    assert objects < 100, f"{objects} gc objects more after {RECORDS} records"


def test_encoding_100000_records_leaks_nothing() -> None:
    """100,000 records encoded in C, those it hands back and those whose reads raise included,
    leave no bytes or objects behind."""
    assert COMPILED is not None, "the compiled encoder is not active with the compiled path"
    attributes = BoundedAttributes(attributes={"s": "caf\u00e9", "i": 2**80, "f": 0.5, "t": ("a", "b")})
    shapes = [
        make_record("order placed \U0001f600", attributes, context=span_context(), event_name="e"),
        make_record("cut " * 40, {"n": float("nan")}),  # cut and non-finite: the pure path's
        make_record("plain", {"big": 10**4300, "x": [1, None, True]}),  # an int it declines
        make_record("negative ids", {"k": "v"}, context=span_context(trace_id=1, span_id=2)),
    ]
    shapes[3].log_record.trace_id = -1  # raises inside the C encoder, which then hands it back
    batch = [shapes[n % len(shapes)] for n in range(BATCH)]
    template = StreamKeyTemplate.parse("logs:{service.name}")
    handed_back: list[int] = []
    noting = noting_fallbacks(COMPILED, handed_back)
    BatchEncoder(template, 100, compiled=noting).encode(batch, 1, "0" * 22)
    assert len(handed_back) == 3 * BATCH // 4, "the shapes meant to fall back did not"

    def work() -> None:
        for _ in range(RECORDS // BATCH):
            BatchEncoder(template, 100, 600, compiled=COMPILED).encode(batch, 1, "0" * 22)

    traced, objects = growth(work)
    assert traced < 64 * 1024, f"{traced} bytes more after {RECORDS} records"
    assert objects < 100, f"{objects} gc objects more after {RECORDS} records"
    # A reference kept to a value it reads allocates nothing: count the references themselves.
    before = reference_counts(shapes)
    work()
    assert reference_counts(shapes) == before, "references to the records' values kept"


LOG_FIELDS = (
    "body",
    "timestamp",
    "observed_timestamp",
    "severity_number",
    "severity_text",
    "trace_id",
    "span_id",
    "trace_flags",
    "event_name",
)


def reference_counts(records: list[Any]) -> dict[str, int]:
    """sys.getrefcount of each object the encoder reads that no other code shares (not None,
    bools or small ints), by where it is."""
    counts: dict[str, int] = {}
    for n, record in enumerate(records):
        log = record.log_record
        attributes = log.attributes
        values = {
            "record": record,
            "log": log,
            "resource": record.resource,
            "scope": record.instrumentation_scope,
            "attributes": attributes,
            **{name: getattr(log, name) for name in LOG_FIELDS},
            **{f"attribute {key}": value for key, value in dict(attributes).items()},
        }
        for name, value in values.items():
            if value is not None and type(value) is not bool and not (type(value) is int and value < 257):
                counts[f"{n} {name}"] = sys.getrefcount(value)
    return counts


# --- against a server ------------------------------------------------------------------------


SERVER_COMMANDS: list[tuple[str | bytes, ...]] = [
    ("XADD", "s", "1-1", "f", "v"),
    ("XADD", "not-a-stream", "*", "f", "v"),
    ("XADD", "s", "1-1", "f", "v"),  # an id not above the last one: refused
    ("XADD", "s", "2-1", "f", b"\x00\r\n"),
    ("WAIT", "0", "0"),
]


def comparable(outcome: tuple[list[Any], BaseException | None]) -> list[Any]:
    """The replies, errors as (type, text); and the connection must have stayed in step."""
    replies, broken = outcome
    assert broken is None, f"the round trip broke the connection: {broken!r}"
    return [(type(reply), str(reply)) if isinstance(reply, BaseException) else reply for reply in replies]


def test_replies_from_a_server_read_at_once_as_redis_py_reads_them(
    redis_client: redis.Redis, redis_url: str
) -> None:
    """Entry ids, WRONGTYPE and syntax errors, WAIT's integer: the same replies, errors in place."""
    redis_client.set("not-a-stream", "x")
    pool = redis.ConnectionPool.from_url(redis_url, protocol=2)
    results = []
    try:
        for at_once in (False, True):
            connection = pool.get_connection()
            connection.send_packed_command([attempt.pack(connection, SERVER_COMMANDS)], check_health=False)
            assert reads_at_once(connection)
            if at_once:
                results.append(read_replies_at_once(connection, len(SERVER_COMMANDS), NOTHING_HEARD))
            else:
                results.append(read_replies(len(SERVER_COMMANDS), connection.read_response, NOTHING_HEARD))
            pool.release(connection)
            redis_client.delete("s")
    finally:
        pool.disconnect()
    pure, fast = (comparable(outcome) for outcome in results)
    assert fast == pure
    assert fast[1][0] is ResponseError
    assert "WRONGTYPE" in fast[1][1]


def test_async_replies_from_a_server_read_at_once_as_redis_py_reads_them(
    redis_client: redis.Redis, redis_url: str
) -> None:
    """The async twin: the same replies from redis.asyncio's reads and from one parse per read."""
    # Only hiredis's async parser lets the writer check that it holds no bytes of its own.
    with_hiredis = importlib.util.find_spec("hiredis") is not None
    redis_client.set("not-a-stream", "x")

    async def both() -> list[tuple[list[Any], BaseException | None]]:
        pool = redis.asyncio.ConnectionPool.from_url(redis_url, protocol=2)
        results = []
        try:
            for at_once in (False, True):
                connection = await pool.get_connection()
                await connection.send_packed_command([attempt.pack(connection, SERVER_COMMANDS)])
                assert reads_at_once_async(connection) is with_hiredis
                if at_once:
                    results.append(
                        await read_replies_at_once_async(connection, len(SERVER_COMMANDS), NOTHING_HEARD)
                    )
                else:
                    results.append(
                        await read_replies_async(
                            len(SERVER_COMMANDS), connection.read_response, NOTHING_HEARD
                        )
                    )
                await pool.release(connection)
                redis_client.delete("s")
        finally:
            await pool.disconnect()
        return results

    pure, fast = (comparable(outcome) for outcome in asyncio.run(both()))
    assert fast == pure
    assert fast[1][0] is ResponseError


def test_packed_is_its_count_long() -> None:
    """A Packed buffer counts as its commands where a command list would (WAIT, error fill)."""
    assert len(Packed(b"", 3)) == 3


# --------------------------------------------------------------------------
# Sending and receiving without letting go of the interpreter lock (plain sockets)
# --------------------------------------------------------------------------


@pytest.fixture
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, peer = socket.socketpair()
    ours.settimeout(5)  # as redis-py's sockets: a timeout, so the descriptor does not block
    try:
        yield ours, peer
    finally:
        ours.close()
        peer.close()


def test_recv_held_gives_what_arrived_none_when_nothing_did_and_empty_at_the_end(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = socket_pair
    assert fast().recv_held(ours.fileno(), 1024, 0.002) is None
    peer.sendall(b"+OK\r\n")
    assert fast().recv_held(ours.fileno(), 1024, 0.002) == b"+OK\r\n"
    peer.sendall(b"x" * 100)
    assert fast().recv_held(ours.fileno(), 60, 0.0) == b"x" * 60  # budget 0: what is there now
    assert fast().recv_held(ours.fileno(), 60, 0.0) == b"x" * 40
    peer.close()
    assert fast().recv_held(ours.fileno(), 1024, 0.002) == b""


def test_send_held_stops_at_its_budget_where_the_peer_stops_reading(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    """It sends what the socket takes; the offset says where the rest begins, and nothing else went out."""
    ours, peer = socket_pair
    data = bytes(range(256)) * 40_000  # 10 MB: more than the socket's buffers hold
    sent = fast().send_held(ours.fileno(), data, 0, 0.002)
    assert 0 < sent < len(data)
    peer.settimeout(5)
    received = bytearray()
    while len(received) < sent:
        received += peer.recv(1 << 20)
    assert bytes(received) == data[:sent]
    assert fast().send_held(ours.fileno(), b"tail", 0, 0.002) == 4


def test_held_io_errors_are_oserrors_and_bad_arguments_are_refused(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, peer = socket_pair
    with pytest.raises(ValueError, match="budget"):
        fast().recv_held(ours.fileno(), 10, 2.0)
    with pytest.raises(ValueError, match="offset"):
        fast().send_held(ours.fileno(), b"abc", 4, 0.0)
    with pytest.raises(ValueError, match="size"):
        fast().recv_held(ours.fileno(), 0, 0.0)
    peer.close()
    with pytest.raises(BrokenPipeError):
        fast().send_held(ours.fileno(), b"x" * 1_000_000, 0, 0.01)  # the peer is gone
    closed = socket.socket()
    fd = closed.fileno()
    closed.close()
    with pytest.raises(OSError, match="Bad file descriptor"):
        fast().recv_held(fd, 10, 0.0)
