"""``LogEntry``, one decoded stream entry, and the decoder of the flat encoding."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .flat import (
    BODY_TYPE_JSON,
    FLAT,
    RESOURCE_SCHEMA_URL_FIELD,
    SCOPE_SCHEMA_URL_FIELD,
    TIMESTAMP_UNSET_FIELD,
    restore,
)
from .uid import UID_FIELD


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One decoded stream entry: the log record with its original types restored.

    ``timestamp`` falls back to the observed time for a record that had none (for display and
    ordering); ``timestamp_set`` says whether it is the record's own.
    """

    timestamp: int
    observed_timestamp: int
    severity_number: int | None = None
    severity_text: str | None = None
    body: Any = None
    trace_id: str | None = None
    span_id: str | None = None
    trace_flags: int | None = None
    event_name: str | None = None
    service_name: str | None = None
    scope_name: str | None = None
    scope_version: str | None = None
    scope_attributes: Mapping[str, Any] = field(default_factory=dict)
    resource: Mapping[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, Any] = field(default_factory=dict)
    dropped_attributes_count: int = 0
    truncated: Sequence[str] = ()
    uid: str | None = None
    entry_id: str | None = None
    stream: str | None = None
    encoding: str = FLAT
    timestamp_set: bool = True
    resource_schema_url: str | None = None
    scope_schema_url: str | None = None

    @property
    def own_timestamp(self) -> int:
        """The record's own timestamp in nanoseconds, 0 when it had none (as OTLP writes it)."""
        return self.timestamp if self.timestamp_set else 0


def text(value: Any) -> str:
    """A reply's bytes (or anything else) as text; undecodable bytes become U+FFFD."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _object(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    decoded = json.loads(raw)
    return {key: restore(value) for key, value in decoded.items()}


def decode_flat(
    fields: Mapping[str, str], *, entry_id: str | None = None, stream: str | None = None
) -> LogEntry:
    """The inverse of the flat encoder: an entry's fields, as text, to a ``LogEntry``."""
    body: Any = fields.get("body")
    if body is not None and fields.get("body_type") == BODY_TYPE_JSON:
        body = restore(json.loads(body))

    def optional_int(name: str) -> int | None:
        value = fields.get(name)
        return int(value) if value is not None else None

    observed = int(fields.get("observed_timestamp", "0"))
    return LogEntry(
        timestamp=int(fields.get("timestamp", observed)),
        observed_timestamp=observed,
        severity_number=optional_int("severity_number"),
        severity_text=fields.get("severity_text"),
        body=body,
        trace_id=fields.get("trace_id"),
        span_id=fields.get("span_id"),
        trace_flags=optional_int("trace_flags"),
        event_name=fields.get("event_name"),
        service_name=fields.get("service.name"),
        scope_name=fields.get("scope.name"),
        scope_version=fields.get("scope.version"),
        scope_attributes=_object(fields.get("scope.attributes")),
        resource=_object(fields.get("resource")),
        attributes=_object(fields.get("attributes")),
        dropped_attributes_count=int(fields.get("dropped_attributes_count", "0")),
        truncated=tuple(json.loads(fields["truncated"])) if "truncated" in fields else (),
        uid=fields.get(UID_FIELD),
        entry_id=entry_id,
        stream=stream,
        timestamp_set=TIMESTAMP_UNSET_FIELD not in fields and "timestamp" in fields,
        resource_schema_url=fields.get(RESOURCE_SCHEMA_URL_FIELD),
        scope_schema_url=fields.get(SCOPE_SCHEMA_URL_FIELD),
    )
