"""Delivery: what happens to encoded entries between ``export()`` and the writer.

The SDK's batch processor drops a batch whose export failed, so entries that could not be written
are kept in the bounded outage buffer and written first, in order, on a later export. While Redis
is away, exports only add to the buffer and return at once; a write is tried again after a probe
interval that doubles up to ``MAX_PROBE_INTERVAL_S``. Every entry ends written, or dropped and
counted with a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._buffer import BufferedEntry, OutageBuffer
from ._formats import Entries, EntryFields
from ._metrics import ExporterMetrics
from ._writer import WriteResult

FIRST_PROBE_INTERVAL_S = 0.5
MAX_PROBE_INTERVAL_S = 8.0
# Most entries one export writes from the buffer, so one round trip stays a sane size.
MAX_FLUSH_ENTRIES = 8192

Write = Callable[[Entries, float], WriteResult]


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of one delivery, for the exporter's result and log line."""

    ok: bool
    written: int = 0
    buffered: int = 0
    dropped: int = 0
    reason: str | None = None
    error_type: str | None = None


def _severity(fields: EntryFields) -> int:
    # OTLP-encoded entries carry no severity field: they count as unspecified (0).
    value = fields.get("severity_number", "0")
    return int(value) if isinstance(value, str) else 0


def _flatten(entries: Entries) -> list[tuple[str, EntryFields]]:
    """Entries in writer position order (keys in order, entries in order within a key)."""
    return [(key, fields) for key, key_entries in entries.items() for fields in key_entries]


class Delivery:
    """Writes entries through ``write``, buffering what could not be written yet."""

    def __init__(
        self,
        write: Write,
        buffer: OutageBuffer,
        metrics: ExporterMetrics,
        clock: Callable[[], float],
    ) -> None:
        self._write = write
        self._buffer = buffer
        self._metrics = metrics
        self._clock = clock
        self._probe_at = 0.0
        self._probe_interval = FIRST_PROBE_INTERVAL_S

    def deliver(self, entries: Entries, deadline: float) -> Report:
        """Write ``entries`` (after whatever the buffer holds) before ``deadline``."""
        count = sum(len(key_entries) for key_entries in entries.values())
        if not self._buffer and self._clock() >= self._probe_at:
            return self._write_now(_flatten(entries), entries, count, deadline)
        dropped = self._hold(_flatten(entries))
        if self._clock() < self._probe_at:
            return Report(
                ok=False,
                buffered=count - dropped,
                dropped=dropped,
                reason="Redis was unavailable at the last attempt; records are buffered",
                error_type="unavailable",
            )
        return self._flush(deadline, dropped)

    def _write_now(
        self, flat: list[tuple[str, EntryFields]], entries: Entries, count: int, deadline: float
    ) -> Report:
        """The common case: nothing buffered, so the new entries go straight to the writer."""
        self._metrics.inflight(count)
        try:
            result = self._write(entries, deadline)
        finally:
            self._metrics.inflight(-count)
        rejected = self._count_rejected(result)
        left = [item for position, item in enumerate(flat) if not self._settled(result, position)]
        dropped = self._hold(left) + rejected
        self._after_attempt(result, left)
        return self._report(result, buffered=len(left), dropped=dropped)

    def _flush(self, deadline: float, dropped_now: int) -> Report:
        """Write the oldest buffered entries (the new ones are among them) in one round trip."""
        chunk = self._buffer.oldest(MAX_FLUSH_ENTRIES)
        grouped: dict[str, list[BufferedEntry]] = {}
        for entry in chunk:
            grouped.setdefault(entry.key, []).append(entry)
        ordered = [entry for key_entries in grouped.values() for entry in key_entries]
        entries = {key: [entry.fields for entry in key_entries] for key, key_entries in grouped.items()}
        self._metrics.inflight(len(ordered))
        try:
            result = self._write(entries, deadline)
        finally:
            self._metrics.inflight(-len(ordered))
        rejected = self._count_rejected(result)
        self._buffer.remove(
            entry for position, entry in enumerate(ordered) if self._settled(result, position)
        )
        left = [entry for position, entry in enumerate(ordered) if not self._settled(result, position)]
        self._after_attempt(result, left)
        report = self._report(result, buffered=len(self._buffer), dropped=dropped_now + rejected)
        if report.ok and self._buffer:
            # Written what this round trip could carry; more is waiting for the next export.
            return Report(ok=True, written=report.written, buffered=len(self._buffer), dropped=report.dropped)
        return report

    @staticmethod
    def _settled(result: WriteResult, position: int) -> bool:
        return position in result.entry_ids or position in result.rejected

    def _count_rejected(self, result: WriteResult) -> int:
        self._metrics.written(result.written)
        for error_type in set(result.rejected.values()):
            self._metrics.dropped(sum(1 for e in result.rejected.values() if e == error_type), error_type)
        return len(result.rejected)

    def _hold(self, items: Sequence[tuple[str, EntryFields]]) -> int:
        """Buffer entries not yet written; return how many entries the bounds dropped."""
        if not items:
            return 0
        dropped = self._buffer.add(BufferedEntry(key, fields, _severity(fields)) for key, fields in items)
        self._metrics.dropped(dropped, "buffer_full")
        return dropped

    def _after_attempt(self, result: WriteResult, left: Sequence[object]) -> None:
        """Open the probe window after a failed attempt; close it after a successful one."""
        if left:
            self._probe_at = self._clock() + self._probe_interval
            self._probe_interval = min(self._probe_interval * 2, MAX_PROBE_INTERVAL_S)
        elif result.written:
            self._probe_at = 0.0
            self._probe_interval = FIRST_PROBE_INTERVAL_S

    def _report(self, result: WriteResult, *, buffered: int, dropped: int) -> Report:
        error_type = None
        if not result.ok:
            error_type = next(iter(result.rejected.values()), None) or "unavailable"
        return Report(
            ok=result.ok,
            written=result.written,
            buffered=buffered,
            dropped=dropped,
            reason=result.reason,
            error_type=error_type,
        )

    def give_up(self, deadline: float) -> int:
        """At shutdown: one last attempt to write the buffer, then drop (and count) the rest."""
        if self._buffer:
            self._probe_at = 0.0
            self._flush(deadline, 0)
        given_up = self._buffer.clear()
        self._metrics.dropped(given_up, "shutdown")
        return given_up
