"""Redis replies to stream commands, parsed: entry ids, entries, XREAD replies, decoding.

Also the conventions the reader and its consumer groups share about the streams.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._encode.entry import LogEntry, text
from .._encode.select import decode_fields
from .._log import logger

# How long a blocking read waits for new entries, in milliseconds.
DEFAULT_BLOCK_MS = 2000
# A stream key's dead letters (``forward``'s batches refused for good) go to the key plus this;
# such keys are never read as log streams themselves.
DEAD_LETTER_SUFFIX = ":dead"
EntryId = tuple[int, int]
RawEntry = tuple[bytes, "dict[bytes, bytes] | None"]


def parse_id(entry_id: str | bytes) -> EntryId:
    """``b"1700000000000-3"`` -> ``(1700000000000, 3)``."""
    ms, _, seq = text(entry_id).partition("-")
    return int(ms), int(seq or 0)


def order_key(key: str, entry_id: str | bytes) -> tuple[int, str, int]:
    """Where an entry goes when several keys are merged: by the millisecond the server accepted
    it, then (sequence numbers of different keys are unrelated) by key, then by sequence."""
    ms, seq = parse_id(entry_id)
    return ms, key, seq


def fields_of(raw: Any) -> dict[bytes, bytes] | None:
    if raw is None:
        return None
    if isinstance(raw, dict):
        return dict(raw)
    it = iter(raw)
    return dict(zip(it, it, strict=True))


def entries_of(raw: Any) -> list[RawEntry]:
    """A stream reply's ``[[id, [field, value, ...]], ...]`` as (id, fields or None)."""
    out: list[RawEntry] = []
    for item in raw or ():
        if item is None:
            continue
        out.append((item[0], fields_of(item[1]) if len(item) > 1 else None))
    return out


def streams_of(raw: Any) -> list[tuple[str, list[RawEntry]]]:
    """An XREAD / XREADGROUP reply as (key, entries) pairs."""
    if not raw:
        return []
    pairs = raw.items() if isinstance(raw, dict) else ((item[0], item[1]) for item in raw)
    return [(text(key), entries_of(entries)) for key, entries in pairs]


def decode_entry(key: str, entry_id: bytes, fields: Mapping[bytes, bytes] | None) -> LogEntry | None:
    """The entry decoded, or None (logged) for an entry that is gone or not ours."""
    if not fields:
        return None
    try:
        return decode_fields(fields, entry_id=text(entry_id), stream=key)
    except Exception as error:
        logger.warning("Skipping stream entry %s %s that cannot be decoded: %r", key, text(entry_id), error)
        return None
