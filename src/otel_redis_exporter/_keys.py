"""Stream keys: a fixed key, or a template filled from resource attributes.

``logs:{service.name}`` becomes ``logs:checkout`` for a resource with ``service.name=checkout``.
A filled-in value is confined to ``[A-Za-z0-9._-]`` (anything else becomes ``_``) and to
``MAX_FIELD_LENGTH`` characters, so attribute values cannot reach keys outside the template:
no ``:``, ``{``, ``}``, ``*`` or spaces ever come from a value. A missing or empty attribute is
written as ``MISSING_VALUE``, and a warning says so (once a minute per key: the logger is rate
limited).
"""

from __future__ import annotations

import binascii
import contextlib
import functools
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ._log import logger

MISSING_VALUE = "unknown"
MAX_FIELD_LENGTH = 64

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _safe(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    text = _UNSAFE.sub("_", text[:MAX_FIELD_LENGTH])
    return text or MISSING_VALUE


@dataclass(frozen=True, slots=True)
class StreamKeyTemplate:
    """A parsed stream key; ``fields`` is empty for a fixed key."""

    template: str
    fields: tuple[str, ...]

    @classmethod
    def parse(cls, template: str) -> StreamKeyTemplate:
        """Parse ``template``; raises ``ValueError`` for unbalanced braces or an empty placeholder."""
        fields = tuple(_PLACEHOLDER.findall(template))
        rest = _PLACEHOLDER.sub("", template)
        if "{" in rest or "}" in rest:
            raise ValueError(f"stream template has an unbalanced brace: {template!r}")
        if any(not name.strip() for name in fields):
            raise ValueError(f"stream template has an empty placeholder: {template!r}")
        return cls(template, fields)

    @property
    def is_fixed(self) -> bool:
        return not self.fields

    def render(self, attributes: Mapping[str, Any]) -> str:
        """The key for a resource with these attributes."""
        if not self.fields:
            return self.template

        missing: list[str] = []

        def fill(match: re.Match[str]) -> str:
            value = attributes.get(match.group(1))
            if value is None or value == "":
                missing.append(match.group(1))
                return MISSING_VALUE
            return _safe(value)

        key = _PLACEHOLDER.sub(fill, self.template)
        if missing:
            logger.warning(
                "The resource has no %s for the stream key template %r; writing to %r",
                " or ".join(repr(name) for name in missing),
                self.template,
                key,
            )
        return key

    def pattern(self) -> str:
        """A ``SCAN MATCH`` pattern that covers every key this template can produce."""
        escaped = re.sub(r"([*?\[\]\\])", r"\\\1", _PLACEHOLDER.sub("\0", self.template))
        return escaped.replace("\0", "*")


# --------------------------------------------------------------------------
# shards: one stream spread over several keys in different Redis Cluster slots
# --------------------------------------------------------------------------

CLUSTER_SLOTS = 16384
# Enough for any cluster; keeps the tag search (about 2 * shards CRCs per shard) instant.
MAX_SHARDS = 256
_TRACE_ID_HEX_DIGITS = 32

F = TypeVar("F", bound=Mapping[str, str | bytes])


def key_slot(key: str | bytes) -> int:
    """The Redis Cluster hash slot of ``key`` (CRC16 of the key, or of its ``{hash tag}``)."""
    data = key.encode() if isinstance(key, str) else key
    start = data.find(b"{")
    if start != -1:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    return binascii.crc_hqx(data, 0) % CLUSTER_SLOTS


@functools.lru_cache(maxsize=64)
def shard_tags(shards: int) -> tuple[str, ...]:
    """The hash tags of ``shards`` shards, chosen once and for all (readers compute the same).

    Shard ``i`` owns the ``i``-th of ``shards`` equal ranges of the 16384 slots; its tag is the
    first of ``"i"``, ``"i.1"``, ``"i.2"``, ... whose slot lies in the middle half of that range.
    A cluster spreads slots over its masters in contiguous ranges, so the shards of one stream
    land on as many different masters as the layout allows.
    """
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards must be from 1 to {MAX_SHARDS}; got {shards}")
    tags = []
    for index in range(shards):
        low, high = index * CLUSTER_SLOTS // shards, (index + 1) * CLUSTER_SLOTS // shards
        margin = (high - low) // 4
        low, high = low + margin, high - margin
        candidates = (str(index) if n == 0 else f"{index}.{n}" for n in itertools.count())
        tags.append(next(tag for tag in candidates if low <= key_slot(tag) < high))
    return tuple(tags)


def shard_keys(key: str, shards: int) -> list[str]:
    """Every stream key that ``key`` is written to with ``shards`` shards, in shard order.

    One shard is ``key`` itself; more are ``key:{tag}`` (see ``shard_tags``), e.g.
    ``otel:logs:{0}``, ``otel:logs:{1.2}``, ``otel:logs:{2}``. A reader merges them by entry id.
    """
    if shards == 1:
        return [key]
    return [f"{key}:{{{tag}}}" for tag in shard_tags(shards)]


def shard_of(trace_id: str | None, shards: int, sequence: int) -> int:
    """The shard of a record: by its trace id (32 hex digits) when it has one, so one trace stays
    in one shard; otherwise ``sequence`` (a running count) spreads records evenly."""
    if trace_id is not None and len(trace_id) == _TRACE_ID_HEX_DIGITS:
        with contextlib.suppress(ValueError):
            # The low 64 bits of a W3C trace id are random.
            return int(trace_id[16:], 16) % shards
    return sequence % shards


class ShardRouter:
    """Spreads the entries of each stream key over its shard keys; the only state is the
    running count that spreads records without a trace."""

    def __init__(self, shards: int) -> None:
        self.shards = shards
        self._sequence = itertools.count()

    def split(self, entries: Mapping[str, Sequence[F]]) -> tuple[dict[str, list[F]], list[int]]:
        """``entries`` regrouped by shard key, and for each regrouped entry (keys in order,
        entries in order) its position in ``entries`` laid out the same way."""
        if self.shards == 1:
            count = sum(len(key_entries) for key_entries in entries.values())
            return {key: list(key_entries) for key, key_entries in entries.items()}, list(range(count))
        grouped: dict[str, list[tuple[int, F]]] = {}
        position = 0
        for key, key_entries in entries.items():
            keys = shard_keys(key, self.shards)
            for fields in key_entries:
                trace_id = fields.get("trace_id")
                shard = shard_of(
                    trace_id if isinstance(trace_id, str) else None, self.shards, next(self._sequence)
                )
                grouped.setdefault(keys[shard], []).append((position, fields))
                position += 1
        regrouped = {key: [fields for _, fields in items] for key, items in grouped.items()}
        positions = [position for items in grouped.values() for position, _ in items]
        return regrouped, positions
