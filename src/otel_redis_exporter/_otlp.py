"""The OTLP entry encodings: one record per entry as a standard OTLP ``ResourceLogs``, and back.

Needs the ``otlp`` extra (``opentelemetry-exporter-otlp-proto-common`` and protobuf); import it
through ``_formats.import_otlp`` to get a clear error when they are missing.

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
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.trace import format_trace_id

from ._encoding import (
    ENCODING_FIELD,
    MAX_DEPTH,
    PAYLOAD_FIELD,
    SCHEMA_VERSION,
    UID_FIELD,
    LogEntry,
    _str_of,
    record_uid,
    safe_text,
)
from ._keys import StreamKeyTemplate

OTLP_JSON = "otlp_json"
OTLP_PROTO = "otlp_proto"
OTLP_ENCODINGS = (OTLP_JSON, OTLP_PROTO)

# OTLP/JSON writes these bytes fields as hex, not base64 like protobuf's JSON mapping.
_HEX_ID_FIELDS = ("traceId", "spanId")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

EntryFields = dict[str, str | bytes]


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether the OpenTelemetry encoder takes ``value`` as it is, exactly."""
    kind = type(value)
    if kind is str:
        return bool(value.isascii() or safe_text(value) is value)
    if kind is bool or kind is bytes or value is None:
        return True
    if kind is float:
        return True
    if kind is int:
        return bool(_INT64_MIN <= value <= _INT64_MAX)
    if depth >= MAX_DEPTH:
        return False
    if kind is list or kind is tuple:
        return all(_plain(item, depth + 1) for item in value)
    if kind is dict:
        return all(type(key) is str and _plain(item, depth + 1) for key, item in value.items())
    return False


def _otlp_value(value: Any, depth: int = 0) -> Any:
    """``value`` made something OTLP's AnyValue holds; what it cannot hold becomes a string."""
    kind = type(value)
    if kind is str:
        return safe_text(value)
    if kind is bool or kind is bytes or kind is float or value is None:
        return value
    if kind is int:
        return value if _INT64_MIN <= value <= _INT64_MAX else str(value)
    if depth >= MAX_DEPTH:
        return f"<nested deeper than {MAX_DEPTH} levels>"
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, Mapping):
        try:
            items = list(value.items())
        except Exception:
            return safe_text(_str_of(value))
        return {safe_text(_str_of(key)): _otlp_value(item, depth + 1) for key, item in items}
    if isinstance(value, list | tuple):
        return [_otlp_value(item, depth + 1) for item in value]
    if isinstance(value, str):
        return safe_text(str.__str__(value))
    if isinstance(value, int):
        return _otlp_value(int.__index__(value), depth)
    if isinstance(value, float):
        return float.__float__(value)
    return safe_text(_str_of(value))


def _encodable(record: ReadableLogRecord) -> ReadableLogRecord:
    """``record``, or a copy whose body and attributes the OpenTelemetry encoder cannot refuse."""
    log = record.log_record
    attributes = log.attributes or {}
    if _plain(log.body) and all(type(key) is str and _plain(value) for key, value in attributes.items()):
        return record
    clean = copy.copy(log)
    clean.body = _otlp_value(log.body)
    clean.attributes = {safe_text(_str_of(key)): _otlp_value(value) for key, value in attributes.items()}
    return dataclasses.replace(record, log_record=clean)


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

    def __init__(self, template: StreamKeyTemplate, encoding: str) -> None:
        if encoding not in OTLP_ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(OTLP_ENCODINGS)}; got {encoding!r}")
        self._template = template
        self._encoding = encoding

    def encode(
        self, batch: Iterable[ReadableLogRecord], now_ns: int, uid_prefix: str | None = None
    ) -> dict[str, list[EntryFields]]:
        """Stream key -> the entries for it, in batch order (``now_ns`` is unused: OTLP keeps
        an unset timestamp unset). With ``uid_prefix``, every entry gets a ``log.record.uid``."""
        keys: dict[int, str] = {}
        out: dict[str, list[EntryFields]] = {}
        for index, record in enumerate(batch):
            resource = record.resource
            key = keys.get(id(resource))
            if key is None:
                key = keys[id(resource)] = self._template.render(
                    dict(resource.attributes) if resource is not None else {}
                )
            fields = self._entry(record)
            if uid_prefix is not None:
                fields[UID_FIELD] = record_uid(uid_prefix, index)
            out.setdefault(key, []).append(fields)
        return out

    def _entry(self, record: ReadableLogRecord) -> EntryFields:
        [message] = encode_logs([_encodable(record)]).resource_logs
        fields: EntryFields = {"v": SCHEMA_VERSION, ENCODING_FIELD: self._encoding}
        log = record.log_record
        if log.trace_id and log.span_id:
            fields["trace_id"] = format_trace_id(log.trace_id)
        if self._encoding == OTLP_PROTO:
            fields[PAYLOAD_FIELD] = message.SerializeToString()
        else:
            fields[PAYLOAD_FIELD] = resource_logs_to_json(message)
        return fields


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
