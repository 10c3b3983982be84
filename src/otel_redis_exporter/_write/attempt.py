"""One attempt: a batch of entries becomes one pipelined round trip, and its replies one result.

Shared by every writer (one server, Cluster, Sentinel; sync and async): the ``XADD`` commands
with their trimming, packing them into one buffer, ``WAIT`` when replicas must confirm, and
folding the replies into a ``WriteResult``. Every reply is checked: an accepted entry has its
stream entry id, an entry the server refuses for good (WRONGTYPE, a syntax error) is rejected, and
every other failure leaves the entry to be sent again. An entry whose command may have reached the
server before the failure (the reply never came) is marked unconfirmed: sending it again may
duplicate it, which readers undo by ``log.record.uid``, and it is never dropped as if it had
not landed.

No retry loop here: the sender owns retries and the backoff between attempts (``backoff()``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from redis.backoff import EqualJitterBackoff
from redis.exceptions import ResponseError

from .._config import ExporterConfig
from .._errors import NotReplicatedError, Outcome, classify, describe, error_type, maybe_landed
from .._index import TraceIndex
from .._keys import ShardRouter
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

# (position of the entry in the batch, its command)
Pending = list[tuple[int, Command]]


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


def pack(connection: Any, commands: Sequence[Command]) -> bytes:
    """Every command in one buffer (RESP), to go out in one write."""
    if _pack_in_c is not None:
        return b"".join([_pack_in_c(command) for command in commands])
    return b"".join(connection.pack_commands(commands))


def outcome(
    pending: Pending, replies: Sequence[Any], count: int, *, cluster_set_by: str | None = None
) -> WriteResult:
    """Fold one attempt's replies (an exception in place of each failed one) into a result."""
    result = WriteResult(count=count)
    for (position, _), reply in zip(pending, replies, strict=True):
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


def read_replies(count: int, read: Callable[[], Any]) -> tuple[list[Any], BaseException | None]:
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


async def read_replies_async(count: int, read: Callable[[], Any]) -> tuple[list[Any], BaseException | None]:
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
    return replies, None


class WriterBase:
    """Everything a writer does but I/O: commands, shards, WAIT, the trace index."""

    def __init__(self, config: ExporterConfig, *, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._index = TraceIndex.for_config(config)
        self._shards = ShardRouter(config.shards) if config.shards > 1 else None

    def _pending(self, entries: Mapping[str, Sequence[EntryFields]]) -> Pending:
        now_ms = time.time_ns() // 1_000_000
        if self._shards is None:
            return list(enumerate(xadd_commands(entries, self._config, now_ms)))
        # Positions stay those of ``entries``: sharding is the writer's business, not the caller's.
        sharded, positions = self._shards.split(entries)
        return list(zip(positions, xadd_commands(sharded, self._config, now_ms), strict=True))

    def _outcome(self, pending: Pending, replies: Sequence[Any]) -> WriteResult:
        return outcome(pending, replies, len(pending), cluster_set_by=self._config.cluster_set_by)

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
