"""Pure encoding: an SDK log record becomes the fields of one stream entry (the flat encoding).

No Redis here, no clock, no I/O: every field name and value produced is a ``str`` that encodes as
UTF-8. ``entry.decode_flat`` is the inverse; ``LogEntry`` is what it returns. The layout is the
versioned contract described in the documentation (docs/schema.md); ``SCHEMA_VERSION`` changes
whenever a consumer would have to change.

JSON keeps ints, bools, lists and nested maps. What JSON cannot hold gets a one-key tag object:

* ``{"$bytes": "<base64>"}``            bytes (lossless)
* ``{"$float": "nan" | "inf" | "-inf"}`` non-finite floats (lossless)
* ``{"$map": [[key, value], ...]}``      a map with non-string keys, or one that looks like a tag
* ``{"$str": "<text>"}``                 anything else: ``str()`` of it (the type is lost), also
  used for cycles, for nesting deeper than ``MAX_DEPTH``, for an int too long for decimal text
  (its hex digits) and for a collection that raises while being read (``<unreadable list>``)

One record never costs its neighbours: a record that still fails to encode is written with a
placeholder body (``PLACEHOLDER_BODY``) and its error's type in ``encoding_error``, and the failure
is logged (rate limited). ``max_entry_bytes`` caps one entry's size approximately: strings are cut
and collections stop growing once the entry reaches it, and ``truncated`` names what was cut, so
the cost of a huge value is bounded by the cap, not by the value.
"""

from __future__ import annotations

import base64
import contextlib
import json
import json.encoder
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource

from .._keys import StreamKeyTemplate
from .._log import logger
from .uid import UID_FIELD, record_uid

SCHEMA_VERSION = "1"
MAX_DEPTH = 32
# Ints longer than this are written as hex: Python refuses decimal text past 4300 digits.
MAX_DECIMAL_INT_BITS = 14_000
# No limit on an entry's size (the reader's and the CLI's re-encoding).
UNBOUNDED = 1 << 62
# The body of a record that could not be encoded; its error's type is in ENCODING_ERROR_FIELD.
PLACEHOLDER_BODY = "<log record not encodable>"
ENCODING_ERROR_FIELD = "encoding_error"
# Shortest JSON of one list item (`0,`) and of one map item (`"":0,`): a collection longer than
# the budget divided by these is cut without being read to its end.
_MIN_ITEM_BYTES = 2
_MIN_PAIR_BYTES = 6

TAG_BYTES = "$bytes"
TAG_FLOAT = "$float"
TAG_MAP = "$map"
TAG_STR = "$str"
_TAGS = frozenset((TAG_BYTES, TAG_FLOAT, TAG_MAP, TAG_STR))

BODY_TYPE_JSON = "json"

# Entries in an OTLP encoding say so in this field and carry the record in PAYLOAD_FIELD; flat
# entries have no such field.
ENCODING_FIELD = "encoding"
PAYLOAD_FIELD = "payload"
FLAT = "flat"
# Optional flat fields added within schema version 1 (a v1 consumer ignores them): present only
# when they say something. TIMESTAMP_UNSET_FIELD marks a record without its own timestamp, whose
# ``timestamp`` field holds the observed time for display.
TIMESTAMP_UNSET_FIELD = "timestamp_unset"
RESOURCE_SCHEMA_URL_FIELD = "resource.schema_url"
SCOPE_SCHEMA_URL_FIELD = "scope.schema_url"

Fields = dict[str, str]

_ENCODER = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"), check_circular=False)


def _make_dumps() -> Callable[[Any], str]:
    """``_ENCODER.encode`` without its per-call set-up: the C encoder, built once.

    Same output as ``json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))``;
    no cycle check, as every value handed to it is flat or has been through ``Sanitizer``.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _ENCODER.encode
    iterencode = make(
        None, _ENCODER.default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
    )
    join = "".join

    def dumps(value: Any) -> str:
        return join(iterencode(value, 0))

    return dumps


dumps = _make_dumps()

# With the ``orjson`` extra, flat attribute maps are encoded by orjson where its output is the
# stdlib's to the byte: ASCII text without DEL, ints of at most 64 bits, floats in the range
# where both write plain decimals (see ``_flat``). Everything else keeps the stdlib encoder.
_fast_dumps: Callable[[Any], bytes] | None
try:
    from orjson import dumps as _orjson_dumps
except ImportError:  # the extra is not installed
    _fast_dumps = None
else:
    _fast_dumps = _orjson_dumps

# _flat's verdicts.
_NOT_FLAT = 0
_FLAT = 1  # the C encoder writes it exactly
_FLAT_ORJSON = 2  # ... and so does orjson, if its output is ASCII without DEL
# Python's float repr, and orjson, write plain decimals (no exponent) in this range.
_PLAIN_FLOAT_MIN = 1e-4
_PLAIN_FLOAT_MAX = 1e16

# Decimal text of small numbers (severity numbers, trace flags), without a str() call per record.
_DECIMAL = tuple(str(number) for number in range(256))


def str_of(value: Any) -> str:
    """``str()`` that cannot raise: falls back to ``repr()``, then to the type's name."""
    for render in (str, repr):
        with contextlib.suppress(Exception):
            text = render(value)
            if isinstance(text, str):
                return text
    return f"<unprintable {type(value).__name__}>"


def int_text(value: int) -> str:
    """Decimal text of ``value``, or ``0x...`` hex past ``MAX_DECIMAL_INT_BITS`` (which
    ``str()`` refuses)."""
    return str(value) if value.bit_length() <= MAX_DECIMAL_INT_BITS else hex(value)


def safe_text(text: str) -> str:
    """``text`` if it encodes as UTF-8, else with lone surrogates written as ``\\udXXX``."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class Sanitizer:
    """Turns any value into something ``json`` encodes exactly, recording truncations.

    ``budget`` is about how many bytes of JSON may still be produced: strings are cut to it and
    collections stop growing when it runs out (``truncated`` is then set).
    """

    __slots__ = ("budget", "limit", "truncated")

    def __init__(self, limit: int, budget: int = UNBOUNDED) -> None:
        self.limit = limit
        self.budget = budget
        self.truncated = False

    def value(self, value: Any, depth: int = 0, seen: frozenset[int] = frozenset()) -> Any:
        kind = type(value)
        if kind is str:
            cut = min(self.limit, max(self.budget, 0))
            self.budget -= len(value) + 3
            if len(value) > cut:
                self.truncated = True
                return value[:cut]
            return value
        self.budget -= 8
        if kind is bool or value is None:
            return value
        if kind is int:
            return value if value.bit_length() <= MAX_DECIMAL_INT_BITS else {TAG_STR: hex(value)}
        if kind is float:
            return value if math.isfinite(value) else {TAG_FLOAT: repr(value)}
        if depth >= MAX_DEPTH:
            return {TAG_STR: f"<nested deeper than {MAX_DEPTH} levels>"}
        if isinstance(value, bytes | bytearray | memoryview):
            raw = bytes(value)
            cut = min(self.limit, max(self.budget * 3 // 4, 0))
            self.budget -= len(raw) * 4 // 3
            if len(raw) > cut:
                self.truncated = True
                raw = raw[:cut]
            return {TAG_BYTES: base64.b64encode(raw).decode("ascii")}
        if isinstance(value, Mapping | list | tuple):
            if id(value) in seen:
                return {TAG_STR: f"<cycle: {type(value).__name__}>"}
            inner = seen | {id(value)}
            if isinstance(value, Mapping):
                return self._mapping(value, depth + 1, inner)
            return self._sequence(value, depth + 1, inner)
        # Subclasses of str, int and float (enums...) keep their primitive value; the base
        # class methods are called directly so an overridden __str__ cannot raise here.
        if isinstance(value, str):
            return self.value(str.__str__(value), depth, seen)
        if isinstance(value, int):
            return self.value(int.__index__(value), depth, seen)
        if isinstance(value, float):
            return self.value(float.__float__(value), depth, seen)
        return {TAG_STR: self.value(str_of(value), depth, seen)}

    def _sequence(self, sequence: Sequence[Any], depth: int, seen: frozenset[int]) -> Any:
        out: list[Any] = []
        try:
            for item in sequence:
                if self.budget <= 0:
                    self.truncated = True
                    break
                out.append(self.value(item, depth, seen))
        except Exception:
            return {TAG_STR: f"<unreadable {type(sequence).__name__}>"}
        return out

    def _mapping(self, mapping: Mapping[Any, Any], depth: int, seen: frozenset[int]) -> Any:
        items: list[tuple[Any, Any]] = []
        plain = True
        try:
            for key, item in mapping.items():
                if self.budget <= 0:
                    self.truncated = True
                    break
                if type(key) is str:
                    self.budget -= len(key) + 4
                else:
                    plain = False
                items.append((key, self.value(item, depth, seen)))
        except Exception:
            return {TAG_STR: f"<unreadable {type(mapping).__name__}>"}
        if plain and not (len(items) == 1 and items[0][0] in _TAGS):
            return dict(items)
        return {TAG_MAP: [[self.value(key, depth, seen), item] for key, item in items]}


def restore(value: Any) -> Any:
    """Inverse of the tagging: JSON-decoded data back to Python values."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, payload),) = value.items()
            if tag == TAG_BYTES:
                return base64.b64decode(payload)
            if tag == TAG_FLOAT:
                return float(payload)
            if tag == TAG_MAP:
                return {_hashable(restore(k)): restore(v) for k, v in payload}
            if tag == TAG_STR:
                return payload
        return {key: restore(item) for key, item in value.items()}
    if isinstance(value, list):
        return [restore(item) for item in value]
    return value


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    if isinstance(value, dict):
        return str_of(value)
    return value


def _hex_ids(trace_id: int, span_id: int) -> tuple[str, str]:
    """32 and 16 lowercase hex digits (``bytes.hex`` is twice as fast as a format spec)."""
    try:
        return trace_id.to_bytes(16, "big").hex(), span_id.to_bytes(8, "big").hex()
    except (OverflowError, AttributeError, TypeError):  # not a valid id: as format() writes it
        return f"{trace_id:032x}", f"{span_id:016x}"


def _flat(mapping: dict[Any, Any], limit: int, max_items: int) -> int:
    """Whether ``json`` encodes ``mapping`` exactly as the sanitizer would leave it.

    That is: str keys, and values that are str (not longer than ``limit``), int, bool, None,
    finite floats, or lists and tuples of those (``_FLAT``; ``_FLAT_ORJSON`` when every float is
    also one orjson writes the same way). Anything else is ``_NOT_FLAT``: the sanitizer's path,
    and so is a map or list of more than ``max_items`` items, or an int past 64 bits.
    """
    if len(mapping) > max_items:
        return _NOT_FLAT
    verdict = _FLAT_ORJSON
    for key, value in mapping.items():
        if type(key) is not str:
            return _NOT_FLAT
        kind = type(value)
        if kind is str:
            if len(value) > limit:
                return _NOT_FLAT
        elif kind is bool or value is None:
            continue
        elif kind is int:
            if value.bit_length() > MAX_DECIMAL_INT_BITS:
                return _NOT_FLAT
        elif kind is float:
            if value - value != 0.0:  # inf - inf and nan - nan are nan
                return _NOT_FLAT
            if value and not _PLAIN_FLOAT_MIN <= abs(value) < _PLAIN_FLOAT_MAX:
                verdict = _FLAT
        elif kind is tuple or kind is list:
            if len(value) > max_items:
                return _NOT_FLAT
            for item in value:
                kind = type(item)
                if kind is str:
                    if len(item) > limit:
                        return _NOT_FLAT
                elif kind is float:
                    if item - item != 0.0:
                        return _NOT_FLAT
                    if item and not _PLAIN_FLOAT_MIN <= abs(item) < _PLAIN_FLOAT_MAX:
                        verdict = _FLAT
                elif kind is int:
                    if item.bit_length() > MAX_DECIMAL_INT_BITS:
                        return _NOT_FLAT
                elif not (kind is bool or item is None):
                    return _NOT_FLAT
        else:
            return _NOT_FLAT
    return verdict


def _plain_dict(attributes: Any) -> dict[Any, Any] | None:
    """The attributes as a dict to read without copying, or None to go through the Mapping API.

    The SDK's ``BoundedAttributes`` iterates over a copy made under its lock; once it is
    immutable (as on every emitted log record) its inner dict can be read as it is.
    """
    if type(attributes) is dict:
        return attributes
    if type(attributes) is BoundedAttributes:
        inner = getattr(attributes, "_dict", None)
        if type(inner) is dict:
            return inner if getattr(attributes, "_immutable", False) else dict(inner)
    return None


def encode_attributes(
    attributes: Mapping[str, Any], limit: int, truncated: list[str], budget: int = UNBOUNDED
) -> str:
    """A JSON object of ``attributes``; names of values cut to ``limit`` are appended to ``truncated``.

    ``budget`` is about how many bytes the JSON may take: past it, values are cut and the last
    attributes left out (``truncated`` then ends with ``"attributes"``).
    """
    plain = _plain_dict(attributes)
    if plain is not None:
        try:
            verdict = _flat(plain, limit, budget // _MIN_PAIR_BYTES)
        except RuntimeError:  # changed while being read: take the copying path below
            verdict = _NOT_FLAT
        encoded_text: str | None = None
        if verdict == _FLAT_ORJSON and _fast_dumps is not None:
            try:
                encoded = _fast_dumps(plain)
            except TypeError:  # an int past 64 bits, a lone surrogate
                pass
            else:
                if encoded.isascii() and b"\x7f" not in encoded:
                    encoded_text = encoded.decode("ascii")
        if verdict != _NOT_FLAT and encoded_text is None:
            encoded_text = dumps(plain)
        if encoded_text is not None and len(encoded_text) <= budget:
            return encoded_text
    sanitizer = Sanitizer(limit, budget)
    out: dict[str, Any] = {}
    for raw_key, value in attributes.items():
        if sanitizer.budget <= 0:
            truncated.append("attributes")
            break
        key = raw_key if type(raw_key) is str else str_of(raw_key)
        sanitizer.budget -= len(key) + 4
        sanitizer.truncated = False
        out[key] = sanitizer.value(value)
        if sanitizer.truncated:
            truncated.append(key)
    return dumps(out)


def encode_body(body: Any, limit: int, fields: Fields, truncated: list[str], budget: int = UNBOUNDED) -> None:
    """Set ``body`` (and ``body_type`` when it is not a plain string) in ``fields``; at most
    ``limit`` characters of a string and about ``budget`` bytes in all."""
    if body is None:
        return
    if type(body) is str:
        if len(body) > min(limit, budget):
            body = body[: min(limit, budget)]
            truncated.append("body")
        text = safe_text(body)
        if text is body:
            fields["body"] = body
            return
    sanitizer = Sanitizer(limit, budget)
    fields["body"] = dumps(sanitizer.value(body))
    fields["body_type"] = BODY_TYPE_JSON
    if sanitizer.truncated and "body" not in truncated:
        truncated.append("body")


_Tails = dict[tuple[int, int], tuple[Fields, list[Fields]]]
# The compiled encoder (``_speedups.encode_flat`` bound to the SDK types it reads, see
# ``compiled.py``): records, now_ns, uid_prefix, limit, budget, the entries to fill, the
# tails, ``BatchEncoder._tail`` and a fallback(index, record) for the records it leaves.
CompiledEncode = Callable[
    [
        Iterable[ReadableLogRecord],
        int,
        str | None,
        int,
        int,
        dict[str, list[Fields]],
        _Tails,
        Callable[[ReadableLogRecord, dict[str, list[Fields]]], tuple[Fields, list[Fields]]],
        Callable[[int, ReadableLogRecord], None],
    ],
    None,
]


@dataclass(frozen=True, slots=True)
class _ResourcePart:
    key: str
    fields: Fields


class BatchEncoder:
    """Encodes one batch: resources and scopes are encoded once per batch, not once per record.

    ``encode`` is the hot path of every export: one loop over the records with the common case
    (a str body, flat attributes, a span context) inline and everything else handed to
    ``encode_body`` / ``encode_attributes``. Its output is the documented entry layout, field
    order included. With ``compiled`` (the C encoder) the loop runs in C, which hands every record
    it does not take as it is back to this one, so the entries are the same either way.
    """

    def __init__(
        self,
        template: StreamKeyTemplate,
        max_value_length: int,
        max_entry_bytes: int = UNBOUNDED,
        *,
        compiled: CompiledEncode | None = None,
    ) -> None:
        """``compiled``: the C encoder (``compiled.COMPILED``), which takes the common records
        and hands the others back; None encodes every record here."""
        self._template = template
        self._limit = max_value_length
        self._max_entry_bytes = max_entry_bytes
        self._compiled = compiled
        self._resources: dict[int, _ResourcePart] = {}
        self._scopes: dict[int, Fields] = {}

    def encode(
        self, batch: Iterable[ReadableLogRecord], now_ns: int, uid_prefix: str | None = None
    ) -> dict[str, list[Fields]]:
        """Stream key -> the entries for it, in batch order.

        With ``uid_prefix`` (see ``uid_prefix()``), every entry gets a ``log.record.uid``.
        """
        out: dict[str, list[Fields]] = {}
        # Keyed by id() of objects the batch keeps alive, so only valid for this call:
        # (resource, scope) -> the fields every such record ends with, and its key's entry list.
        tails: _Tails = {}
        # The C encoder writes uids of an ASCII prefix (as ``uid_prefix()`` makes them) only.
        if self._compiled is None or not (uid_prefix is None or uid_prefix.isascii()):
            self._encode_records(enumerate(batch), now_ns, uid_prefix, out, tails)
            return out

        def fallback(index: int, record: ReadableLogRecord) -> None:
            self._encode_records(((index, record),), now_ns, uid_prefix, out, tails)

        limit, budget = self._limit, self._max_entry_bytes
        self._compiled(batch, now_ns, uid_prefix, limit, budget, out, tails, self._tail, fallback)
        return out

    # One function on purpose: a call per record would cost more than splitting it reads better.
    def _encode_records(  # noqa: PLR0915
        self,
        records: Iterable[tuple[int, ReadableLogRecord]],
        now_ns: int,
        uid_prefix: str | None,
        out: dict[str, list[Fields]],
        tails: _Tails,
    ) -> None:
        """Each (index, record) appended to its key's entries in ``out``."""
        limit = self._limit
        budget = self._max_entry_bytes
        decimal = _DECIMAL
        # Severity number (by id(), as the tails) -> its decimal text.
        severities: dict[int, str] = {}
        for index, record in records:
            try:
                log = record.log_record
                resource = record.resource
                scope = record.instrumentation_scope
                pair = (id(resource), id(scope))
                tail = tails.get(pair)
                if tail is None:
                    tail = tails[pair] = self._tail(record, out)
                observed = log.observed_timestamp or log.timestamp or now_ns
                timestamp = log.timestamp or observed
                fields: Fields = {"v": SCHEMA_VERSION}
                if uid_prefix is not None:
                    fields[UID_FIELD] = record_uid(uid_prefix, index)
                fields["timestamp"] = str(timestamp)
                fields["observed_timestamp"] = str(observed)
                if not log.timestamp:
                    fields[TIMESTAMP_UNSET_FIELD] = "1"
                severity = log.severity_number
                if severity is not None:
                    text = severities.get(id(severity))
                    if text is None:
                        text = severities[id(severity)] = str(severity.value)
                    fields["severity_number"] = text
                severity_text = log.severity_text
                if severity_text:
                    fields["severity_text"] = (
                        severity_text if severity_text.isascii() else safe_text(severity_text)
                    )
                truncated: list[str] = []
                body = log.body
                if type(body) is str and len(body) <= limit and body.isascii():
                    fields["body"] = body
                elif body is not None:
                    encode_body(body, limit, fields, truncated, budget)
                trace_id = log.trace_id
                span_id = log.span_id
                if trace_id and span_id:
                    fields["trace_id"], fields["span_id"] = _hex_ids(trace_id, span_id)
                    flags = log.trace_flags or 0
                    small = isinstance(flags, int) and 0 <= flags < 256
                    fields["trace_flags"] = decimal[flags] if small else str(int(flags))
                event_name = getattr(log, "event_name", None)
                if event_name:
                    fields["event_name"] = safe_text(event_name)
                attributes = log.attributes
                if attributes:
                    left = budget - len(fields.get("body", ""))
                    fields["attributes"] = encode_attributes(attributes, limit, truncated, left)
                dropped = (
                    attributes.dropped if type(attributes) is BoundedAttributes else record.dropped_attributes
                )
                if dropped:
                    fields["dropped_attributes_count"] = str(dropped)
                if truncated:
                    fields["truncated"] = dumps(truncated)
                fields.update(tail[0])
                tail[1].append(fields)
            except Exception as error:  # one record never costs the batch
                key, fields = self._placeholder(record, error, now_ns)
                if uid_prefix is not None:
                    fields[UID_FIELD] = record_uid(uid_prefix, index)
                out.setdefault(key, []).append(fields)

    def _placeholder(self, record: ReadableLogRecord, error: Exception, now_ns: int) -> tuple[str, Fields]:
        """The stream key and fields standing in for a record that could not be encoded: its
        timestamps and trace context where they can be read, ``PLACEHOLDER_BODY``, the error's type."""
        logger.warning(
            "A log record could not be encoded (%s: %s); it is written with the body %r",
            type(error).__name__,
            str_of(error)[:200],
            PLACEHOLDER_BODY,
        )
        fields: Fields = {"v": SCHEMA_VERSION}
        observed = timestamp = now_ns
        with contextlib.suppress(Exception):
            log = record.log_record
            observed = int(log.observed_timestamp or log.timestamp or now_ns)
            timestamp = int(log.timestamp or observed)
        fields["timestamp"], fields["observed_timestamp"] = int_text(timestamp), int_text(observed)
        fields["body"] = PLACEHOLDER_BODY
        with contextlib.suppress(Exception):
            log = record.log_record
            if log.trace_id and log.span_id:
                fields["trace_id"], fields["span_id"] = _hex_ids(int(log.trace_id), int(log.span_id))
        fields[ENCODING_ERROR_FIELD] = type(error).__name__
        try:
            tail, _ = self._tail(record, {})
            fields.update(tail)
            return self._template.render(dict(record.resource.attributes)), fields
        except Exception:
            return self._template.render({}), fields

    def _tail(self, record: ReadableLogRecord, out: dict[str, list[Fields]]) -> tuple[Fields, list[Fields]]:
        """Scope and resource fields of ``record`` (in entry order), and the entry list of its key."""
        part = self._resource(record.resource)
        fields = dict(self._scope(record))
        fields.update(part.fields)
        return fields, out.setdefault(part.key, [])

    def _resource(self, resource: Resource | None) -> _ResourcePart:
        cached = self._resources.get(id(resource))
        if cached is not None:
            return cached
        attributes = dict(resource.attributes) if resource is not None else {}
        fields: Fields = {}
        service = attributes.get("service.name")
        if service is not None:
            fields["service.name"] = safe_text(str_of(service))
        fields["resource"] = encode_attributes(attributes, self._limit, [])
        if resource is not None and resource.schema_url:
            fields[RESOURCE_SCHEMA_URL_FIELD] = safe_text(resource.schema_url)
        part = _ResourcePart(self._template.render(attributes), fields)
        self._resources[id(resource)] = part
        return part

    def _scope(self, record: ReadableLogRecord) -> Fields:
        scope = record.instrumentation_scope
        cached = self._scopes.get(id(scope))
        if cached is not None:
            return cached
        fields: Fields = {}
        if scope is not None:
            if scope.name:
                fields["scope.name"] = safe_text(scope.name)
            if scope.version:
                fields["scope.version"] = safe_text(scope.version)
            if scope.attributes:
                fields["scope.attributes"] = encode_attributes(scope.attributes, self._limit, [])
            if scope.schema_url:
                fields[SCOPE_SCHEMA_URL_FIELD] = safe_text(scope.schema_url)
        self._scopes[id(scope)] = fields
        return fields
