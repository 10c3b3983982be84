"""Redis Cluster writers: one pipeline per master, MOVED and ASK followed within the attempt.

``SyncClusterWriter`` sends every master's pipeline before it reads any reply, so the masters
work on a batch at the same time without threads; ``AsyncClusterWriter`` runs them concurrently.
``_Redirects`` decides where each command goes and what came back, without I/O. A MOVED reply or
a lost node marks the slot map stale, so it is read again before the next attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis import exceptions as rex
from redis.exceptions import ResponseError

from .._client import bound_timeouts
from .._errors import NotReplicatedError, SlotMovingError
from .._types import Address, Command
from .attempt import Packed, Pending
from .single import AsyncWriter, InFlight, SyncWriter

# Redirects (MOVED, ASK) followed for one entry within one attempt before it counts as failed.
MAX_REDIRECTS = 5


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

    _packs_xadds = False  # each command goes to the master of its key's slot
    _one_round_trip = False  # one per master

    def _send(self, commands: list[Command] | Packed, timeout: float) -> list[Any]:
        if isinstance(commands, Packed):  # never: _packs_xadds is False
            raise TypeError("a cluster routes each command by its key: send them unpacked")
        deadline = self._clock() + timeout
        nodes = self._pool
        redirects = _Redirects(commands)
        while True:
            remaining = deadline - self._clock()
            try:
                if remaining <= 0:
                    raise rex.TimeoutError("the export deadline passed while following redirects")
                nodes.ready(remaining)
                self._heard()  # the slot map came back: the cluster answers
            except Exception as error:
                return redirects.finish(error)
            flights: list[tuple[_Route, InFlight]] = []
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

    _one_round_trip = False  # one per master

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
                self._heard()  # the slot map came back: the cluster answers
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
