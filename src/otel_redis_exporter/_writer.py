"""Writes encoded entries with XADD: one pipelined round trip per attempt, one deadline per export.

The retry loop is shared; a writer only says how one attempt sends commands and reads replies.
Every reply is checked: entries the server accepted are never sent again, entries refused for a
transient reason (connection lost, LOADING, BUSY, TRYAGAIN, MASTERDOWN, READONLY, timeouts) are
retried with exponential backoff and jitter while the deadline allows, and entries refused for a
permanent reason (WRONGTYPE, NOPERM, OOM, a wrong password) fail at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from redis.backoff import EqualJitterBackoff
from redis.exceptions import ResponseError

from ._client import bound_timeouts
from ._config import ExporterConfig
from ._encoding import Fields
from ._errors import Outcome, classify, describe

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

Command = tuple[str, ...]
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

    @property
    def ok(self) -> bool:
        return self.failed == 0


def xadd_commands(
    entries: Mapping[str, Sequence[Fields]], config: ExporterConfig, now_ms: int
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
            elif classify(reply) is Outcome.TRANSIENT:
                self.transient_reason = describe(reply)
                retry.append(item)
            else:
                self.result.failed += 1
                self.result.reason = describe(reply)
        return retry

    def give_up(self, pending: Pending, why: str) -> WriteResult:
        if pending:
            self.result.failed += len(pending)
            self.result.reason = f"{self.transient_reason or 'no reply'} ({why})"
        return self.result


def _read_replies(count: int, read: Callable[[], Any]) -> list[Any]:
    """``count`` replies; an error reply is kept in its place (it was read whole, the
    connection is still in step)."""
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(read())
        except ResponseError as error:
            replies.append(error)
    return replies


class _WriterBase:
    """Everything but I/O: commands, backoff, deadline, shutdown."""

    def __init__(self, config: ExporterConfig, *, clock: Clock, stop: threading.Event) -> None:
        self._config = config
        self._clock = clock
        self._stop = stop
        self._backoff = EqualJitterBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S)

    def _pending(self, entries: Mapping[str, Sequence[Fields]]) -> Pending:
        return list(enumerate(xadd_commands(entries, self._config, time.time_ns() // 1_000_000)))

    def _delay(self, attempts: int, deadline: float) -> float | None:
        """Seconds to wait before the next attempt, or None when the deadline does not allow one."""
        delay: float = self._backoff.compute(attempts)
        remaining = deadline - self._clock()
        if self._stop.is_set() or remaining <= delay:
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

    def write(self, entries: Mapping[str, Sequence[Fields]], deadline: float) -> WriteResult:
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
        return progress.give_up(pending, self._why_stopped())

    def _send(self, commands: list[Command], timeout: float) -> list[Any]:
        """One round trip: pack every command into one buffer, send it, read every reply."""
        pool = self._pool
        bound_timeouts(pool, None, timeout)
        connection = pool.get_connection()
        try:
            bound_timeouts(pool, connection, timeout)
            connection.send_packed_command([pack(connection, commands)], check_health=False)
            return _read_replies(len(commands), connection.read_response)
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)

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

    async def write(self, entries: Mapping[str, Sequence[Fields]], deadline: float) -> WriteResult:
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
        return progress.give_up(pending, self._why_stopped())

    async def _woken_within(self, delay: float) -> bool:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._woken.wait(), delay)
        return self._stop.is_set()

    async def _send_by_key(self, pending: Pending, timeout: float) -> list[Any]:
        """Each key's commands on a connection of their own, all keys at once; replies in order."""
        by_key: dict[str, list[int]] = {}
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

    async def _send(self, commands: list[Command], timeout: float) -> list[Any]:
        """One round trip on one connection, bounded by ``timeout`` as a whole."""
        return await asyncio.wait_for(self._round_trip(commands), timeout)

    async def _round_trip(self, commands: list[Command]) -> list[Any]:
        pool = self._pool
        connection = await pool.get_connection()
        try:
            await connection.send_packed_command([pack(connection, commands)], check_health=False)
            replies: list[Any] = []
            for _ in commands:
                try:
                    # No timer per reply (math.inf): _send bounds the whole round trip with one.
                    replies.append(await connection.read_response(timeout=math.inf))
                except ResponseError as error:
                    replies.append(error)
            return replies
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)

    async def close(self) -> None:
        await self._pool.disconnect()
