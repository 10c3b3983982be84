"""The outage buffer's bounds and eviction order (pure, no server)."""

from __future__ import annotations

from otel_redis_exporter._buffer import ENTRY_OVERHEAD_BYTES, BufferedEntry, OutageBuffer


def entry(body: str, severity: int = 9, key: str = "k") -> BufferedEntry:
    """A buffered entry whose body identifies it."""
    return BufferedEntry(key, {"body": body}, severity)


def bodies(buffer: OutageBuffer) -> list[str]:
    """What the buffer holds, oldest first."""
    return [e.fields["body"] for e in buffer.oldest(10_000)]


def test_entries_leave_in_the_order_they_came() -> None:
    """oldest() returns entries in arrival order whatever their severities."""
    buffer = OutageBuffer(max_records=10, max_bytes=10**6)
    buffer.add([entry("a", 17), entry("b", 5), entry("c", 9), entry("d", 5)])
    assert bodies(buffer) == ["a", "b", "c", "d"]
    assert buffer.oldest(2) == buffer.oldest(10)[:2]


def test_full_buffer_drops_lowest_severity_first_then_oldest() -> None:
    """Over the record bound, DEBUG goes before INFO before ERROR; within one severity, oldest first."""
    buffer = OutageBuffer(max_records=3, max_bytes=10**6)
    dropped = buffer.add([entry("info1", 9), entry("debug1", 5), entry("error1", 17), entry("debug2", 5)])
    assert dropped == 1
    assert bodies(buffer) == ["info1", "error1", "debug2"]
    dropped = buffer.add([entry("info2", 9), entry("error2", 17)])
    assert dropped == 2
    assert bodies(buffer) == ["error1", "info2", "error2"]


def test_byte_bound_is_kept() -> None:
    """The bytes held never exceed max_bytes; the count of drops is exact."""
    size = entry("x" * 100).size
    buffer = OutageBuffer(max_records=1000, max_bytes=size * 5)
    dropped = buffer.add(entry("x" * 100) for _ in range(12))
    assert dropped == 7
    assert buffer.records == 5
    assert buffer.bytes == size * 5 <= buffer.max_bytes
    assert size == ENTRY_OVERHEAD_BYTES + len("body") + 100


def test_remove_forgets_exactly_the_entries_given() -> None:
    """remove() takes out written entries and keeps the counts right."""
    buffer = OutageBuffer(max_records=10, max_bytes=10**6)
    items = [entry(str(i), severity=5 + i % 3) for i in range(6)]
    buffer.add(items)
    buffer.remove(items[::2])
    assert bodies(buffer) == ["1", "3", "5"]
    assert buffer.records == 3
    assert buffer.bytes == sum(e.size for e in items[1::2])


def test_zero_bound_keeps_nothing() -> None:
    """With a bound of 0 every entry is dropped and counted."""
    buffer = OutageBuffer(max_records=0, max_bytes=10**6)
    assert buffer.add([entry("a"), entry("b")]) == 2
    assert len(buffer) == 0


def test_clear_reports_what_was_given_up() -> None:
    """clear() empties the buffer and says how many entries it held."""
    buffer = OutageBuffer(max_records=10, max_bytes=10**6)
    buffer.add([entry("a"), entry("b")])
    assert buffer.clear() == 2
    assert (buffer.records, buffer.bytes) == (0, 0)
