"""The outage buffer: entries that could not be written yet, bounded by records and bytes.

Entries leave in the order they came (per stream key that is the stream's order). When a bound is
reached, the entry with the lowest severity goes first, the oldest of those first; every drop is
counted by the caller.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from ._formats import EntryFields

# Entry overhead beyond its field text (stream entry, bookkeeping), in bytes.
ENTRY_OVERHEAD_BYTES = 64


@dataclass(slots=True, eq=False)
class BufferedEntry:
    """One encoded entry waiting for Redis."""

    key: str
    fields: EntryFields
    severity: int
    size: int = field(init=False)
    seq: int = 0

    def __post_init__(self) -> None:
        self.size = ENTRY_OVERHEAD_BYTES + sum(len(k) + len(v) for k, v in self.fields.items())


class OutageBuffer:
    """A FIFO of ``BufferedEntry`` that evicts lowest severity first, then oldest."""

    def __init__(self, max_records: int, max_bytes: int) -> None:
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._by_severity: dict[int, deque[BufferedEntry]] = {}
        self._seq = itertools.count()
        self.records = 0
        self.bytes = 0

    def __len__(self) -> int:
        return self.records

    def add(self, entries: Iterable[BufferedEntry]) -> int:
        """Append ``entries`` (in order); return how many entries had to be dropped to fit."""
        dropped = 0
        for entry in entries:
            entry.seq = next(self._seq)
            self._by_severity.setdefault(entry.severity, deque()).append(entry)
            self.records += 1
            self.bytes += entry.size
            while self.records > self.max_records or (self.bytes > self.max_bytes and self.records):
                self._evict_one()
                dropped += 1
        return dropped

    def _evict_one(self) -> None:
        severity = min(s for s, queue in self._by_severity.items() if queue)
        victim = self._by_severity[severity].popleft()
        self.records -= 1
        self.bytes -= victim.size

    def oldest(self, limit: int) -> list[BufferedEntry]:
        """Up to ``limit`` entries, oldest first (they stay buffered until ``remove``)."""
        merged = heapq.merge(*self._by_severity.values(), key=lambda entry: entry.seq)
        return list(itertools.islice(merged, limit))

    def remove(self, done: Iterable[BufferedEntry]) -> None:
        """Forget ``done`` entries (written, or given up and counted by the caller)."""
        gone = {id(entry) for entry in done}
        if not gone:
            return
        for severity, queue in list(self._by_severity.items()):
            kept = deque(entry for entry in queue if id(entry) not in gone)
            removed = len(queue) - len(kept)
            if removed:
                self.records -= removed
                self.bytes -= sum(entry.size for entry in queue if id(entry) in gone)
                self._by_severity[severity] = kept

    def clear(self) -> int:
        """Forget everything; return how many entries that was."""
        count = self.records
        self._by_severity.clear()
        self.records = self.bytes = 0
        return count
