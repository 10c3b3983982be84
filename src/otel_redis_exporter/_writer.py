"""Writes encoded entries with XADD: one pipelined round trip per attempt, one deadline per export.

The retry loop is shared; a writer only says how one attempt sends commands and reads replies.
Every reply is checked: entries the server accepted are never sent again, entries refused for a
transient reason (connection lost, LOADING, BUSY, TRYAGAIN, MASTERDOWN, READONLY, timeouts) are
retried with exponential backoff and jitter while the deadline allows, and entries refused for a
permanent reason (WRONGTYPE, NOPERM, OOM, a wrong password) fail at once.

With ``wait_replicas`` every round trip ends with ``WAIT``; entries are only counted as written
once enough replicas acknowledged them, otherwise they are sent again (which may duplicate them).
Cluster writers send one pipeline per master and follow MOVED and ASK; Sentinel writers ask the
sentinels where the master is at least once a second and after every failed attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from redis import exceptions as rex
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ResponseError

from ._client import bound_idle_timeouts, bound_timeouts, sentinel_pools
from ._config import Address, ExporterConfig
from ._errors import NotReplicatedError, Outcome, SlotMovingError, classify, describe, error_type
from ._formats import EntryFields
from ._index import TraceIndex
from ._keys import ShardRouter

# hiredis packs a command in C; redis-py's own packer adds a generator step per argument.
_pack_in_c: Callable[[Any], bytes] | None
try:
    from hiredis import pack_command
except ImportError:  # without the hiredis extra
    _pack_in_c = None
else:
    _pack_in_c = pack_command

# First retry after ~50 ms, doubling, never more than 1 s between attempts.
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 1.0
# WAIT blocks for at most half of what is left of the deadline, and never more than this, so a
# master without enough replicas (e.g. one just demoted) leaves time to try the new one.
WAIT_TIMEOUT_CAP_S = 1.0
# A server answers WAIT up to one event-loop tick (100 ms at the default hz 10) after its timeout:
# keep that much of the deadline free, and do not start a WAIT attempt with less than twice it left.
WAIT_REPLY_GRACE_S = 0.2
# Redirects (MOVED, ASK) followed for one entry within one attempt before it counts as failed.
MAX_REDIRECTS = 5
# How often a Sentinel writer asks where the master is, besides after every failed attempt.
MASTER_CHECK_INTERVAL_S = 1.0

Command = tuple[str | bytes, ...]
Clock = Callable[[], float]


@dataclass(slots=True)
class WriteResult:
    """How many entries the server accepted, how many were given up, and why.

    ``entry_ids`` maps an entry's position in the batch (keys in order, entries in order within a
    key, as ``xadd_commands`` lays them out) to the stream entry id the server gave it.
    """

    written: int = 0
    failed: int = 0
    reason: str | None = None
    attempts: int = 0
    entry_ids: dict[int, str] = field(default_factory=dict)
    rejected: dict[int, str] = field(default_factory=dict)
    """Positions the server refused for good, with the error type (never worth another try)."""

    @property
    def ok(self) -> bool:
        return self.failed == 0


def xadd_commands(
    entries: Mapping[str, Sequence[EntryFields]], config: ExporterConfig, now_ms: int
) -> list[Command]:
    """One ``XADD`` per entry, with the configured trimming."""
    if config.maxlen:
        trim: tuple[str, ...] = ("MAXLEN", "~", str(config.maxlen))
    elif config.retention_s is not None:
        trim = ("MINID", "~", f"{max(now_ms - int(config.retention_s * 1000), 0)}-0")
    else:
        trim = ()
    return [
        ("XADD", key, *trim, "*", *chain.from_iterable(fields.items()))
        for key, key_entries in entries.items()
        for fields in key_entries
    ]


Pending = list[tuple[int, Command]]


def pack(connection: Any, commands: Sequence[Command]) -> bytes:
    """Every command in one buffer (RESP), to go out in one write."""
    if _pack_in_c is not None:
        return b"".join([_pack_in_c(command) for command in commands])
    return b"".join(connection.pack_commands(commands))


class _Progress:
    """Folds the replies of each attempt into one result."""

    def __init__(self) -> None:
        self.result = WriteResult()
        self.transient_reason: str | None = None

    def absorb(self, pending: Pending, replies: Sequence[Any]) -> Pending:
        """Count accepted and permanently refused entries; return those worth another attempt."""
        self.result.attempts += 1
        retry: Pending = []
        for item, reply in zip(pending, replies, strict=True):
            if not isinstance(reply, BaseException):
                self.result.written += 1
                self.result.entry_ids[item[0]] = reply.decode() if isinstance(reply, bytes) else str(reply)
                continue
            outcome = classify(reply)
            if outcome is Outcome.TRANSIENT:
                self.transient_reason = describe(reply)
                retry.append(item)
                continue
            self.result.failed += 1
            self.result.reason = describe(reply)
            if outcome is Outcome.REJECTED:
                self.result.rejected[item[0]] = error_type(reply)
        return retry

    def give_up(self, pending: Pending, why: str) -> WriteResult:
        if pending:
            self.result.failed += len(pending)
            self.result.reason = f"{self.transient_reason or 'no reply'} ({why})"
        return self.result


def _read_replies(count: int, read: Callable[[], Any]) -> tuple[list[Any], BaseException | None]:
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
    return replies, None


async def _read_replies_async(count: int, read: Callable[[], Any]) -> tuple[list[Any], BaseException | None]:
    """The async twin of ``_read_replies``."""
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(await read())
        except ResponseError as error:
            replies.append(error)
        except Exception as error:
            replies.extend([error] * (count - len(replies)))
            return replies, error
    return replies, None


@dataclass(slots=True)
class _InFlight:
    """Commands sent on a connection whose replies are still to be read."""

    pool: Any
    connection: Any
    count: int
    wait_ms: int | None


class _WriterBase:
    """Everything but I/O: commands, backoff, deadline, shutdown."""

    def __init__(self, config: ExporterConfig, *, clock: Clock, stop: threading.Event) -> None:
        self._config = config
        self._clock = clock
        self._stop = stop
        self._backoff = EqualJitterBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S)
        self._index = TraceIndex.for_config(config)
        self._shards = ShardRouter(config.shards) if config.shards > 1 else None

    def _pending(self, entries: Mapping[str, Sequence[EntryFields]]) -> Pending:
        now_ms = time.time_ns() // 1_000_000
        if self._shards is None:
            return list(enumerate(xadd_commands(entries, self._config, now_ms)))
        # Positions stay those of ``entries``: sharding is the writer's business, not the caller's.
        sharded, positions = self._shards.split(entries)
        return list(zip(positions, xadd_commands(sharded, self._config, now_ms), strict=True))

    def _wait_ms(self, timeout: float) -> int | None:
        """The WAIT timeout for a round trip that may take ``timeout`` seconds; None without WAIT."""
        if not self._config.wait_replicas:
            return None
        return max(1, int(min(timeout - WAIT_REPLY_GRACE_S, timeout / 2, WAIT_TIMEOUT_CAP_S) * 1000))

    def _with_wait(self, commands: Sequence[Command], wait_ms: int | None) -> list[Command]:
        if wait_ms is None:
            return list(commands)
        return [*commands, ("WAIT", str(self._config.wait_replicas), str(wait_ms))]

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

    def _delay(self, attempts: int, deadline: float) -> float | None:
        """Seconds to wait before the next attempt, or None when the deadline does not allow one."""
        delay: float = self._backoff.compute(attempts)
        remaining = deadline - self._clock()
        needed = 2 * WAIT_REPLY_GRACE_S if self._config.wait_replicas else 0.0
        if self._stop.is_set() or remaining <= delay + needed:
            return None
        return delay

    def _why_stopped(self) -> str:
        if self._stop.is_set():
            return "exporter shut down"
        return f"gave up at the {self._config.timeout_s:g} s export deadline"


class SyncWriter(_WriterBase):
    """Writes through a redis-py connection pool: the whole batch goes out in one ``sendall``."""

    def __init__(self, config: ExporterConfig, pool: Any, *, clock: Clock, stop: threading.Event) -> None:
        super().__init__(config, clock=clock, stop=stop)
        self._pool = pool

    def write(self, entries: Mapping[str, Sequence[EntryFields]], deadline: float) -> WriteResult:
        """Write ``entries`` (stream key -> entries) before ``deadline`` (on the writer's clock)."""
        progress = _Progress()
        pending = self._pending(entries)
        while pending:
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            try:
                replies: Sequence[Any] = self._send([command for _, command in pending], remaining)
            except Exception as error:
                replies = [error] * len(pending)
            pending = progress.absorb(pending, replies)
            delay = self._delay(progress.result.attempts, deadline) if pending else None
            if delay is None or self._stop.wait(delay):
                break
        result = progress.give_up(pending, self._why_stopped())
        self._write_index(entries, result, deadline)
        return result

    def _write_index(
        self, entries: Mapping[str, Sequence[EntryFields]], result: WriteResult, deadline: float
    ) -> None:
        """One more round trip for the per-trace index, when it is on; failures are only logged."""
        commands = self._index.commands(entries, result.entry_ids) if self._index is not None else []
        if self._index is None or not commands:
            return
        try:
            self._index.report(self._send(commands, deadline - self._clock()))
        except Exception as error:
            self._index.report(error)

    def _send(self, commands: list[Command], timeout: float) -> list[Any]:
        """One round trip: pack every command into one buffer, send it, read every reply."""
        return self._receive(self._transmit(self._pool, commands, timeout))

    def _transmit(self, pool: Any, commands: Sequence[Command], timeout: float) -> _InFlight:
        """Send ``commands`` (and WAIT) as one buffer on a connection of ``pool``."""
        bound_timeouts(pool, None, timeout)
        connection = pool.get_connection()
        wait_ms = self._wait_ms(timeout)
        sent = self._with_wait(commands, wait_ms)
        try:
            bound_timeouts(pool, connection, timeout)
            connection.send_packed_command([pack(connection, sent)], check_health=False)
        except BaseException:
            connection.disconnect()
            pool.release(connection)
            raise
        return _InFlight(pool, connection, len(sent), wait_ms)

    def _receive(self, flight: _InFlight) -> list[Any]:
        """Read every reply of ``flight`` and give its connection back."""
        connection = flight.connection
        try:
            replies, broken = _read_replies(flight.count, connection.read_response)
            if broken is not None:
                connection.disconnect()
        except BaseException:
            connection.disconnect()
            raise
        finally:
            flight.pool.release(connection)
        return self._confirmed(replies, flight.wait_ms)

    def close(self) -> None:
        self._pool.disconnect()


class AsyncWriter(_WriterBase):
    """The async twin, on redis.asyncio: one pipeline per stream key, the keys written concurrently.

    It lives on the exporter's event loop; only ``wake`` may be called from another thread.
    """

    def __init__(self, config: ExporterConfig, pool: Any, *, clock: Clock, stop: threading.Event) -> None:
        super().__init__(config, clock=clock, stop=stop)
        self._pool = pool
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Cut a backoff wait short (call on the loop, e.g. through ``call_soon_threadsafe``)."""
        self._woken.set()

    async def write(self, entries: Mapping[str, Sequence[EntryFields]], deadline: float) -> WriteResult:
        """Write ``entries`` (stream key -> entries) before ``deadline`` (on the writer's clock)."""
        progress = _Progress()
        pending = self._pending(entries)
        while pending:
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            replies = await self._send_by_key(pending, remaining)
            pending = progress.absorb(pending, replies)
            delay = self._delay(progress.result.attempts, deadline) if pending else None
            if delay is None or await self._woken_within(delay):
                break
        result = progress.give_up(pending, self._why_stopped())
        await self._write_index(entries, result, deadline)
        return result

    async def _write_index(
        self, entries: Mapping[str, Sequence[EntryFields]], result: WriteResult, deadline: float
    ) -> None:
        """The async twin of ``SyncWriter._write_index``."""
        commands = self._index.commands(entries, result.entry_ids) if self._index is not None else []
        if self._index is None or not commands:
            return
        try:
            self._index.report(await self._send(commands, deadline - self._clock()))
        except Exception as error:
            self._index.report(error)

    async def _woken_within(self, delay: float) -> bool:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._woken.wait(), delay)
        return self._stop.is_set()

    async def _send_by_key(self, pending: Pending, timeout: float) -> list[Any]:
        """Each key's commands on a connection of their own, all keys at once; replies in order."""
        by_key: dict[str | bytes, list[int]] = {}
        for slot, (_, command) in enumerate(pending):
            by_key.setdefault(command[1], []).append(slot)
        groups = list(by_key.values())
        outcomes = await asyncio.gather(
            *(self._send([pending[slot][1] for slot in slots], timeout) for slots in groups),
            return_exceptions=True,
        )
        replies: list[Any] = [None] * len(pending)
        for slots, outcome in zip(groups, outcomes, strict=True):
            for position, slot in enumerate(slots):
                replies[slot] = outcome if isinstance(outcome, BaseException) else outcome[position]
        return replies

    async def _send(self, commands: list[Command], timeout: float, pool: Any = None) -> list[Any]:
        """One round trip on one connection (of ``pool``, the writer's own by default), bounded
        by ``timeout`` as a whole."""
        wait_ms = self._wait_ms(timeout)
        sent = self._with_wait(commands, wait_ms)
        target = self._pool if pool is None else pool
        replies = await asyncio.wait_for(self._round_trip(target, sent), timeout)
        return self._confirmed(replies, wait_ms)

    async def _round_trip(self, pool: Any, commands: list[Command]) -> list[Any]:
        connection = await pool.get_connection()
        try:
            await connection.send_packed_command([pack(connection, commands)], check_health=False)
            # No timer per reply (math.inf): _send bounds the whole round trip with one.
            read = functools.partial(connection.read_response, timeout=math.inf)
            replies, broken = await _read_replies_async(len(commands), read)
            if broken is not None:
                await connection.disconnect()
            return replies
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)

    async def close(self) -> None:
        await self._pool.disconnect()


# --------------------------------------------------------------------------
# Redis Cluster: one pipeline per master, MOVED and ASK followed within the attempt
# --------------------------------------------------------------------------


def _redirect(reply: Any) -> tuple[str, Address] | None:
    """``("MOVED" | "ASK", (host, port))`` when ``reply`` is a cluster redirect."""
    if isinstance(reply, rex.AskError):  # MovedError is an AskError
        kind = "MOVED" if isinstance(reply, rex.MovedError) else "ASK"
        return kind, (str(reply.host), int(reply.port))
    if isinstance(reply, ResponseError):
        # Parsers that do not know cluster errors leave them as "MOVED 3999 10.0.0.2:6379".
        kind, _, rest = str(reply).partition(" ")
        host, _, port = rest.partition(" ")[2].rpartition(":")
        if kind in ("MOVED", "ASK") and host and port.isdigit():
            return kind, (host, int(port))
    return None


@dataclass(slots=True)
class _Route:
    """Commands of one attempt that go to one node (with ASKING before each, after an ASK)."""

    name: str
    pool: Any
    asking: bool
    indices: list[int] = field(default_factory=list)


class _Redirects:
    """Where each command of one attempt goes, and what came back: no I/O here.

    ``plan`` groups the open commands by master (or by ASK target); ``absorb`` keeps the final
    replies and reopens redirected commands; MOVED and a lost node mark the slot map stale.
    """

    def __init__(self, commands: Sequence[Command]) -> None:
        self.commands = commands
        self.replies: list[Any] = [None] * len(commands)
        self.open = list(range(len(commands)))
        self.asks: dict[int, Address] = {}
        self.hops = 0
        self.stale = False

    def plan(self, nodes: Any) -> list[_Route]:
        routes: dict[tuple[str, bool], _Route] = {}
        by_key: dict[str, tuple[Any, str]] = {}  # a batch has few keys: look each up once
        for index in self.open:
            ask = self.asks.get(index)
            key = str(self.commands[index][1])  # the stream key: always text
            if ask is None and key in by_key:
                target, why = by_key[key]
            else:
                try:
                    target = nodes.pool_at(ask) if ask is not None else nodes.pool_for(key)
                except Exception as error:  # a slot no master serves right now
                    target, why = None, str(error)
                else:
                    why = f"ASK to {ask[0]}:{ask[1]}, a node the slot map does not know" if ask else ""
                if ask is None:
                    by_key[key] = target, why
            if target is None:
                self.replies[index] = SlotMovingError(why)
                self.stale = True
                continue
            name, pool = target
            asking = ask is not None
            routes.setdefault((name, asking), _Route(name, pool, asking)).indices.append(index)
        self.open, self.asks = [], {}
        self.hops += 1
        return list(routes.values())

    def commands_of(self, route: _Route) -> list[Command]:
        if not route.asking:
            return [self.commands[index] for index in route.indices]
        return [command for index in route.indices for command in (("ASKING",), self.commands[index])]

    def absorb(self, route: _Route, replies: Sequence[Any]) -> None:
        """Take the replies of ``route`` (in ``commands_of`` order)."""
        if route.asking:
            replies = replies[1::2]
        for index, reply in zip(route.indices, replies, strict=True):
            redirect = _redirect(reply)
            if redirect is None:
                self.replies[index] = reply
                if isinstance(reply, rex.ConnectionError | OSError) or (
                    isinstance(reply, rex.TimeoutError) and not isinstance(reply, NotReplicatedError)
                ):
                    self.stale = True  # the node may be gone: read the slot map before the next attempt
            elif self.hops > MAX_REDIRECTS:
                self.replies[index] = SlotMovingError(f"still redirected after {MAX_REDIRECTS} hops: {reply}")
            else:
                kind, address = redirect
                self.open.append(index)
                if kind == "ASK":
                    self.asks[index] = address
                else:
                    self.stale = True

    def finish(self, error: BaseException | None = None) -> list[Any]:
        """Every reply; commands still open get ``error``."""
        for index in self.open:
            self.replies[index] = error or SlotMovingError("redirected until the deadline")
        self.open = []
        return self.replies


class SyncClusterWriter(SyncWriter):
    """Writes to a Redis Cluster: one pipeline per master, every pipeline sent before any reply
    is read, so the masters work on a batch at the same time without threads."""

    def _send(self, commands: list[Command], timeout: float) -> list[Any]:
        deadline = self._clock() + timeout
        nodes = self._pool
        redirects = _Redirects(commands)
        while True:
            remaining = deadline - self._clock()
            try:
                if remaining <= 0:
                    raise rex.TimeoutError("the export deadline passed while following redirects")
                nodes.ready(remaining)
            except Exception as error:
                return redirects.finish(error)
            flights: list[tuple[_Route, _InFlight]] = []
            for route in redirects.plan(nodes):
                sent = redirects.commands_of(route)
                try:
                    flights.append((route, self._transmit(route.pool, sent, remaining)))
                except Exception as error:
                    redirects.absorb(route, [error] * len(sent))
            for route, flight in flights:
                # Replies are read one node after the other: each read gets what is left, not more.
                bound_timeouts(flight.pool, flight.connection, deadline - self._clock())
                try:
                    replies = self._receive(flight)
                except Exception as error:
                    replies = [error] * len(redirects.commands_of(route))
                redirects.absorb(route, replies)
            nodes.stale = nodes.stale or redirects.stale
            if not redirects.open:
                return redirects.finish()


class AsyncClusterWriter(AsyncWriter):
    """The async twin of ``SyncClusterWriter``: the masters' pipelines run concurrently."""

    async def _send_by_key(self, pending: Pending, timeout: float) -> list[Any]:
        deadline = self._clock() + timeout
        nodes = self._pool
        redirects = _Redirects([command for _, command in pending])
        while True:
            remaining = deadline - self._clock()
            try:
                if remaining <= 0:
                    raise rex.TimeoutError("the export deadline passed while following redirects")
                await asyncio.wait_for(nodes.ready(remaining), remaining)
            except Exception as error:
                return redirects.finish(error)
            routes = redirects.plan(nodes)
            outcomes = await asyncio.gather(
                *(self._send(redirects.commands_of(route), remaining, route.pool) for route in routes),
                return_exceptions=True,
            )
            for route, outcome in zip(routes, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    redirects.absorb(route, [outcome] * len(redirects.commands_of(route)))
                else:
                    redirects.absorb(route, outcome)
            nodes.stale = nodes.stale or redirects.stale
            if not redirects.open:
                return redirects.finish()


# --------------------------------------------------------------------------
# Sentinel: the master is asked for often enough to follow a forced failover
# --------------------------------------------------------------------------


class _MasterCheck:
    """When to ask the sentinels again where the master is.

    A forced failover leaves the old master up and writable for a while (until the sentinels
    demote it), so waiting for READONLY is not enough: ask at least every
    ``MASTER_CHECK_INTERVAL_S`` and right after any attempt that did not fully succeed.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._next = float("-inf")

    def due(self) -> bool:
        return self._clock() >= self._next

    def done(self) -> None:
        self._next = self._clock() + MASTER_CHECK_INTERVAL_S

    def again(self) -> None:
        """Ask before the next attempt."""
        self._next = float("-inf")

    def after(self, replies: Sequence[Any]) -> None:
        if any(isinstance(reply, BaseException) for reply in replies):
            self.again()


class SyncSentinelWriter(SyncWriter):
    """Writes to the master the sentinels name; a master change drops the idle connections."""

    def __init__(self, config: ExporterConfig, pool: Any, *, clock: Clock, stop: threading.Event) -> None:
        super().__init__(config, pool, clock=clock, stop=stop)
        self._check = _MasterCheck(clock)

    def _send(self, commands: list[Command], timeout: float) -> list[Any]:
        deadline = self._clock() + timeout
        try:
            if self._check.due():
                for pool in sentinel_pools(self._pool):
                    bound_idle_timeouts(pool, timeout)
                self._pool.get_master_address()  # on a change, redis-py drops the idle connections
                self._check.done()
            replies = super()._send(commands, deadline - self._clock())
        except Exception:
            self._check.again()
            raise
        self._check.after(replies)
        return replies

    def close(self) -> None:
        super().close()
        for pool in sentinel_pools(self._pool):
            pool.disconnect()


class AsyncSentinelWriter(AsyncWriter):
    """The async twin of ``SyncSentinelWriter``."""

    def __init__(self, config: ExporterConfig, pool: Any, *, clock: Clock, stop: threading.Event) -> None:
        super().__init__(config, pool, clock=clock, stop=stop)
        self._check = _MasterCheck(clock)

    async def _send_by_key(self, pending: Pending, timeout: float) -> list[Any]:
        deadline = self._clock() + timeout
        if self._check.due():
            try:
                await asyncio.wait_for(self._pool.get_master_address(), timeout)
            except Exception as error:
                return [error] * len(pending)
            self._check.done()
        replies = await super()._send_by_key(pending, deadline - self._clock())
        self._check.after(replies)
        return replies

    async def close(self) -> None:
        await super().close()
        for pool in sentinel_pools(self._pool):
            await pool.disconnect()


def sync_writer(config: ExporterConfig, pool: Any, *, clock: Clock, stop: threading.Event) -> SyncWriter:
    """The sync writer for ``config``'s deployment, on ``pool`` from ``make_pool``."""
    kind = SyncClusterWriter if config.cluster else SyncSentinelWriter if config.sentinels else SyncWriter
    return kind(config, pool, clock=clock, stop=stop)


def async_writer(config: ExporterConfig, pool: Any, *, clock: Clock, stop: threading.Event) -> AsyncWriter:
    """The async writer for ``config``'s deployment, on ``pool`` from ``make_async_pool``."""
    kind = AsyncClusterWriter if config.cluster else AsyncSentinelWriter if config.sentinels else AsyncWriter
    return kind(config, pool, clock=clock, stop=stop)
