"""Writers for one server: one attempt is one pipelined round trip.

``SyncWriter`` runs on the sender thread over a redis-py pool: the whole batch goes out in one
``sendall`` and every reply is read back. ``AsyncWriter`` is its twin on redis.asyncio, on the
exporter's event loop. On the fast path over a plain connection both make the round trip the same
way (``start``, then ``finish`` for what the server does not answer at once), the async twin on a
connection it keeps for that; otherwise the async twin makes one round trip per stream key, the
keys written concurrently on their own connections. The two line up method for method; they
differ only where one awaits and where a comment says why.

A round trip waits for its replies up to the attempt's timeout (the exporter's ``timeout``), so a
server that stalls for less than that writes every entry once. ``abort()`` ends an attempt that
waits on a server that does not answer (used by shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis import exceptions as rex

from .._client import bound_timeouts
from .._config import ExporterConfig
from .._fast import speedups
from .._types import Clock, Command, EntryFields
from .attempt import (
    HOLD_S,
    Heard,
    Packed,
    Pending,
    Replies,
    WriterBase,
    WriteResult,
    held_socket,
    held_transport,
    may_hold,
    pack,
    read_patiently,
    read_replies,
    read_replies_async,
    read_replies_at_once,
    read_replies_at_once_async,
    read_rest_async,
    reads_at_once,
    reads_at_once_async,
    send_packed,
    send_rest,
    start_held,
)


@dataclass(slots=True)
class _Stage:
    """How far one async round trip got: after ``sent``, its entries may reach the server."""

    sent: bool = False


@dataclass(slots=True)
class InFlight:
    """Commands sent on a connection whose replies are still to be read."""

    pool: Any
    connection: Any
    count: int
    wait_ms: int | None
    hold_until: float
    """Until when (``time.monotonic()``) the fast path waits for it holding the lock."""
    unsent: memoryview | None = None
    """What the socket did not take while the lock was held (``SyncWriter.start``)."""
    replies: Replies | None = None
    """The replies read while the lock was held (``SyncWriter.start``)."""

    @property
    def answered(self) -> bool:
        """Whether it was all sent and every reply read, or the connection broke: no waiting left."""
        replies = self.replies
        return self.unsent is None and replies is not None and (replies.done or replies.broken is not None)


@dataclass(slots=True)
class Started:
    """An attempt ``SyncWriter.start`` began, for ``SyncWriter.finish`` to end on any thread."""

    entries: Mapping[str, Sequence[EntryFields]]
    positions: Sequence[int]
    deadline: float
    flight: InFlight | None = None
    error: BaseException | None = None
    """Why nothing is in flight: sending failed."""

    @property
    def answered(self) -> bool:
        return self.flight is None or self.flight.answered


class SyncWriter(WriterBase):
    """Writes through a redis-py connection pool, on the sender thread (and, with ``start``, on
    export()'s)."""

    def __init__(self, config: ExporterConfig, pool: Any, *, clock: Clock, heard: Heard) -> None:
        super().__init__(config, clock=clock, heard=heard)
        self._pool = pool
        # Connections waiting for replies, for ``abort`` (called from another thread).
        self._busy: set[Any] = set()
        self._busy_lock = threading.Lock()
        # Whether the last round trip was answered whole on a plain connection kept open (and, to
        # begin with, that the first may be).
        self._warm = True

    @property
    def can_start(self) -> bool:
        """Whether ``start`` may begin the next attempt on export()'s thread: one round trip (no
        trace index either), on the fast path, over a plain connection that just worked (or
        the first one)."""
        return self._one_round_trip and self._index is None and self._warm and speedups is not None

    def start(
        self, entries: Mapping[str, Sequence[EntryFields]], timeout: float, patience_s: float
    ) -> Started:
        """``write``'s beginning on export()'s thread, when the sender is idle: the round trip is
        sent and its replies read there, for as long as a healthy server needs (``HOLD_S``)
        without letting go of the interpreter lock, so no other thread has to take over. It
        never waits on the socket longer than ``patience_s`` at a time (connecting, sending, each
        reply); ``finish`` does what is left."""
        deadline = self._clock() + timeout
        positions, commands = self._xadds(entries)
        started = Started(entries, positions, deadline)
        try:
            started.flight = self._transmit(
                self._pool, commands, timeout, patience_s=min(patience_s, timeout)
            )
        except Exception as error:
            started.error = error
        return started

    def conclude(self, started: Started) -> WriteResult | None:
        """``started``'s result when ``start`` saw it answered; None while replies are to come."""
        return self.finish(started) if started.answered else None

    def finish(self, started: Started) -> WriteResult:
        """The rest of ``started``'s attempt (on any thread), within its deadline."""
        try:
            if started.flight is None:
                raise started.error or rex.ConnectionError("nothing was sent")
            bound_timeouts(self._pool, started.flight.connection, started.deadline - self._clock())
            replies: Sequence[Any] = self._receive(started.flight)
        except Exception as error:
            replies = [error] * len(started.positions)
        result = self._outcome(started.positions, replies)
        self._write_index(started.entries, result, started.deadline)
        return result

    def write(self, entries: Mapping[str, Sequence[EntryFields]], timeout: float) -> WriteResult:
        """One attempt at ``entries`` (stream key -> entries) within ``timeout`` seconds."""
        deadline = self._clock() + timeout
        positions, commands = self._xadds(entries)
        try:
            replies: Sequence[Any] = self._send(commands, timeout)
        except Exception as error:
            replies = [error] * len(positions)
        result = self._outcome(positions, replies)
        self._write_index(entries, result, deadline)
        return result

    def _write_index(
        self, entries: Mapping[str, Sequence[EntryFields]], result: WriteResult, deadline: float
    ) -> None:
        """One more round trip for the per-trace index, when it is on; failures are only logged."""
        commands = self._index_commands(entries, result)
        if not commands:
            return
        try:
            self._index_report(self._send(commands, deadline - self._clock()))
        except Exception as error:
            self._index_report(error)

    def _send(self, commands: list[Command] | Packed, timeout: float) -> list[Any]:
        """One round trip: pack every command into one buffer, send it, read every reply."""
        return self._receive(self._transmit(self._pool, commands, timeout))

    def _transmit(
        self,
        pool: Any,
        commands: Sequence[Command] | Packed,
        timeout: float,
        *,
        patience_s: float | None = None,
    ) -> InFlight:
        """Send ``commands`` (and WAIT) as one buffer on a connection of ``pool``. With
        ``patience_s`` (``start``): send and read replies while the socket takes and answers,
        waiting no longer than that at a time; ``_receive`` does the rest."""
        held = patience_s is not None
        wait_s = timeout if patience_s is None else patience_s  # the longest wait on the socket
        bound_timeouts(pool, None, wait_s)
        connection = pool.get_connection()
        self._heard()  # connected (a new connection's handshake was answered): the server is there
        wait_ms = self._wait_ms(timeout)
        wait = self._wait(wait_ms)
        with self._busy_lock:
            self._busy.add(connection)
        try:
            bound_timeouts(pool, connection, wait_s)
            hold_until = time.monotonic() + HOLD_S
            chunks = [pack(connection, part) for part in (commands, wait) if part]
            flight = InFlight(pool, connection, len(commands) + len(wait), wait_ms, hold_until)
            flight.unsent = send_packed(connection, chunks, hold_until, self._heard, patient=held)
            if flight.unsent is None:
                self._heard()  # the server has read the whole buffer (the socket took it)
                if held and reads_at_once(connection):
                    flight.replies = read_patiently(connection, flight.count, self._heard, hold_until)
        except BaseException:
            self._done(pool, connection, broken=True)
            raise
        return flight

    def _receive(self, flight: InFlight) -> list[Any]:
        """Read every reply of ``flight`` and give its connection back."""
        broken: BaseException | None = None
        try:
            if flight.unsent is not None:
                send_rest(flight.connection._sock, flight.unsent)
                self._heard()  # as in _transmit
            if flight.replies is not None or reads_at_once(flight.connection):
                replies, broken = read_replies_at_once(
                    flight.connection, flight.count, self._heard, flight.hold_until, flight.replies
                )
            else:
                replies, broken = read_replies(flight.count, flight.connection.read_response, self._heard)
        except BaseException as error:
            broken = error
            raise
        finally:
            self._done(flight.pool, flight.connection, broken=broken is not None)
        return self._confirmed(replies, flight.wait_ms)

    def _done(self, pool: Any, connection: Any, *, broken: bool) -> None:
        with self._busy_lock:
            self._busy.discard(connection)
        if broken:
            connection.disconnect()
        self._warm = not broken and held_socket(connection) is not None
        pool.release(connection)

    def abort(self) -> None:
        """End the round trips waiting for replies now (from any thread): their reads fail at once."""
        with self._busy_lock:
            busy = list(self._busy)
        for connection in busy:
            sock = getattr(connection, "_sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._pool.disconnect()


class AsyncWriter(WriterBase):
    """The async twin, on redis.asyncio: on the fast path over a plain connection, the sync
    twin's one round trip; else one round trip per stream key, the keys at once.

    It lives on the exporter's event loop. Its ``abort`` is the sender cancelling the attempt.
    """

    def __init__(self, config: ExporterConfig, pool: Any, *, clock: Clock, heard: Heard) -> None:
        super().__init__(config, clock=clock, heard=heard)
        self._pool = pool
        self.unanswered = 0
        """Round trips sent whose replies are not all read: what a cancel leaves unconfirmed."""
        # A connection of the pool kept for ``start``: unlike the sync twin, which takes one from
        # its pool at once, redis.asyncio's pool is awaited, and ``start`` does not await.
        self._kept: Any = None
        self._holdable = may_hold(pool)  # (and until a connection it cannot hold is made)

    @property
    def can_start(self) -> bool:
        """The twin of ``SyncWriter.can_start``: a connection is kept, plain and in step."""
        return self._may_keep and held_transport(self._kept) is not None

    def start(
        self, entries: Mapping[str, Sequence[EntryFields]], timeout: float, patience_s: float
    ) -> Started:
        """The twin of ``SyncWriter.start``, on the loop, in one step of it (ask ``can_start``
        first): the round trip goes out on the kept connection and its replies are read for as
        long as a healthy server needs (``HOLD_S``) without letting go of the interpreter lock.
        Unlike the sync twin it never waits on the socket (``patience_s`` is not used): what the
        socket does not take at once goes to the connection's transport, and ``finish`` awaits
        the rest of the replies."""
        deadline = self._clock() + timeout
        positions, commands = self._xadds(entries)
        connection, self._kept = self._kept, None
        wait_ms = self._wait_ms(timeout)
        data = b"".join(pack(connection, part) for part in (commands, self._wait(wait_ms)) if part)
        count = len(commands) + (wait_ms is not None)
        hold_until = time.monotonic() + HOLD_S
        flight = InFlight(self._pool, connection, count, wait_ms, hold_until)
        self.unanswered += 1
        flight.replies = start_held(connection, data, count, heard=self._heard, hold_until=hold_until)
        return Started(entries, positions, deadline, flight)

    def conclude(self, started: Started) -> WriteResult | None:
        """The twin of ``SyncWriter.conclude``, without awaiting: None also when the connection
        broke, since closing it is awaited (``finish``)."""
        flight = started.flight
        if flight is None or flight.replies is None or not flight.answered:
            return None
        replies, broken = flight.replies.finish(flight.connection)
        if broken is not None:
            return None
        self.unanswered -= 1
        self._kept = flight.connection
        return self._outcome(started.positions, self._confirmed(replies, flight.wait_ms))

    async def finish(self, started: Started) -> WriteResult:
        """The twin of ``SyncWriter.finish``: the rest of the replies, within the deadline."""
        flight = started.flight
        if flight is None or flight.replies is None:  # (start always sends, or says why it failed)
            raise RuntimeError("finish() of an attempt start() did not begin")
        replies = flight.replies
        try:
            if not flight.answered:
                left = max(started.deadline - self._clock(), 0.0)
                await asyncio.wait_for(read_rest_async(flight.connection, replies, self._heard), left)
        except asyncio.TimeoutError:
            replies.broken = replies.failure(flight.connection, TimeoutError())
        except BaseException:
            await self._drop(flight.connection)
            raise
        finally:
            self.unanswered -= 1
        read, broken = replies.finish(flight.connection)
        if broken is None:
            self._kept = flight.connection
        else:
            await self._drop(flight.connection)
        return self._outcome(started.positions, self._confirmed(read, flight.wait_ms))

    @property
    def _may_keep(self) -> bool:
        """Whether ``start`` may make the round trips, once a connection is kept for it."""
        return self._one_round_trip and self._index is None and speedups is not None and self._holdable

    async def _keep_connection(self) -> None:
        """Keep a connection of the pool for ``start``, in place of one the server closed. A
        connection the fast path cannot hold (TLS; redis-py's pure-Python parser) goes back, and
        no other is asked for."""
        if self._kept is not None:
            kept, self._kept = self._kept, None
            await self._drop(kept)
        connection = await self._pool.get_connection()
        if held_transport(connection) is None:
            self._holdable = False
            await self._pool.release(connection)
        else:
            self._kept = connection

    async def _drop(self, connection: Any) -> None:
        """Close a connection that is out of step and give it back to the pool."""
        try:
            await connection.disconnect()
        finally:
            await self._pool.release(connection)

    async def write(self, entries: Mapping[str, Sequence[EntryFields]], timeout: float) -> WriteResult:
        """One attempt at ``entries`` (stream key -> entries) within ``timeout`` seconds: the
        round trip ``start`` makes on the connection kept for it when it can, as the sync twin
        does on the fast path; else one round trip per stream key, the keys at once. Connecting
        counts against the same ``timeout``, as in the sync twin."""
        deadline = self._clock() + timeout
        if self._may_keep and not self.can_start:
            try:
                await asyncio.wait_for(self._keep_connection(), timeout)
            except Exception as error:  # nothing was sent: the connection did not open
                if isinstance(error, asyncio.TimeoutError):
                    error = rex.TimeoutError("Timeout connecting to server")
                return self._outcome(self._layout(entries)[1], [error] * sum(map(len, entries.values())))
        left = max(deadline - self._clock(), 0.001)
        if self.can_start:
            started = self.start(entries, left, left)
            result = self.conclude(started)
            return result if result is not None else await self.finish(started)
        pending = self._pending(entries)
        # Unlike the sync twin, no try: _send_by_key hands back each key's failure in its replies.
        replies = await self._send_by_key(pending, left)
        result = self._outcome([position for position, _ in pending], replies)
        await self._write_index(entries, result, deadline)
        return result

    async def _write_index(
        self, entries: Mapping[str, Sequence[EntryFields]], result: WriteResult, deadline: float
    ) -> None:
        """The async twin of ``SyncWriter._write_index``."""
        commands = self._index_commands(entries, result)
        if not commands:
            return
        try:
            self._index_report(await self._send(commands, deadline - self._clock()))
        except Exception as error:
            self._index_report(error)

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
        for slots, result in zip(groups, outcomes, strict=True):
            for position, slot in enumerate(slots):
                replies[slot] = result if isinstance(result, BaseException) else result[position]
        return replies

    async def _send(self, commands: list[Command], timeout: float, pool: Any = None) -> list[Any]:
        """One round trip on one connection (of ``pool``, the writer's own by default), bounded
        by ``timeout`` as a whole."""
        wait_ms = self._wait_ms(timeout)
        sent = self._with_wait(commands, wait_ms)
        target = self._pool if pool is None else pool
        stage = _Stage()
        try:
            replies = await asyncio.wait_for(self._round_trip(target, sent, stage), timeout)
        except asyncio.TimeoutError:
            if not stage.sent:  # timed out connecting: nothing can have been written
                raise rex.TimeoutError("Timeout connecting to server") from None
            raise
        return self._confirmed(replies, wait_ms)

    async def _round_trip(self, pool: Any, commands: list[Command], stage: _Stage) -> list[Any]:
        connection = await pool.get_connection()
        self._heard()  # as in the sync twin's _transmit
        self.unanswered += 1
        stage.sent = True
        try:
            await connection.send_packed_command([pack(connection, commands)], check_health=False)
            self._heard()  # as in the sync twin's _transmit
            if reads_at_once_async(connection):
                replies, broken = await read_replies_at_once_async(connection, len(commands), self._heard)
            else:
                # No timer per reply (math.inf): _send bounds the whole round trip with one.
                read = functools.partial(connection.read_response, timeout=math.inf)
                replies, broken = await read_replies_async(len(commands), read, self._heard)
            if broken is not None:
                await connection.disconnect()
            return replies
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            self.unanswered -= 1
            await pool.release(connection)

    async def close(self) -> None:
        self._kept = None  # the pool closes every connection, those in use too
        await self._pool.disconnect()
