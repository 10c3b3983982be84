"""Consumer groups over a reader's keys: at-least-once batches, claims, dead letters."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._encode.entry import LogEntry, text
from .replies import DEFAULT_BLOCK_MS, RawEntry, decode_entry, entries_of, order_key

if TYPE_CHECKING:
    from .reader import RedisLogReader

# Pending entries idle longer than this (milliseconds) are taken over from their consumer.
DEFAULT_CLAIM_IDLE_MS = 60_000
# Entries per consumer-group batch.
DEFAULT_GROUP_COUNT = 100
Handler = Callable[[list[LogEntry]], object]


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """A consumer group of one stream key (``XINFO GROUPS``)."""

    name: str
    consumers: int
    pending: int
    last_delivered_id: str
    lag: int | None = None


def group_info(raw: Mapping[str, Any]) -> GroupInfo:
    lag = raw.get("lag")
    return GroupInfo(
        name=text(raw.get("name", "")),
        consumers=int(raw.get("consumers", 0)),
        pending=int(raw.get("pending", 0)),
        last_delivered_id=text(raw.get("last-delivered-id", "0-0")),
        lag=None if lag is None else int(lag),
    )


class ConsumerGroup:
    """One consumer of a consumer group over the reader's keys; see ``RedisLogReader.group``.

    ``process(handler)`` is the loop body: it hands a batch to ``handler`` and acknowledges the
    batch only after ``handler`` returned, so a crash or an exception leaves the entries pending
    (at-least-once). A batch is, in this order of preference: this consumer's own pending
    entries (delivered before but never acknowledged), entries claimed from consumers idle for
    longer than ``claim_idle_ms``, new entries.
    """

    def __init__(
        self,
        reader: RedisLogReader,
        name: str,
        consumer: str,
        *,
        claim_idle_ms: int = DEFAULT_CLAIM_IDLE_MS,
        start: str = "0",
    ) -> None:
        if not name or not consumer:
            raise ValueError("a consumer group needs a non-empty group name and consumer name")
        if isinstance(claim_idle_ms, bool) or not isinstance(claim_idle_ms, int) or claim_idle_ms < 0:
            raise ValueError(
                f"claim_idle_ms must be a whole number of milliseconds >= 0; got {claim_idle_ms!r}"
            )
        self.reader = reader
        self.name = name
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self._start = start
        self._keys: list[str] = []
        self._known: set[str] = set()
        self._refreshed = -float("inf")
        self._claimed_at = -float("inf")

    def __repr__(self) -> str:
        return f"ConsumerGroup(name={self.name!r}, consumer={self.consumer!r})"

    def ensure(self) -> list[str]:
        """Create the group on keys that lack it; returns the keys the group reads."""
        keys = self.reader.keys()
        new = [key for key in keys if key not in self._known]
        if new:
            first_time = not self._known
            pipe = self.reader.client().pipeline(transaction=False)
            for key in new:
                start = self._start if first_time or not self.reader.dynamic else "0"
                pipe.execute_command("XGROUP", "CREATE", key, self.name, start, "MKSTREAM")
            for reply in pipe.execute(raise_on_error=False):
                if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
                    raise reply
            self._known.update(new)
        self._keys = keys
        self._refreshed = time.monotonic()
        return keys

    def _current_keys(self) -> list[str]:
        stale = time.monotonic() - self._refreshed >= self.reader.key_refresh_s
        if not self._known or (self.reader.dynamic and stale):
            self.ensure()
        return self._keys

    def _collect(
        self, replies: Iterable[tuple[str, list[RawEntry]]]
    ) -> list[tuple[str, bytes, LogEntry | None]]:
        batch = [
            (key, entry_id, decode_entry(key, entry_id, fields))
            for key, page in replies
            for entry_id, fields in page
        ]
        batch.sort(key=lambda item: order_key(item[0], item[1]))
        return batch

    def _own_pending(self, keys: Sequence[str], count: int) -> list[tuple[str, bytes, LogEntry | None]]:
        command = ["XREADGROUP", "GROUP", self.name, self.consumer, "COUNT", count]
        return self._collect(self.reader.read_streams(command, dict.fromkeys(keys, "0"), None))

    def claim(self, count: int = DEFAULT_GROUP_COUNT) -> list[tuple[str, bytes, LogEntry | None]]:
        """Take over up to ``count`` entries other consumers left pending longer than ``claim_idle_ms``."""
        keys = self._current_keys()
        self._claimed_at = time.monotonic()
        client = self.reader.client()
        found: list[tuple[str, list[RawEntry]]] = []
        total = 0
        for key in keys:
            cursor: Any = "0-0"
            while total < count:
                # Entries deleted while pending are dropped from the PEL by XAUTOCLAIM itself.
                reply = client.execute_command(
                    "XAUTOCLAIM",
                    key,
                    self.name,
                    self.consumer,
                    self.claim_idle_ms,
                    cursor,
                    "COUNT",
                    count - total,
                )
                cursor, page = reply[0], entries_of(reply[1])
                found.append((key, page))
                total += len(page)
                if text(cursor) == "0-0":
                    break
        return self._collect(found)

    def _new(
        self, keys: Sequence[str], count: int, block_ms: int | None
    ) -> list[tuple[str, bytes, LogEntry | None]]:
        command = ["XREADGROUP", "GROUP", self.name, self.consumer, "COUNT", count]
        return self._collect(self.reader.read_streams(command, dict.fromkeys(keys, ">"), block_ms))

    def read(
        self, count: int = DEFAULT_GROUP_COUNT, block_ms: int | None = None
    ) -> list[tuple[str, bytes, LogEntry | None]]:
        """The next batch (own pending, claimed, or new; see the class), unacknowledged.

        Items are ``(key, entry id, LogEntry or None)``; None marks an entry that is gone or
        cannot be decoded. Blocks up to ``block_ms`` milliseconds for new entries.
        """
        if count <= 0:
            raise ValueError(f"count must be > 0; got {count!r}")
        try:
            return self._read(count, block_ms)
        except Exception as error:
            if "NOGROUP" not in str(error):
                raise
        # A key or the group was deleted under us: create it again and retry once.
        self._known.clear()
        return self._read(count, block_ms)

    def _read(self, count: int, block_ms: int | None) -> list[tuple[str, bytes, LogEntry | None]]:
        keys = self._current_keys()
        if not keys:  # no key matches the pattern yet
            time.sleep((block_ms or 0) / 1000)
            self._refreshed -= self.reader.key_refresh_s
            return []
        batch = self._own_pending(keys, count)
        if not batch and time.monotonic() - self._claimed_at >= self.claim_idle_ms / 4000:
            batch = self.claim(count)
        if not batch:
            batch = self._new(keys, count, block_ms)
        return batch

    def backlog(self) -> tuple[int, int | None]:
        """The group's entries delivered but not acknowledged, and not yet delivered (``lag``;
        None when the server does not say, before Redis 7), summed over its keys."""
        keys = self._current_keys()
        pipe = self.reader.client().pipeline(transaction=False)
        for key in keys:
            pipe.xinfo_groups(key)
        pending, lag = 0, 0
        known = True
        for reply in pipe.execute(raise_on_error=False):
            if isinstance(reply, Exception):
                continue  # the key is gone
            for info in (group_info(group) for group in reply):
                if info.name == self.name:
                    pending += info.pending
                    known = known and info.lag is not None
                    lag += info.lag or 0
        return pending, lag if known else None

    def ack(self, items: Iterable[tuple[str, bytes | str]]) -> int:
        """Acknowledge ``(key, entry id)`` pairs, in one round trip; returns how many were pending."""
        by_key: dict[str, list[bytes | str]] = {}
        for key, entry_id in items:
            by_key.setdefault(key, []).append(entry_id)
        if not by_key:
            return 0
        pipe = self.reader.client().pipeline(transaction=False)
        for key, ids in by_key.items():
            pipe.xack(key, self.name, *ids)
        return sum(int(n) for n in pipe.execute())

    def dead_letter(
        self, items: Sequence[tuple[str, bytes | str]], target: Callable[[str], str], note: Mapping[str, str]
    ) -> int:
        """Copy entries to ``target(key)`` with the ``note`` fields and where they came from
        (``dead_letter.stream``, ``dead_letter.entry_id``) added, then acknowledge them.

        What ``forward`` does with a batch refused for good. An entry that is
        gone is only acknowledged. Returns how many were copied.
        """
        client = self.reader.client()
        pipe = client.pipeline(transaction=False)
        for key, entry_id in items:
            pipe.execute_command("XRANGE", key, entry_id, entry_id)
        pages = pipe.execute()
        pipe = client.pipeline(transaction=False)
        copied = 0
        for (key, entry_id), page in zip(items, pages, strict=True):
            for _, fields in entries_of(page):
                if fields:
                    extra = {**note, "dead_letter.stream": key, "dead_letter.entry_id": text(entry_id)}
                    pairs = [
                        *fields.items(),
                        *((name.encode(), value.encode()) for name, value in extra.items()),
                    ]
                    pipe.execute_command("XADD", target(key), "*", *itertools.chain.from_iterable(pairs))
                    copied += 1
        if copied:
            pipe.execute()
        self.ack(items)
        return copied

    def process(
        self, handler: Handler, *, count: int = DEFAULT_GROUP_COUNT, block_ms: int | None = DEFAULT_BLOCK_MS
    ) -> int:
        """Read one batch, call ``handler(records)``, then acknowledge the batch; returns its size.

        When ``handler`` raises, nothing is acknowledged and the exception propagates: the
        entries stay pending and come back in this consumer's next batch (or another
        consumer's, once idle for ``claim_idle_ms``). Entries that are gone or cannot be decoded
        are acknowledged without being handed over (and logged). 0 means nothing arrived within
        ``block_ms``.
        """
        batch = self.read(count, block_ms)
        if not batch:
            return 0
        records = [entry for _, _, entry in batch if entry is not None]
        if records:
            handler(records)
        self.ack((key, entry_id) for key, entry_id, _ in batch)
        return len(batch)

    def run(
        self,
        handler: Handler,
        *,
        count: int = DEFAULT_GROUP_COUNT,
        block_ms: int = DEFAULT_BLOCK_MS,
        stop: threading.Event | None = None,
    ) -> None:
        """``process`` in a loop until ``stop`` is set; an exception from ``handler`` ends it."""
        while stop is None or not stop.is_set():
            self.process(handler, count=count, block_ms=block_ms)
