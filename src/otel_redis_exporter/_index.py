"""The per-trace index: which stream entries belong to a trace, kept in one small key per trace.

Pure: builds commands and parses members, no I/O. After a batch is written, every trace that has
records in it gets ``RPUSH <base>:trace:<trace_id> "<entry-id> <stream-key>" ...`` and a
``PEXPIRE`` of the index TTL, all sent in one extra round trip. ``<base>`` is the stream key, or
for a templated key the literal text before its first placeholder (``logs:{service.name}`` ->
``logs``). A trace's key lives for the TTL after its last record was written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._config import ExporterConfig
from ._errors import describe
from ._keys import StreamKeyTemplate, shard_keys, shard_of
from ._log import logger
from ._types import Command, Entries

INDEX_INFIX = ":trace:"
# The base for a template that starts with a placeholder.
DEFAULT_INDEX_BASE = "otel"


def index_base(stream: str) -> str:
    """The prefix of the index keys for the stream setting ``stream`` (a key or a template)."""
    template = StreamKeyTemplate.parse(stream)
    if template.is_fixed:
        return stream
    literal = stream.split("{", 1)[0].rstrip(":")
    return literal or DEFAULT_INDEX_BASE


def index_key(base: str, trace_id: str) -> str:
    """The index key of one trace (``trace_id``: 32 lowercase hex digits)."""
    return f"{base}{INDEX_INFIX}{trace_id}"


def parse_member(member: str | bytes) -> tuple[str, str]:
    """``(stream key, entry id)`` of one index member."""
    text = member.decode("utf-8", "replace") if isinstance(member, bytes) else member
    entry_id, _, key = text.partition(" ")
    return key, entry_id


class TraceIndex:
    """Builds the index commands for written batches, and reports failures to write them."""

    def __init__(self, base: str, ttl_s: float, shards: int = 1) -> None:
        self.base = base
        self.ttl_ms = max(int(ttl_s * 1000), 1)
        self.shards = shards

    @classmethod
    def for_config(cls, config: ExporterConfig) -> TraceIndex | None:
        """The index the configuration asks for, or None when it is off."""
        if not config.trace_index_ttl_s:
            return None
        return cls(index_base(config.stream), config.trace_index_ttl_s, config.shards)

    def commands(self, entries: Entries, entry_ids: Mapping[int, str]) -> list[Command]:
        """One ``RPUSH`` and one ``PEXPIRE`` per trace of the batch, for the entries written.

        ``entry_ids`` maps positions (keys in order, entries in order within a key) to ids.
        """
        members: dict[str, list[str]] = {}
        position = -1
        for key, key_entries in entries.items():
            for fields in key_entries:
                position += 1
                trace_id = fields.get("trace_id")
                entry_id = entry_ids.get(position)
                if entry_id is None or not isinstance(trace_id, str) or not trace_id:
                    continue
                members.setdefault(trace_id, []).append(f"{entry_id} {self._stream_key(key, trace_id)}")
        commands: list[Command] = []
        for trace_id, trace_members in members.items():
            key = index_key(self.base, trace_id)
            commands.append(("RPUSH", key, *trace_members))
            commands.append(("PEXPIRE", key, str(self.ttl_ms)))
        return commands

    def _stream_key(self, key: str, trace_id: str) -> str:
        """The key the entry went to: with shards, the trace's shard of ``key``."""
        if self.shards == 1:
            return key
        return shard_keys(key, self.shards)[shard_of(trace_id, self.shards, 0)]

    def report(self, outcome: Sequence[Any] | BaseException) -> None:
        """Log (rate limited) why the index could not be written; the records themselves were."""
        if isinstance(outcome, BaseException):
            error: BaseException | None = outcome
        else:
            error = next((reply for reply in outcome if isinstance(reply, BaseException)), None)
        if error is not None:
            logger.warning(
                "Log records were written but the trace index was not updated: %s", describe(error)
            )
