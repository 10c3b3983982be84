"""One attempt: a batch of entries becomes one pipelined round trip, and its replies one result.

Shared by every writer (one server, Cluster, Sentinel; sync and async): the ``XADD`` commands
with their trimming, packing them into one buffer, ``WAIT`` when replicas must confirm, and
folding the replies into a ``WriteResult``. Every reply is checked: an accepted entry has its
stream entry id, an entry the server refuses for good (WRONGTYPE, a syntax error) is rejected, and
every other failure leaves the entry to be sent again. An entry whose command may have reached the
server before the failure (the reply never came) is marked unconfirmed: sending it again may
duplicate it, which readers undo by ``log.record.uid``, and it is never dropped as if it had
not landed.

Packing and reading replies have a compiled fast path (``_speedups``, when it is built): the
XADDs of a round trip become one buffer in one call, and the replies are parsed from the socket's
bytes in one call per read. On a plain socket it also sends and receives without letting go of
the interpreter lock while a healthy server answers (``HOLD_S``). It writes the same bytes and
gives the same replies as the pure path, which takes over wherever the fast path declines.

No retry loop here: the sender owns retries and the backoff between attempts (``backoff()``).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from redis import exceptions as rex
from redis.asyncio import SSLConnection
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ResponseError
from redis.utils import HIREDIS_AVAILABLE

from .._config import ExporterConfig
from .._errors import NotReplicatedError, Outcome, classify, describe, error_type, maybe_landed
from .._fast import Speedups, speedups
from .._index import TraceIndex
from .._keys import ShardRouter
from .._log import logger
from .._types import Clock, Command, EntryFields

# hiredis packs a command in C; redis-py's own packer adds a generator step per argument.
_pack_in_c: Callable[[Any], bytes] | None
try:
    from hiredis import pack_command
except ImportError:  # without the hiredis extra
    _pack_in_c = None
else:
    _pack_in_c = pack_command

# Between attempts after a failure: ~50 ms first, doubling, never more than 0.8 s, so the queue
# drains within a second of the server answering again.
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 0.8
# WAIT blocks for at most half of the attempt's time, and never more than this, so a master
# without enough replicas (e.g. one just demoted) leaves time to try the new one.
WAIT_TIMEOUT_CAP_S = 1.0
# A server answers WAIT up to one event-loop tick (100 ms at the default hz 10) after its timeout.
WAIT_REPLY_GRACE_S = 0.2


def longest_wait_s(config: ExporterConfig) -> float:
    """How long a healthy server may hold a round trip's last reply: WAIT's longest timeout."""
    return WAIT_TIMEOUT_CAP_S + WAIT_REPLY_GRACE_S if config.wait_replicas else 0.0


# One read from the socket while replies are parsed on the fast path (bytes).
READ_SIZE = 65536
# A healthy server answers a round trip of 512 entries within a few milliseconds. For up to one
# switch interval of the interpreter (5 ms by default: what any thread running Python may keep the
# lock for) the fast path sends and waits for replies without letting go of the interpreter lock:
# taking it back would wait for a busy application thread to give it up, up to that long each
# time. Past it, the socket waits the usual way, and other threads run while the server is slow.
HOLD_S = 0.005
# (position of the entry in the batch, its command)
Pending = list[tuple[int, Command]]


@dataclass(frozen=True, slots=True)
class Packed:
    """``count`` commands already packed into one RESP buffer (the fast path's XADDs)."""

    data: bytes
    count: int

    def __len__(self) -> int:
        return self.count


def backoff() -> EqualJitterBackoff:
    """The wait before the next attempt after ``failures`` failed ones: ``backoff().compute(failures)``."""
    return EqualJitterBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S)


@dataclass(slots=True)
class WriteResult:
    """What one attempt did with each entry of its batch.

    Positions are those of the batch laid out keys in order, entries in order within a key.
    A position in neither ``entry_ids`` nor ``rejected`` is worth another attempt.
    """

    count: int = 0
    entry_ids: dict[int, str] = field(default_factory=dict)
    """Written: position -> the stream entry id the server gave it."""
    rejected: dict[int, str] = field(default_factory=dict)
    """Refused for good (never worth another try): position -> error type."""
    unconfirmed: set[int] = field(default_factory=set)
    """Not confirmed, but the command may have reached the server (the reply never came)."""
    reason: str | None = None
    """Why something was not written, in words a person can act on."""
    error_type: str | None = None
    """The low-cardinality name of that failure (``error.type``)."""

    @property
    def written(self) -> int:
        return len(self.entry_ids)

    @property
    def ok(self) -> bool:
        return len(self.entry_ids) == self.count


def xadd_commands(
    entries: Mapping[str, Sequence[EntryFields]], config: ExporterConfig, now_ms: int
) -> list[Command]:
    """One ``XADD`` per entry, with the configured trimming."""
    trim = trim_arguments(config, now_ms)
    return [
        ("XADD", key, *trim, "*", *chain.from_iterable(fields.items()))
        for key, key_entries in entries.items()
        for fields in key_entries
    ]


def trim_arguments(config: ExporterConfig, now_ms: int) -> tuple[str, ...]:
    """The trimming arguments of every ``XADD``: ``MAXLEN ~ N``, ``MINID ~ id`` or none."""
    if config.maxlen:
        return ("MAXLEN", "~", str(config.maxlen))
    if config.retention_s is not None:
        return ("MINID", "~", f"{max(now_ms - int(config.retention_s * 1000), 0)}-0")
    return ()


def pack_xadds(
    entries: Mapping[str, Sequence[EntryFields]], config: ExporterConfig, now_ms: int
) -> Packed | None:
    """``pack(connection, xadd_commands(entries, config, now_ms))`` in one call on the fast path,
    without building the commands; None when the fast path is off or declines (the caller then
    builds the commands)."""
    if speedups is None:
        return None
    try:
        data = speedups.pack_xadds(entries, trim_arguments(config, now_ms))
    except Exception as error:  # a type it does not pack: the pure path decides what to do with it
        logger.debug("Packing on the pure-Python path: %r", error)
        return None
    return Packed(data, sum(len(key_entries) for key_entries in entries.values()))


def pack(connection: Any, commands: Sequence[Command] | Packed) -> bytes:
    """Every command in one buffer (RESP), to go out in one write."""
    if isinstance(commands, Packed):
        return commands.data
    if speedups is not None:
        try:
            return speedups.pack_commands(commands)
        except Exception as error:  # as in pack_xadds
            logger.debug("Packing on the pure-Python path: %r", error)
    if _pack_in_c is not None:
        return b"".join([_pack_in_c(command) for command in commands])
    return b"".join(connection.pack_commands(commands))


def outcome(
    positions: Sequence[int], replies: Sequence[Any], *, cluster_set_by: str | None = None
) -> WriteResult:
    """Fold one attempt's replies (an exception in place of each failed one) into a result;
    ``positions``: each reply's entry's position in the batch."""
    result = WriteResult(count=len(positions))
    for position, reply in zip(positions, replies, strict=True):
        if not isinstance(reply, BaseException):
            result.entry_ids[position] = reply.decode() if isinstance(reply, bytes) else str(reply)
            continue
        result.reason = describe(reply, cluster_set_by=cluster_set_by)
        result.error_type = error_type(reply)
        if classify(reply) is Outcome.REJECTED:
            result.rejected[position] = result.error_type
        elif maybe_landed(reply):
            result.unconfirmed.add(position)
    return result


Heard = Callable[[], None]
"""Told of every reply as it comes: the sign that the server is alive (``Delivery.heard``)."""


def read_replies(count: int, read: Callable[[], Any], heard: Heard) -> tuple[list[Any], BaseException | None]:
    """``count`` replies; an error reply is kept in its place (it was read whole, the
    connection is still in step). When the connection itself fails, the replies read so far
    stand, the rest are that failure, and it is returned second (the connection is broken)."""
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(read())
        except ResponseError as error:
            replies.append(error)
        except Exception as error:
            replies.extend([error] * (count - len(replies)))
            return replies, error
        heard()
    return replies, None


def reads_at_once(connection: Any) -> bool:
    """Whether ``read_replies_at_once`` can read ``connection``'s replies: the fast path is on,
    the connection speaks RESP2 over a socket of its own, and its parser holds no bytes."""
    if speedups is None or getattr(connection, "_sock", None) is None:
        return False
    if getattr(connection, "protocol", 2) not in (2, "2", None):
        return False
    parser = getattr(connection, "_parser", None)
    reader: Any = getattr(parser, "_reader", None)
    if hasattr(reader, "has_data"):  # hiredis
        return not reader.has_data() and getattr(parser, "_next_response", False) is False
    buffer: Any = getattr(parser, "_buffer", None)  # redis-py's PythonParser: a SocketBuffer
    return hasattr(buffer, "unread_bytes") and buffer.unread_bytes() == 0


def reads_at_once_async(connection: Any) -> bool:
    """The async twin of ``reads_at_once``: a redis.asyncio connection with hiredis's parser
    (the pure-Python async parser keeps bytes of its own that are not ours to check)."""
    if speedups is None or getattr(connection, "_reader", None) is None:
        return False
    if getattr(connection, "protocol", 2) not in (2, "2", None):
        return False
    reader: Any = getattr(getattr(connection, "_parser", None), "_reader", None)
    return hasattr(reader, "has_data") and not reader.has_data()


class Replies:
    """The replies of one round trip, parsed from the bytes as they arrive (fast path)."""

    def __init__(self, speedups: Speedups, count: int) -> None:
        self._parse = speedups.parse_replies
        self.count = count
        self.replies: list[Any] = []
        self._pending = b""
        self.broken: BaseException | None = None
        """What ended the reading early, as redis-py would raise it."""
        self._finished: tuple[list[Any], BaseException | None] | None = None

    @property
    def done(self) -> bool:
        return len(self.replies) >= self.count

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            raise rex.ConnectionError("Connection closed by server.")
        data = self._pending + chunk if self._pending else chunk
        parsed, offset = self._parse(data, 0, self.count - len(self.replies))
        self.replies.extend(parsed)
        self._pending = data[offset:]

    def failure(self, connection: Any, error: Exception) -> BaseException:
        """``error`` as redis-py's read_response would raise it."""
        if isinstance(error, TimeoutError):
            return rex.TimeoutError(f"Timeout reading from {_host(connection)}")
        if isinstance(error, ValueError):  # the extension's protocol errors
            return rex.InvalidResponse(f"{error} from {_host(connection)}")
        if isinstance(error, OSError):
            return rex.ConnectionError(f"Error while reading from {_host(connection)} : {error.args}")
        return error

    def finish(self, connection: Any) -> tuple[list[Any], BaseException | None]:
        """The replies, error replies made into redis-py's exceptions: kept in place, or, for those
        redis-py raises as connection errors, ending the round trip as its read would; and what
        broke the connection. The same answer each time it is asked."""
        if self._finished is None:
            self._finished = self._made(connection, self.broken)
        return self._finished

    def _made(self, connection: Any, broken: BaseException | None) -> tuple[list[Any], BaseException | None]:
        replies = self.replies
        if broken is None and self._pending:  # more than was asked for: out of step
            broken = rex.InvalidResponse(f"{len(self._pending)} unexpected bytes after the replies")
        for position, reply in enumerate(replies):
            if isinstance(reply, str):  # an error reply
                made: BaseException = connection._parser.parse_error(reply)
                if not isinstance(made, ResponseError):
                    replies[position:] = [made] * (self.count - position)
                    return replies, made
                replies[position] = made
        if broken is not None:
            replies.extend([broken] * (self.count - len(replies)))
        return replies, broken


def held_socket(connection: Any) -> socket.socket | None:
    """``connection``'s socket when the fast path may use it holding the lock: a plain one (the
    bytes of a TLS socket are not the protocol's)."""
    sock = getattr(connection, "_sock", None)
    return sock if speedups is not None and type(sock) is socket.socket else None


def may_hold(pool: Any) -> bool:
    """Whether ``held_transport`` can accept connections of a redis.asyncio ``pool`` at all:
    plain ones (not TLS), read by hiredis's parser (``reads_at_once_async``)."""
    connection_class = getattr(pool, "connection_class", None)
    return (
        speedups is not None
        and HIREDIS_AVAILABLE
        and isinstance(connection_class, type)
        and not issubclass(connection_class, SSLConnection)
    )


def held_transport(connection: Any) -> int | None:
    """The async twin of ``held_socket``: the file descriptor of a redis.asyncio connection's plain
    socket when the fast path may send and read on it directly, holding the lock: connected,
    nothing buffered in either direction, nothing in the parser, so what the socket gives next is
    the replies to what is sent next."""
    if speedups is None or connection is None or not reads_at_once_async(connection):
        return None
    reader, writer = connection._reader, connection._writer
    transport = getattr(writer, "transport", None)
    if transport is None or transport.is_closing() or transport.get_write_buffer_size():
        return None
    buffered = getattr(reader, "_buffer", None)
    if transport.get_extra_info("sslcontext") is not None or buffered is None or buffered or reader.at_eof():
        return None
    sock = transport.get_extra_info("socket")
    return None if sock is None else int(sock.fileno())


def start_held(connection: Any, data: bytes, count: int, *, heard: Heard, hold_until: float) -> Replies:
    """The beginning of a round trip on an asyncio connection (ask ``held_transport`` first),
    without awaiting: ``data`` is sent and the replies read holding the lock until ``hold_until``.
    What the socket does not take goes to the connection's transport; the replies still to come
    arrive on its stream (``read_rest_async``)."""
    fd = held_transport(connection)
    if fd is None or speedups is None:
        raise RuntimeError("not a connection the fast path may hold")
    replies = Replies(speedups, count)
    try:
        sent = speedups.send_held(fd, data, 0, _left(hold_until))
        if sent < len(data):
            connection._writer.write(memoryview(data)[sent:])
        else:
            heard()  # as in send_packed
        while not replies.done:
            chunk = speedups.recv_held(fd, READ_SIZE, _left(hold_until))
            if chunk is None:
                break
            replies.feed(chunk)
            heard()
    except Exception as error:
        replies.broken = replies.failure(connection, error)
    return replies


async def read_rest_async(connection: Any, replies: Replies, heard: Heard) -> None:
    """Read ``replies`` from the connection's stream until done; what broke it ends in ``broken``."""
    try:
        while not replies.done and replies.broken is None:
            replies.feed(await connection._reader.read(READ_SIZE))
            heard()
    except Exception as error:
        replies.broken = replies.failure(connection, error)


def send_packed(
    connection: Any, chunks: list[bytes], hold_until: float, heard: Heard, *, patient: bool = False
) -> memoryview | None:
    """``connection.send_packed_command(chunks)``; on a ``held_socket``, what the socket takes
    until ``hold_until`` (``time.monotonic()``) is sent holding the lock, the rest the usual way.
    ``patient``: the rest only while the socket keeps taking it (each part within its timeout),
    and what is left then is returned (all of it on a TLS socket); None when all was sent."""
    sock = held_socket(connection)
    if sock is None and not patient:
        connection.send_packed_command(chunks, check_health=False)
        return None
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if sock is None or speedups is None:  # (a TLS socket) it takes nothing while the lock is held
        return memoryview(data)
    unsent = memoryview(data)
    try:
        unsent = unsent[speedups.send_held(sock.fileno(), data, 0, _left(hold_until)) :]
        if not patient:
            sock.sendall(unsent)
            return None
        while unsent:
            unsent = unsent[sock.send(unsent) :]
            heard()  # the server reads what we send
    except TimeoutError as error:  # the socket's timeout
        if not patient:
            raise _send_error(error) from error
        return unsent
    except OSError as error:
        raise _send_error(error) from error
    return None


def send_rest(sock: socket.socket, unsent: memoryview) -> None:
    """What a patient ``send_packed`` left unsent, the usual way (the socket's timeout applies)."""
    try:
        sock.sendall(unsent)
    except OSError as error:
        raise _send_error(error) from error


def _send_error(error: OSError) -> Exception:
    """``error`` as redis-py's send_packed_command would raise it."""
    if isinstance(error, TimeoutError):  # the socket's timeout
        return rex.TimeoutError("Timeout writing to socket")
    return rex.ConnectionError(f"Error while writing to socket. {error.args}")


def _left(until: float) -> float:
    return min(max(until - time.monotonic(), 0.0), HOLD_S)


def _read_into(replies: Replies, connection: Any, heard: Heard, hold_until: float) -> None:
    """Read and parse until ``replies`` is done: on a ``held_socket`` holding the lock until
    ``hold_until``, then (and on any other socket) the usual way; socket errors propagate."""
    sock = connection._sock
    held = speedups if held_socket(connection) is not None else None
    while not replies.done and replies.broken is None:
        chunk = None if held is None else held.recv_held(sock.fileno(), READ_SIZE, _left(hold_until))
        replies.feed(sock.recv(READ_SIZE) if chunk is None else chunk)
        heard()


def read_replies_at_once(
    connection: Any, count: int, heard: Heard, hold_until: float = 0.0, replies: Replies | None = None
) -> tuple[list[Any], BaseException | None]:
    """``read_replies(count, connection.read_response)`` on the fast path: the replies are read
    from the socket and parsed in one call per read (ask ``reads_at_once`` first). On a
    ``held_socket`` it waits for them holding the lock until ``hold_until``. ``replies``: what
    ``read_patiently`` began."""
    if speedups is None:
        return read_replies(count, connection.read_response, heard)
    replies = replies or Replies(speedups, count)
    try:
        _read_into(replies, connection, heard, hold_until)
    except Exception as error:
        replies.broken = replies.failure(connection, error)
    return replies.finish(connection)


def read_patiently(connection: Any, count: int, heard: Heard, hold_until: float) -> Replies | None:
    """The replies that arrive on a ``held_socket`` while they keep coming: read holding the lock
    until ``hold_until``, then each within the socket's timeout. ``read_replies_at_once`` reads
    the rest, or reports what broke the connection. None: not a held socket."""
    if held_socket(connection) is None or speedups is None:
        return None
    replies = Replies(speedups, count)
    try:
        _read_into(replies, connection, heard, hold_until)
    except TimeoutError:
        pass  # quiet for the socket's timeout: the rest is for read_replies_at_once
    except Exception as error:
        replies.broken = replies.failure(connection, error)
    return replies


async def read_replies_at_once_async(
    connection: Any, count: int, heard: Heard
) -> tuple[list[Any], BaseException | None]:
    """The async twin of ``read_replies_at_once``, reading the connection's stream (ask
    ``reads_at_once_async`` first). Like ``read_replies_async`` it sets no timer per read: the
    caller bounds the round trip."""
    if speedups is None:
        return await read_replies_async(count, connection.read_response, heard)
    replies = Replies(speedups, count)
    await read_rest_async(connection, replies, heard)
    return replies.finish(connection)


def _host(connection: Any) -> str:
    """The server, as redis-py names it in its own read errors."""
    return str(connection._host_error()) if hasattr(connection, "_host_error") else "the server"


async def read_replies_async(
    count: int, read: Callable[[], Any], heard: Heard
) -> tuple[list[Any], BaseException | None]:
    """The async twin of ``read_replies``."""
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(await read())
        except ResponseError as error:
            replies.append(error)
        except Exception as error:
            replies.extend([error] * (count - len(replies)))
            return replies, error
        heard()
    return replies, None


class WriterBase:
    """Everything a writer does but I/O: commands, shards, WAIT, the trace index."""

    _packs_xadds = True
    """Whether ``write`` may send the XADDs packed; False where each command is routed by its key."""
    _one_round_trip = True
    """Whether an attempt is one round trip to one server, which ``start`` can begin: not on a
    Cluster (a round trip per master) or through Sentinel (it may ask the sentinels first)."""

    def __init__(self, config: ExporterConfig, *, clock: Clock, heard: Heard) -> None:
        self._config = config
        self._clock = clock
        self._heard = heard
        self._index = TraceIndex.for_config(config)
        self._shards = ShardRouter(config.shards) if config.shards > 1 else None

    def _layout(
        self, entries: Mapping[str, Sequence[EntryFields]]
    ) -> tuple[Mapping[str, Sequence[EntryFields]], Sequence[int]]:
        """The entries as written (by shard key when sharded) and each one's position in
        ``entries``: sharding is the writer's business, not the caller's."""
        if self._shards is None:
            return entries, range(sum(len(key_entries) for key_entries in entries.values()))
        return self._shards.split(entries)

    def _xadds(
        self, entries: Mapping[str, Sequence[EntryFields]]
    ) -> tuple[Sequence[int], Packed | list[Command]]:
        """Each entry's position and the ``XADD`` commands, packed when the fast path allows."""
        now_ms = time.time_ns() // 1_000_000
        written, positions = self._layout(entries)
        packed = pack_xadds(written, self._config, now_ms) if self._packs_xadds else None
        return positions, packed if packed is not None else xadd_commands(written, self._config, now_ms)

    def _pending(self, entries: Mapping[str, Sequence[EntryFields]]) -> Pending:
        """Each entry's position and its ``XADD`` command, for writers that split the commands."""
        now_ms = time.time_ns() // 1_000_000
        written, positions = self._layout(entries)
        return list(zip(positions, xadd_commands(written, self._config, now_ms), strict=True))

    def _outcome(self, positions: Sequence[int], replies: Sequence[Any]) -> WriteResult:
        return outcome(positions, replies, cluster_set_by=self._config.cluster_set_by)

    def _index_commands(
        self, entries: Mapping[str, Sequence[EntryFields]], result: WriteResult
    ) -> list[Command]:
        """The per-trace index commands for what ``result`` wrote (none when the index is off)."""
        if self._index is None or not result.entry_ids:
            return []
        return self._index.commands(entries, result.entry_ids)

    def _index_report(self, outcome: Sequence[Any] | BaseException) -> None:
        if self._index is not None:
            self._index.report(outcome)

    def _wait_ms(self, timeout: float) -> int | None:
        """The WAIT timeout for a round trip that may take ``timeout`` seconds; None without WAIT."""
        if not self._config.wait_replicas:
            return None
        return max(1, int(min(timeout - WAIT_REPLY_GRACE_S, timeout / 2, WAIT_TIMEOUT_CAP_S) * 1000))

    def _with_wait(self, commands: Sequence[Command], wait_ms: int | None) -> list[Command]:
        return [*commands, *self._wait(wait_ms)]

    def _wait(self, wait_ms: int | None) -> list[Command]:
        """The ``WAIT`` command that ends a round trip, or none."""
        if wait_ms is None:
            return []
        return [("WAIT", str(self._config.wait_replicas), str(wait_ms))]

    def _confirmed(self, replies: list[Any], wait_ms: int | None) -> list[Any]:
        """The replies of the commands before WAIT; without enough replicas, an accepted entry
        counts as not written (WAIT's own error, or ``NotReplicatedError``)."""
        if wait_ms is None:
            return replies
        *replies, acknowledged = replies
        wanted = self._config.wait_replicas
        if isinstance(acknowledged, int) and acknowledged >= wanted:
            return replies
        shortfall = (
            acknowledged
            if isinstance(acknowledged, BaseException)
            else NotReplicatedError(acknowledged if isinstance(acknowledged, int) else 0, wanted, wait_ms)
        )
        return [reply if isinstance(reply, BaseException) else shortfall for reply in replies]
