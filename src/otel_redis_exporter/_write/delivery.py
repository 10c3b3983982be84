"""The sender's queue and its policy: what waits, what goes next, what is given up and why.

``export()`` hands each batch over as a parcel and gets a ``Ticket`` to wait on. The sender takes
round trips from the front: every parcel waiting, oldest first, up to ``MAX_TRIP_ENTRIES`` entries
and ``MAX_TRIP_BYTES``, so under load it writes more per round trip, not less. After an attempt,
what was written or refused for good is settled; what failed goes back to the front, in order,
for the next attempt.

Bounds: the entries waiting (not those in flight) are kept within ``max_records`` and
``max_bytes``. Past a bound the lowest severity goes first, the oldest of those first; an entry
that may already have reached the server (unconfirmed) is never dropped that way, and a parcel
that just arrived never pushes itself out. Every entry ends written, or dropped and counted with a
reason: ``buffer_full``, ``shutdown``, ``unconfirmed`` (given up at shutdown although it may have
been written) or the server's refusal (``WRONGTYPE``...).

No I/O and no threads here: the transport calls in from its thread or loop, ``export()`` from the
SDK's; one lock keeps the books.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .._metrics import ExporterMetrics
from .._types import Entries, EntryFields
from .attempt import WriteResult

# Most entries and bytes one round trip carries.
MAX_TRIP_ENTRIES = 8192
MAX_TRIP_BYTES = 8 * 1024 * 1024
# Entry overhead beyond its field text (stream entry, bookkeeping), in bytes.
ENTRY_OVERHEAD_BYTES = 64
# How long export() waits for its batch to be written while the sender is healthy. A healthy
# round trip takes milliseconds, so this is never reached then; when the server stalls, the
# SDK's worker thread is back within this and its queue does not overflow.
HANDOFF_TIMEOUT_S = 0.25
# At shutdown, give up once the server has taken nothing for this long.
SHUTDOWN_PATIENCE_S = 1.0

Item = tuple[str, EntryFields]


def entry_size(fields: EntryFields) -> int:
    """Approximate bytes an entry takes in the queue and on the wire."""
    return ENTRY_OVERHEAD_BYTES + sum(map(len, fields)) + sum(map(len, fields.values()))


def _severity(fields: EntryFields) -> int:
    # OTLP-encoded entries carry no severity field: they count as unspecified (0).
    value = fields.get("severity_number", "0")
    return int(value) if isinstance(value, str) and value.isdigit() else 0


class Ticket:
    """One export's batch: done when every entry is settled; ``ok`` when all were written."""

    __slots__ = ("_done", "_dropped", "_open")

    def __init__(self, count: int) -> None:
        self._open = count
        self._dropped = 0
        self._done = threading.Event()
        if not count:
            self._done.set()

    def settle(self, written: int, dropped: int) -> None:
        self._open -= written + dropped
        self._dropped += dropped
        if self._open <= 0:
            self._done.set()

    def wait(self, timeout: float) -> bool:
        """True when every entry was written within ``timeout`` seconds."""
        return self._done.wait(max(timeout, 0.0)) and not self._dropped


class Parcel:
    """The entries of one export that are not settled yet (``None`` in place of settled ones)."""

    __slots__ = ("by_severity", "items", "live", "size", "sizes", "ticket", "unconfirmed")

    def __init__(self, entries: Entries, ticket: Ticket) -> None:
        self.items: list[Item | None] = [(key, fields) for key, group in entries.items() for fields in group]
        self.sizes = [entry_size(fields) for _, fields in self.items]  # type: ignore[misc]
        self.size = sum(self.sizes)
        self.live = len(self.items)
        self.ticket = ticket
        self.unconfirmed: set[int] = set()
        # Built on the first eviction only: severity -> indices, oldest first.
        self.by_severity: dict[int, deque[int]] | None = None

    def severities(self) -> dict[int, deque[int]]:
        if self.by_severity is None:
            self.by_severity = {}
            for index, item in enumerate(self.items):
                if item is not None:
                    self.by_severity.setdefault(_severity(item[1]), deque()).append(index)
        return self.by_severity

    def evictable(self, severity: int) -> int | None:
        """The oldest entry of ``severity`` that may be dropped, or None."""
        indices = self.severities().get(severity)
        while indices:
            index = indices[0]
            if self.items[index] is not None and index not in self.unconfirmed:
                return index
            indices.popleft()
        return None

    def lowest_severity(self) -> int | None:
        levels = [level for level in self.severities() if self.evictable(level) is not None]
        return min(levels) if levels else None

    def remove(self, index: int) -> int:
        """Settle one entry; return its size."""
        self.items[index] = None
        self.live -= 1
        self.size -= self.sizes[index]
        return self.sizes[index]


@dataclass(slots=True)
class Trip:
    """One round trip: the parcels it carries, laid out as the writer wants them."""

    parcels: list[Parcel]
    entries: dict[str, list[EntryFields]]
    owners: list[tuple[Parcel, int]]
    """Position in ``entries`` (keys in order, entries in order) -> (parcel, index)."""

    @property
    def count(self) -> int:
        return len(self.owners)


def _trip(parcels: list[Parcel]) -> Trip:
    entries: dict[str, list[EntryFields]] = {}
    owners_by_key: dict[str, list[tuple[Parcel, int]]] = {}
    for parcel in parcels:
        for index, item in enumerate(parcel.items):
            if item is None:
                continue
            key, fields = item
            group = entries.get(key)
            if group is None:
                group = entries[key] = []
                owners_by_key[key] = []
            group.append(fields)
            owners_by_key[key].append((parcel, index))
    owners = [owner for key in entries for owner in owners_by_key[key]]
    return Trip(parcels, entries, owners)


@dataclass(slots=True)
class Settled:
    """What one attempt settled, for the sender's log line."""

    written: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    retrying: int = 0


class Delivery:
    """The queue and its books. Thread-safe; ``wake`` tells the transport there is work."""

    def __init__(
        self,
        max_records: int,
        max_bytes: int,
        metrics: ExporterMetrics,
        clock: Callable[[], float],
    ) -> None:
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._waiting: deque[Parcel] = deque()
        self._waiting_records = 0
        self._waiting_bytes = 0
        self._in_flight = 0
        self._in_flight_bytes = 0
        self._failures = 0
        self._trip_started: float | None = None
        self._closing_at: float | None = None
        self._close_deadline = float("inf")
        self._last_progress = 0.0
        self.evicted = 0
        """Entries the bounds dropped since the start (``buffer_full``)."""
        self.wake: Callable[[], None] = lambda: None

    # -- export() side --------------------------------------------------------------------

    def submit(self, entries: Entries) -> Ticket:
        """Queue one export's entries; the ticket settles as the sender writes or drops them."""
        count = sum(map(len, entries.values()))
        ticket = Ticket(count)
        if not count:
            return ticket
        parcel = Parcel(entries, ticket)
        with self._lock:
            self._waiting.append(parcel)
            self._waiting_records += parcel.live
            self._waiting_bytes += parcel.size
            self._enforce_bounds(keep=parcel)
        self.wake()
        return ticket

    def handoff_timeout(self) -> float:
        """How long export() should wait for its batch: not at all while the sender is failing,
        or while its round trip in flight already waits longer than a healthy one ever does."""
        with self._lock:
            if self._failures:
                return 0.0
            if self._trip_started is not None and self._clock() - self._trip_started > HANDOFF_TIMEOUT_S:
                return 0.0
        return HANDOFF_TIMEOUT_S

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or in flight; False if ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._waiting and not self._in_flight, max(timeout, 0.0))

    @property
    def queued(self) -> tuple[int, int]:
        """Records and bytes waiting or in flight."""
        with self._lock:
            return self._waiting_records + self._in_flight, self._waiting_bytes + self._in_flight_bytes

    # -- sender side ----------------------------------------------------------------------

    def take(self) -> Trip | None:
        """The next round trip: the oldest parcels up to the trip bounds; None when empty."""
        with self._lock:
            parcels: list[Parcel] = []
            records = size = 0
            while self._waiting:
                parcel = self._waiting[0]
                if parcels and (
                    records + parcel.live > MAX_TRIP_ENTRIES or size + parcel.size > MAX_TRIP_BYTES
                ):
                    break
                self._waiting.popleft()
                if not parcel.live:
                    continue
                parcels.append(parcel)
                records += parcel.live
                size += parcel.size
            if not parcels:
                return None
            self._waiting_records -= records
            self._waiting_bytes -= size
            self._in_flight, self._in_flight_bytes = records, size
            self._trip_started = self._clock()
        self._metrics.inflight(records)
        return _trip(parcels)

    def settle(self, trip: Trip, result: WriteResult) -> Settled:
        """Book one attempt: written and refused entries leave, the rest go back to the front."""
        settled = Settled()
        with self._lock:
            if result.ok:  # the common case: every parcel of the trip is done
                for parcel in trip.parcels:
                    settled.written += parcel.live
                    parcel.ticket.settle(parcel.live, 0)
                    parcel.items, parcel.live, parcel.size = [], 0, 0
            else:
                self._settle_each(trip, result, settled)
            back = [parcel for parcel in trip.parcels if parcel.live]
            settled.retrying = sum(parcel.live for parcel in back)
            self._waiting.extendleft(reversed(back))
            self._waiting_records += settled.retrying
            self._waiting_bytes += sum(parcel.size for parcel in back)
            self._in_flight = self._in_flight_bytes = 0
            self._trip_started = None
            if settled.written:
                self._last_progress = self._clock()
            self._failures = 0 if result.ok or settled.written else self._failures + 1
            for reason, count in self._enforce_bounds(keep=None).items():
                settled.dropped[reason] = settled.dropped.get(reason, 0) + count
            self._idle.notify_all()
        self._metrics.inflight(-trip.count)
        self._metrics.written(settled.written)
        for reason, count in settled.dropped.items():
            if reason != "buffer_full":  # counted where the bounds drop them
                self._metrics.dropped(count, reason)
        return settled

    @staticmethod
    def _settle_each(trip: Trip, result: WriteResult, settled: Settled) -> None:
        """Entry by entry: written, refused for good, or kept (marked when maybe landed)."""
        for position, (parcel, index) in enumerate(trip.owners):
            if position in result.entry_ids:
                parcel.remove(index)
                parcel.ticket.settle(1, 0)
                settled.written += 1
            elif position in result.rejected:
                parcel.remove(index)
                parcel.ticket.settle(0, 1)
                reason = result.rejected[position]
                settled.dropped[reason] = settled.dropped.get(reason, 0) + 1
            elif position in result.unconfirmed:
                parcel.unconfirmed.add(index)

    @property
    def failures(self) -> int:
        """Attempts that failed in a row (0 after one that wrote anything)."""
        return self._failures

    def _enforce_bounds(self, keep: Parcel | None) -> dict[str, int]:
        """Drop waiting entries past the bounds, lowest severity first, oldest first (lock held)."""
        dropped = 0
        while self._waiting_records > self.max_records or self._waiting_bytes > self.max_bytes:
            candidates = [parcel for parcel in self._waiting if parcel is not keep and parcel.live]
            levels = [level for level in map(Parcel.lowest_severity, candidates) if level is not None]
            if not levels:
                break
            lowest = min(levels)
            for parcel in candidates:
                index = parcel.evictable(lowest)
                while index is not None and (
                    self._waiting_records > self.max_records or self._waiting_bytes > self.max_bytes
                ):
                    self._waiting_bytes -= parcel.remove(index)
                    self._waiting_records -= 1
                    parcel.ticket.settle(0, 1)
                    dropped += 1
                    index = parcel.evictable(lowest)
        self.evicted += dropped
        self._metrics.dropped(dropped, "buffer_full")
        return {"buffer_full": dropped} if dropped else {}

    # -- closing --------------------------------------------------------------------------

    def begin_close(self, deadline: float) -> None:
        """From now on the sender drains the queue and stops when it is empty or must give up."""
        with self._lock:
            now = self._clock()
            self._closing_at = now
            self._close_deadline = deadline
        self.wake()

    @property
    def closing(self) -> bool:
        return self._closing_at is not None

    def give_up_at(self) -> float:
        """When a closing sender stops trying: the close deadline, or ``SHUTDOWN_PATIENCE_S``
        after the server last took anything (or after closing began)."""
        with self._lock:
            if self._closing_at is None:
                return float("inf")
            since = max(self._closing_at, self._last_progress)
            return min(self._close_deadline, since + SHUTDOWN_PATIENCE_S)

    def give_up(self) -> dict[str, int]:
        """Drop everything waiting (at shutdown or after fork); return the counts by reason."""
        counts: dict[str, int] = {}
        with self._lock:
            for parcel in self._waiting:
                live = [index for index, item in enumerate(parcel.items) if item is not None]
                for index in live:
                    reason = "unconfirmed" if index in parcel.unconfirmed else "shutdown"
                    counts[reason] = counts.get(reason, 0) + 1
                    parcel.remove(index)
                parcel.ticket.settle(0, len(live))
            self._waiting.clear()
            self._waiting_records = self._waiting_bytes = 0
            self._idle.notify_all()
        for reason, count in counts.items():
            self._metrics.dropped(count, reason)
        return counts

    def forget(self) -> None:
        """In a forked child: the parent's entries are the parent's to write; start empty."""
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._waiting = deque()
        self._waiting_records = self._waiting_bytes = 0
        self._in_flight = self._in_flight_bytes = 0
        self._failures = 0
        self._trip_started = self._closing_at = None
        self._close_deadline = float("inf")
