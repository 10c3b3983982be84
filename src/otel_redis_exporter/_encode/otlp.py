"""The OTLP entry encodings: one record per entry as a standard OTLP ``ResourceLogs``, and back.

Needs the ``otlp`` extra (``opentelemetry-exporter-otlp-proto-common`` and protobuf); import it
through ``select.import_otlp`` to get a clear error when they are missing.

An entry holds ``v``, ``encoding`` (``otlp_json`` or ``otlp_proto``), ``trace_id`` (hex, when the
record has trace context, so an index or a filter need not parse the payload) and ``payload``:
the record with its resource and scope as one ``ResourceLogs`` message, serialized as protobuf
bytes or as OTLP/JSON (lowerCamelCase names, hex trace and span ids, enums as integers, 64-bit
integers as strings). The payload is built by the OpenTelemetry encoder (``encode_logs``).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from google.protobuf import json_format
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import format_trace_id

from .._keys import StreamKeyTemplate
from .._log import logger
from .entry import LogEntry
from .flat import (
    ENCODING_ERROR_FIELD,
    ENCODING_FIELD,
    MAX_DEPTH,
    PAYLOAD_FIELD,
    PLACEHOLDER_BODY,
    SCHEMA_VERSION,
    UNBOUNDED,
    dumps,
    int_text,
    safe_text,
    str_of,
)
from .uid import UID_FIELD, record_uid

OTLP_JSON = "otlp_json"
OTLP_PROTO = "otlp_proto"
OTLP_ENCODINGS = (OTLP_JSON, OTLP_PROTO)

# OTLP/JSON writes these bytes fields as hex, not base64 like protobuf's JSON mapping.
_HEX_ID_FIELDS = ("traceId", "spanId")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# An entry while it is built (the EntryFields of _types once done).
EntryDraft = dict[str, str | bytes]
# About what one list item and one map item cost in OTLP/JSON, besides their value
# (`{"intValue":"1"},` and `{"key":"","value":{...}},`): max_entry_bytes counts with these.
_ITEM_BYTES = 16
_PAIR_BYTES = 28


class _Budget:
    """About how many bytes of one entry are left; collections stop growing once it runs out."""

    __slots__ = ("cut", "left")

    def __init__(self, left: int) -> None:
        self.left = left
        self.cut = False

    def spend(self, size: int) -> bool:
        """False (and ``cut`` set) when nothing is left for ``size`` more bytes' worth."""
        if self.left <= 0:
            self.cut = True
            return False
        self.left -= size
        return True


def _plain(value: Any, depth: int = 0, budget: _Budget | None = None) -> bool:
    """Whether the OpenTelemetry encoder takes ``value`` as it is, exactly, within ``budget``."""
    budget = budget or _Budget(UNBOUNDED)
    kind = type(value)
    if kind is str:
        if not budget.spend(len(value) + 3) or budget.left < 0:
            return False
        return bool(value.isascii() or safe_text(value) is value)
    if kind is bytes:
        return budget.spend(len(value)) and budget.left >= 0
    budget.left -= 8
    if kind is bool or kind is float or value is None:
        return True
    if kind is int:
        return bool(_INT64_MIN <= value <= _INT64_MAX)
    if depth >= MAX_DEPTH:
        return False
    if kind is list or kind is tuple:
        return len(value) * _ITEM_BYTES <= budget.left and all(
            _plain(item, depth + 1, budget) for item in value
        )
    if kind is dict:
        return len(value) * _PAIR_BYTES <= budget.left and all(
            type(key) is str and _plain(item, depth + 1, budget) for key, item in value.items()
        )
    return False


def otlp_value(value: Any, depth: int = 0, budget: _Budget | None = None) -> Any:
    """``value`` made something OTLP's AnyValue holds; what it cannot hold becomes a string.
    Strings, bytes and collections are cut once ``budget`` runs out."""
    budget = budget or _Budget(UNBOUNDED)
    kind = type(value)
    if kind is str:
        cut = max(budget.left, 0)
        budget.spend(len(value) + 3)
        if len(value) > cut:
            budget.cut = True
            value = value[:cut]
        return safe_text(value)
    budget.left -= 8
    if kind is bool or kind is float or value is None:
        return value
    if kind is bytes:
        cut = max(budget.left, 0)
        budget.spend(len(value))
        if len(value) > cut:
            budget.cut = True
            return value[:cut]
        return value
    if kind is int:
        return value if _INT64_MIN <= value <= _INT64_MAX else int_text(value)
    if depth >= MAX_DEPTH:
        return f"<nested deeper than {MAX_DEPTH} levels>"
    if isinstance(value, bytearray | memoryview):
        return otlp_value(bytes(value), depth, budget)
    try:
        if isinstance(value, Mapping):
            items: dict[str, Any] = {}
            for key, item in value.items():
                if not budget.spend(len(str_of(key)) + _PAIR_BYTES):
                    break
                items[safe_text(str_of(key))] = otlp_value(item, depth + 1, budget)
            return items
        if isinstance(value, list | tuple):
            out: list[Any] = []
            for item in value:
                if not budget.spend(_ITEM_BYTES):
                    break
                out.append(otlp_value(item, depth + 1, budget))
            return out
    except Exception:
        return f"<unreadable {type(value).__name__}>"
    if isinstance(value, str):
        return otlp_value(str.__str__(value), depth, budget)
    if isinstance(value, int):
        return otlp_value(int.__index__(value), depth, budget)
    if isinstance(value, float):
        return float.__float__(value)
    return safe_text(str_of(value))


def _encodable(record: ReadableLogRecord, max_entry_bytes: int = UNBOUNDED) -> tuple[ReadableLogRecord, bool]:
    """``record``, or a copy whose body and attributes the OpenTelemetry encoder cannot refuse
    and that fits ``max_entry_bytes``; and whether anything was cut to fit."""
    log = record.log_record
    attributes = log.attributes or {}
    check = _Budget(max_entry_bytes)
    if _plain(log.body, 0, check) and all(
        type(key) is str and _plain(value, 0, check) for key, value in attributes.items()
    ):
        return record, False
    budget = _Budget(max_entry_bytes)
    clean = copy.copy(log)
    clean.body = otlp_value(log.body, 0, budget)
    clean.attributes = otlp_value(dict(attributes), 0, budget)
    return dataclasses.replace(record, log_record=clean), budget.cut


def resource_logs_to_json(message: ResourceLogs) -> str:
    """OTLP/JSON of ``message``: camelCase, hex trace and span ids, integer enums."""
    document = json_format.MessageToDict(message, use_integers_for_enums=True)
    for scope_logs in document.get("scopeLogs", ()):
        for record in scope_logs.get("logRecords", ()):
            for name in _HEX_ID_FIELDS:
                if name in record:
                    record[name] = base64.b64decode(record[name]).hex()
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def resource_logs_from_json(text: str | bytes) -> ResourceLogs:
    """The inverse of ``resource_logs_to_json``; unknown fields are ignored."""
    document = json.loads(text)
    for scope_logs in document.get("scopeLogs", ()):
        for record in scope_logs.get("logRecords", ()):
            for name in _HEX_ID_FIELDS:
                if record.get(name):
                    record[name] = base64.b64encode(bytes.fromhex(record[name])).decode("ascii")
    message = ResourceLogs()
    json_format.ParseDict(document, message, ignore_unknown_fields=True)
    return message


class OtlpEncoder:
    """Encodes a batch into one entry per record holding the record's OTLP ``ResourceLogs``."""

    def __init__(self, template: StreamKeyTemplate, encoding: str, max_entry_bytes: int = UNBOUNDED) -> None:
        if encoding not in OTLP_ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(OTLP_ENCODINGS)}; got {encoding!r}")
        self._template = template
        self._encoding = encoding
        self._max_entry_bytes = max_entry_bytes

    def encode(
        self, batch: Iterable[ReadableLogRecord], now_ns: int, uid_prefix: str | None = None
    ) -> dict[str, list[EntryDraft]]:
        """Stream key -> the entries for it, in batch order (``now_ns`` is unused: OTLP keeps
        an unset timestamp unset). With ``uid_prefix``, every entry gets a ``log.record.uid``."""
        keys: dict[int, str] = {}
        out: dict[str, list[EntryDraft]] = {}
        for index, record in enumerate(batch):
            resource = record.resource
            key = keys.get(id(resource))
            if key is None:
                key = keys[id(resource)] = self._template.render(
                    dict(resource.attributes) if resource is not None else {}
                )
            try:
                fields = self._entry(record)
            except Exception as error:  # one record never costs the batch
                fields = self._placeholder(record, error)
            if uid_prefix is not None:
                fields[UID_FIELD] = record_uid(uid_prefix, index)
            out.setdefault(key, []).append(fields)
        return out

    def _entry(self, record: ReadableLogRecord, error_type: str | None = None) -> EntryDraft:
        encodable, cut = _encodable(record, self._max_entry_bytes)
        [message] = encode_logs([encodable]).resource_logs
        fields: EntryDraft = {"v": SCHEMA_VERSION, ENCODING_FIELD: self._encoding}
        log = record.log_record
        if log.trace_id and log.span_id:
            fields["trace_id"] = format_trace_id(log.trace_id)
        if cut:
            fields["truncated"] = dumps(["record"])
        if error_type is not None:
            fields[ENCODING_ERROR_FIELD] = error_type
        if self._encoding == OTLP_PROTO:
            fields[PAYLOAD_FIELD] = message.SerializeToString()
        else:
            fields[PAYLOAD_FIELD] = resource_logs_to_json(message)
        return fields

    def _placeholder(self, record: ReadableLogRecord, error: Exception) -> EntryDraft:
        """The entry standing in for a record that could not be encoded: a new record with the
        body ``PLACEHOLDER_BODY``, the original's timestamps, resource and scope where they can
        be encoded, and the error's type."""
        logger.warning(
            "A log record could not be encoded (%s: %s); it is written with the body %r",
            type(error).__name__,
            str_of(error)[:200],
            PLACEHOLDER_BODY,
        )
        log = record.log_record
        clean = LogRecord(
            timestamp=log.timestamp if isinstance(log.timestamp, int) else None,
            observed_timestamp=log.observed_timestamp if isinstance(log.observed_timestamp, int) else None,
            body=PLACEHOLDER_BODY,
        )
        try:
            return self._entry(dataclasses.replace(record, log_record=clean), type(error).__name__)
        except Exception:  # the resource or scope is what fails: leave them out too
            bare = ReadableLogRecord(log_record=clean, resource=Resource.get_empty())
            return self._entry(bare, type(error).__name__)


def any_value(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as a Python value (an unset value is ``None``)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return key_values(value.kvlist_value.values)
    return getattr(value, which)


def key_values(items: Sequence[KeyValue]) -> dict[str, Any]:
    """OTLP attributes as a dict."""
    return {item.key: any_value(item.value) for item in items}


def decode_otlp(
    encoding: str, payload: str | bytes | None, *, entry_id: str | None = None, stream: str | None = None
) -> LogEntry:
    """A ``LogEntry`` from an OTLP-encoded entry's payload."""
    if payload is None:
        raise ValueError(f"an {encoding} entry without a {PAYLOAD_FIELD!r} field")
    if encoding == OTLP_PROTO:
        message = ResourceLogs()
        message.ParseFromString(payload.encode("utf-8") if isinstance(payload, str) else payload)
    elif encoding == OTLP_JSON:
        message = resource_logs_from_json(payload)
    else:
        raise ValueError(f"unknown entry encoding {encoding!r}; known: flat, {OTLP_JSON}, {OTLP_PROTO}")
    scope_logs = message.scope_logs[0]
    log = scope_logs.log_records[0]
    resource = key_values(message.resource.attributes)
    scope = scope_logs.scope
    trace_id = log.trace_id.hex() if any(log.trace_id) else None
    span_id = log.span_id.hex() if any(log.span_id) else None
    service = resource.get("service.name")
    observed = log.observed_time_unix_nano or log.time_unix_nano
    return LogEntry(
        timestamp=log.time_unix_nano or observed,
        observed_timestamp=observed,
        severity_number=log.severity_number or None,
        severity_text=log.severity_text or None,
        body=any_value(log.body) if log.HasField("body") else None,
        trace_id=trace_id,
        span_id=span_id,
        trace_flags=(log.flags & 0xFF) if trace_id else None,
        event_name=getattr(log, "event_name", "") or None,
        service_name=None if service is None else str(service),
        scope_name=scope.name or None,
        scope_version=scope.version or None,
        scope_attributes=key_values(scope.attributes),
        resource=resource,
        attributes=key_values(log.attributes),
        dropped_attributes_count=log.dropped_attributes_count,
        entry_id=entry_id,
        stream=stream,
        encoding=encoding,
        timestamp_set=bool(log.time_unix_nano),
        resource_schema_url=message.schema_url or None,
        scope_schema_url=scope_logs.schema_url or None,
    )
