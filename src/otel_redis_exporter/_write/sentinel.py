"""Sentinel writers: the master is asked for often enough to follow a forced failover.

A master change makes redis-py drop the idle connections, so the next attempt goes to the new
master. Asking only after READONLY is not enough: a forced failover leaves the old master up and
writable for a while, so the writers ask at least every ``MASTER_CHECK_INTERVAL_S`` and right after
any attempt that did not fully succeed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from .._client import bound_idle_timeouts, sentinel_pools
from .._config import ExporterConfig
from .._types import Clock, Command
from .attempt import Heard, Packed, Pending
from .single import AsyncWriter, SyncWriter

# How often a Sentinel writer asks where the master is, besides after every failed attempt.
MASTER_CHECK_INTERVAL_S = 1.0


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

    _one_round_trip = False  # it asks the sentinels now and then first

    def __init__(self, config: ExporterConfig, pool: Any, *, clock: Clock, heard: Heard) -> None:
        super().__init__(config, pool, clock=clock, heard=heard)
        self._check = _MasterCheck(clock)

    def _send(self, commands: list[Command] | Packed, timeout: float) -> list[Any]:
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

    _one_round_trip = False  # it asks the sentinels now and then first

    def __init__(self, config: ExporterConfig, pool: Any, *, clock: Clock, heard: Heard) -> None:
        super().__init__(config, pool, clock=clock, heard=heard)
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
