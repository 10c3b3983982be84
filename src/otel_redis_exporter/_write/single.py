"""Writers for one server: one attempt is one pipelined round trip.

``SyncWriter`` runs on the sender thread over a redis-py pool: the whole batch goes out in one
``sendall`` and every reply is read back. ``AsyncWriter`` is its twin on redis.asyncio, on the
exporter's event loop: one round trip per stream key, the keys written concurrently on their own
connections. The two line up method for method; they differ only where one awaits and where a
comment says why.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis import exceptions as rex

from .._client import bound_timeouts
from .._config import ExporterConfig
from .._types import Clock, Command, EntryFields
from .attempt import (
    Heard,
    Packed,
    Pending,
    WriterBase,
    WriteResult,
    pack,
    read_replies,
    read_replies_async,
    read_replies_at_once,
    read_replies_at_once_async,
    reads_at_once,
    reads_at_once_async,
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


class SyncWriter(WriterBase):
    """Writes through a redis-py connection pool, on the sender thread."""

    def __init__(self, config: ExporterConfig, pool: Any, *, clock: Clock, heard: Heard) -> None:
        super().__init__(config, clock=clock, heard=heard)
        self._pool = pool
        # Connections waiting for replies, for ``abort`` (called from another thread).
        self._busy: set[Any] = set()
        self._busy_lock = threading.Lock()

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

    def _transmit(self, pool: Any, commands: Sequence[Command] | Packed, timeout: float) -> InFlight:
        """Send ``commands`` (and WAIT) as one buffer on a connection of ``pool``."""
        bound_timeouts(pool, None, timeout)
        connection = pool.get_connection()
        self._heard()  # connected (a new connection's handshake was answered): the server is there
        wait_ms = self._wait_ms(timeout)
        wait = self._wait(wait_ms)
        with self._busy_lock:
            self._busy.add(connection)
        try:
            bound_timeouts(pool, connection, timeout)
            connection.send_packed_command(
                [pack(connection, commands), pack(connection, wait)]
                if wait
                else [pack(connection, commands)],
                check_health=False,
            )
            self._heard()  # the server has read the whole buffer (the socket took it)
        except BaseException:
            self._done(pool, connection, broken=True)
            raise
        return InFlight(pool, connection, len(commands) + len(wait), wait_ms)

    def _receive(self, flight: InFlight) -> list[Any]:
        """Read every reply of ``flight`` and give its connection back."""
        broken: BaseException | None = None
        try:
            if reads_at_once(flight.connection):
                replies, broken = read_replies_at_once(flight.connection, flight.count, self._heard)
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
    """The async twin, on redis.asyncio: one round trip per stream key, the keys at once.

    It lives on the exporter's event loop. Its ``abort`` is the sender cancelling the attempt.
    """

    _packs_xadds = False  # it splits the commands by key (each key on its own connection)

    def __init__(self, config: ExporterConfig, pool: Any, *, clock: Clock, heard: Heard) -> None:
        super().__init__(config, clock=clock, heard=heard)
        self._pool = pool
        self.unanswered = 0
        """Round trips sent whose replies are not all read: what a cancel leaves unconfirmed."""

    async def write(self, entries: Mapping[str, Sequence[EntryFields]], timeout: float) -> WriteResult:
        """One attempt at ``entries`` (stream key -> entries) within ``timeout`` seconds."""
        deadline = self._clock() + timeout
        pending = self._pending(entries)
        # Unlike the sync twin, no try: _send_by_key hands back each key's failure in its replies.
        replies = await self._send_by_key(pending, timeout)
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
        await self._pool.disconnect()
