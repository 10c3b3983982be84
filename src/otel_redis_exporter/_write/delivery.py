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

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .._fast import speedups
from .._metrics import ExporterMetrics
from .._types import Entries, EntryFields
from .attempt import WriteResult

# Most entries and bytes one round trip carries.
MAX_TRIP_ENTRIES = 8192
MAX_TRIP_BYTES = 8 * 1024 * 1024
# Entry overhead beyond its field text (stream entry, bookkeeping), in bytes.
ENTRY_OVERHEAD_BYTES = 64
# How long export() waits for the sender to take its batch, and how long a round trip may go
# without any sign of the server (a reply) before export() stops waiting for it. A healthy server
# answers within milliseconds; when it stalls, the SDK's worker thread is back within about this,
# before its queue (2,048 records) overflows.
HANDOFF_TIMEOUT_S = 0.25
# At shutdown, give up once the server has taken nothing for this long.
SHUTDOWN_PATIENCE_S = 0.75

Item = tuple[str, EntryFields]


def entry_size(fields: EntryFields) -> int:
    """Approximate bytes an entry takes in the queue and on the wire."""
    return ENTRY_OVERHEAD_BYTES + sum(map(len, fields)) + sum(map(len, fields.values()))


def entry_sizes(entries: Entries) -> list[int]:
    """``entry_size`` of each entry, in order; in one call on the fast path, which measures exact
    str and bytes only (anything else is measured here)."""
    if speedups is not None:
        try:
            return speedups.entry_sizes(entries, ENTRY_OVERHEAD_BYTES)
        except TypeError:
            pass
    return [entry_size(fields) for group in entries.values() for fields in group]


def _severity(fields: EntryFields) -> int:
    # OTLP-encoded entries carry no severity field: they count as unspecified (0).
    value = fields.get("severity_number", "0")
    return int(value) if isinstance(value, str) and value.isdigit() else 0


class Ticket:
    """One export's batch: how many of its entries are still open, and how many were dropped.

    Changed under the delivery's lock only; ``Delivery.handoff`` waits on it.
    """

    __slots__ = ("ahead", "dropped", "open", "parcel")

    def __init__(self, count: int) -> None:
        self.open = count
        self.dropped = 0
        self.parcel: Parcel | None = None
        self.ahead = 0  # entries waiting before this batch when it was queued

    def settle(self, written: int, dropped: int) -> None:
        self.open -= written + dropped
        self.dropped += dropped


class Parcel:
    """The entries of one export that are not settled yet.

    ``entries`` is the export's own (stream key -> entries). The first time one entry is needed
    on its own (settled, dropped, or weighed by severity), they are laid out as ``items``, with
    ``None`` in place of each settled one; until then a round trip takes ``entries`` as they are.
    """

    __slots__ = (
        "_items",
        "by_severity",
        "entries",
        "in_flight",
        "live",
        "size",
        "sizes",
        "ticket",
        "unconfirmed",
    )

    def __init__(self, entries: Entries, ticket: Ticket) -> None:
        self.entries = entries
        self._items: list[Item | None] | None = None
        self.sizes = entry_sizes(entries)
        self.size = sum(self.sizes)
        self.live = len(self.sizes)
        self.ticket = ticket
        ticket.parcel = self
        self.in_flight = False
        self.unconfirmed: set[int] = set()
        # Built on the first eviction only: severity -> indices, oldest first.
        self.by_severity: dict[int, deque[int]] | None = None

    @property
    def whole(self) -> bool:
        """Nothing settled yet, and no entry was needed on its own."""
        return self._items is None

    @property
    def items(self) -> list[Item | None]:
        """Each entry with its stream key, in order; None where settled."""
        if self._items is None:
            self._items = [(key, fields) for key, group in self.entries.items() for fields in group]
        return self._items

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

    def settle_all(self) -> None:
        """Every entry is settled."""
        self.entries, self._items, self.live, self.size = {}, [], 0, 0

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
    entries: Entries
    count: int
    _owners: list[tuple[Parcel, int]] | None = None

    @property
    def owners(self) -> list[tuple[Parcel, int]]:
        """Position in ``entries`` (keys in order, entries in order) -> (parcel, index)."""
        if self._owners is None:  # one whole parcel: its entries, as they are
            parcel = self.parcels[0]
            self._owners = [(parcel, index) for index in range(self.count)]
        return self._owners


def _trip(parcels: list[Parcel]) -> Trip:
    if len(parcels) == 1 and parcels[0].whole and all(parcels[0].entries.values()):
        return Trip(parcels, parcels[0].entries, parcels[0].live)  # the common case
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
    return Trip(parcels, entries, len(owners), owners)


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
        quiet_s: float = HANDOFF_TIMEOUT_S,
    ) -> None:
        self.max_records = max_records
        # How long a healthy round trip may go without a reply: the hand-off time, plus the WAIT
        # timeout when replicas must confirm (WAIT answers only when they have, or at its timeout).
        self.quiet_s = quiet_s
        self.max_bytes = max_bytes
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.RLock()
        # Notified whenever the books change: a round trip taken or settled, entries given up.
        self._changed = threading.Condition(self._lock)
        self._waiting: deque[Parcel] = deque()
        self._waiting_records = 0
        self._waiting_bytes = 0
        self._in_flight = 0
        self._in_flight_bytes = 0
        self._failures = 0
        self._trip_started: float | None = None
        self._trip_parcels: list[Parcel] = []  # the round trip in flight
        # The last sign of the server in the round trip in flight: its start, then every reply.
        self._heard_at = 0.0
        self._closing_at: float | None = None
        self._close_deadline = float("inf")
        self._last_progress = 0.0
        self.evicted = 0
        """Entries the bounds dropped since the start (``buffer_full``)."""
        self.wake: Callable[[], None] = lambda: None

    # -- export() side --------------------------------------------------------------------

    def submit(self, entries: Entries, *, wake: bool = True) -> Ticket:
        """Queue one export's entries; the ticket settles as the sender writes or drops them.
        ``wake=False``: the caller tries ``take_now`` first, and wakes the sender if that fails."""
        count = sum(map(len, entries.values()))
        ticket = Ticket(count)
        if not count:
            return ticket
        parcel = Parcel(entries, ticket)
        with self._lock:
            ticket.ahead = self._waiting_records
            self._waiting.append(parcel)
            self._waiting_records += parcel.live
            self._waiting_bytes += parcel.size
            self._enforce_bounds(keep=parcel)
        if wake:
            self.wake()
        return ticket

    def handoff(self, ticket: Ticket) -> bool:
        """Wait for ``ticket``'s batch as long as a healthy Redis needs; True if it was all written.

        It waits up to ``HANDOFF_TIMEOUT_S`` for the sender to take the batch, then for as long as
        the round trip carrying it hears from the server at least every ``quiet_s``. It does not
        wait when an attempt failed, when the round trip in flight stalled, or when the batch
        queued behind more than one round trip holds (a backlog drains without holding up the
        SDK's thread): the batch stays queued and the sender keeps at it.
        """
        taken_by = self._clock() + HANDOFF_TIMEOUT_S
        if ticket.parcel is not None and ticket.ahead + ticket.parcel.live > MAX_TRIP_ENTRIES:
            return False
        with self._changed:
            while ticket.open > 0:
                if self._failures:
                    return False
                started = self._trip_started
                stalled_at = math.inf if started is None else self._heard_at + self.quiet_s
                parcel = ticket.parcel
                until = stalled_at if parcel is not None and parcel.in_flight else min(taken_by, stalled_at)
                left = until - self._clock()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return not ticket.dropped

    def heard(self) -> None:
        """The server just answered something (a reply of the round trip in flight).

        Called by the writers for every reply; no lock: one float, written by the sender only.
        """
        self._heard_at = self._clock()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or in flight; False if ``timeout`` passed first."""
        with self._changed:
            return self._changed.wait_for(
                lambda: not self._waiting and not self._in_flight, max(timeout, 0.0)
            )

    @property
    def queued(self) -> tuple[int, int]:
        """Records and bytes waiting or in flight."""
        with self._lock:
            return self._waiting_records + self._in_flight, self._waiting_bytes + self._in_flight_bytes

    # -- sender side ----------------------------------------------------------------------

    def take_now(self) -> Trip | None:
        """``take`` for export()'s own thread: only while all is well (no failed attempt, not
        closing); the sender does everything else."""
        with self._lock:
            if self._failures or self._closing_at is not None:
                return None
            return self.take()

    def take(self) -> Trip | None:
        """The next round trip: the oldest parcels up to the trip bounds; None when empty, or
        while another round trip is in flight (one at a time)."""
        with self._lock:
            if self._trip_started is not None:
                return None
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
            self._trip_parcels = parcels
            self._trip_started = self._heard_at = self._clock()
            for parcel in parcels:
                parcel.in_flight = True
            self._changed.notify_all()
        self._metrics.inflight(records)
        return _trip(parcels)

    def settle(self, trip: Trip, result: WriteResult) -> Settled:
        """Book one attempt: written and refused entries leave, the rest go back to the front."""
        settled = Settled()
        with self._lock:
            if trip.parcels is not self._trip_parcels:  # given up meanwhile (shutdown): not ours
                return settled
            if result.ok:  # the common case: every parcel of the trip is done
                for parcel in trip.parcels:
                    settled.written += parcel.live
                    parcel.ticket.settle(parcel.live, 0)
                    parcel.settle_all()
            else:
                self._settle_each(trip, result, settled)
            for parcel in trip.parcels:
                parcel.in_flight = False
            self._trip_parcels = []
            back = [parcel for parcel in trip.parcels if parcel.live]
            settled.retrying = sum(parcel.live for parcel in back)
            self._waiting.extendleft(reversed(back))
            self._waiting_records += settled.retrying
            self._waiting_bytes += sum(parcel.size for parcel in back)
            self._in_flight = self._in_flight_bytes = 0
            if settled.written:
                self._last_progress = self._clock()
            self._trip_started = None
            self._failures = 0 if result.ok or settled.written else self._failures + 1
            for reason, count in self._enforce_bounds(keep=None).items():
                settled.dropped[reason] = settled.dropped.get(reason, 0) + count
            self._changed.notify_all()
            wake = bool(self._waiting) or self._closing_at is not None
        if wake:  # batches came while this round trip was in flight, or the sender is closing
            self.wake()
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

    @property
    def close_deadline(self) -> float:
        """When closing must be over (infinity until it begins)."""
        return self._close_deadline

    def give_up_at(self) -> float:
        """When a closing sender stops trying: the close deadline, or ``SHUTDOWN_PATIENCE_S``
        after the server last took or answered anything (or after closing began): a large round
        trip whose replies keep coming on a busy machine is let finish."""
        with self._lock:
            if self._closing_at is None:
                return math.inf
            heard = self._heard_at if self._trip_started is not None else 0.0
            since = max(self._closing_at, self._last_progress, heard)
            return min(self._close_deadline, since + SHUTDOWN_PATIENCE_S)

    def give_up(self) -> dict[str, int]:
        """Drop everything waiting, and a round trip left unfinished (its sender was stopped):
        at shutdown. Return the counts by reason."""
        counts: dict[str, int] = {}
        with self._lock:
            for parcel in [*self._trip_parcels, *self._waiting]:
                live = [index for index, item in enumerate(parcel.items) if item is not None]
                for index in live:
                    sent = index in parcel.unconfirmed or parcel.in_flight
                    reason = "unconfirmed" if sent else "shutdown"
                    counts[reason] = counts.get(reason, 0) + 1
                    parcel.remove(index)
                parcel.ticket.settle(0, len(live))
            self._trip_parcels = []
            self._trip_started = None
            self._in_flight = self._in_flight_bytes = 0
            self._waiting.clear()
            self._waiting_records = self._waiting_bytes = 0
            self._changed.notify_all()
        for reason, count in counts.items():
            self._metrics.dropped(count, reason)
        return counts

    def forget(self) -> None:
        """In a forked child: the parent's entries are the parent's to write; start empty."""
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._waiting = deque()
        self._waiting_records = self._waiting_bytes = 0
        self._in_flight = self._in_flight_bytes = 0
        self._failures = 0
        self._trip_started = self._closing_at = None
        self._trip_parcels = []
        self._close_deadline = float("inf")
