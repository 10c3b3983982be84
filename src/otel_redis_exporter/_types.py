"""The package's shared vocabulary: each type that crosses modules is named once, here."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

# A server's host and port, e.g. a sentinel's.
Address = tuple[str, int]
# Seconds from an arbitrary start (time.monotonic); a seam for tests.
Clock = Callable[[], float]
# One Redis command, as redis-py packs it.
Command = tuple[str | bytes, ...]
# One stream entry's fields: every value a str, bytes only for an OTLP protobuf payload.
EntryFields = Mapping[str, str | bytes]
# The entries of one batch, by stream key.
Entries = Mapping[str, Sequence[EntryFields]]
