"""The compiled flat encoder, where it reads the SDK's records as it expects to.

``_speedups.encode_flat`` (C) encodes the common case of each record (an exact ``str`` body, flat
attributes, span context, severity, timestamps, uid) exactly as ``BatchEncoder`` does, and hands
any other record back to it (see ``BatchEncoder.encode``). It reads the attributes of the SDK's
record types, so it is used only when, at import, the installed opentelemetry-sdk is a release
it supports and a sample batch built through the SDK's own constructors encodes to the pure
path's entries without a record handed back; otherwise ``COMPILED`` is None and a one-line debug
message says why. ``OTEL_REDIS_EXPORTER_PURE_PYTHON=1`` turns it off with the rest of the
compiled path (``_fast``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.sdk.version import __version__ as sdk_release
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from .._fast import Speedups, speedups
from .._keys import StreamKeyTemplate
from .._log import logger
from .flat import BatchEncoder, CompiledEncode, Fields

# The opentelemetry-sdk releases the C encoder was written and tested against: the package's
# floor (the `oldest` nox session) up to the next major release, whose record types may differ.
SDK_OLDEST = (1, 39)
SDK_NEXT_MAJOR = 2
# The attributes the C encoder reads, by the object it reads them from.
_RECORD_ATTRIBUTES = ("log_record", "resource", "instrumentation_scope", "dropped_attributes")
_LOG_ATTRIBUTES = (
    "timestamp",
    "observed_timestamp",
    "severity_number",
    "severity_text",
    "body",
    "trace_id",
    "span_id",
    "trace_flags",
    "attributes",
)


def sdk_version() -> tuple[int, int] | None:
    """The installed opentelemetry-sdk's (major, minor), or None when it cannot be read."""
    try:
        major, minor = sdk_release.split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return None


def _sample_batch() -> list[ReadableLogRecord]:
    """Records built by the SDK's public constructors, with every field the C encoder writes."""
    context = set_span_in_context(
        NonRecordingSpan(
            SpanContext(0x5B8AA5A2D2C872E8321CF37308D69DF2, 0x051581BF3CB55C13, False, TraceFlags(1))
        )
    )
    resource = Resource({"service.name": "probe"})  # not create(): it would run resource detectors
    scope = InstrumentationScope("probe", "1")
    attributes = BoundedAttributes(attributes={"s": "caf\u00e9\n", "i": -(2**70), "f": 0.1, "x": [1]})
    records = [
        LogRecord(
            timestamp=1,
            observed_timestamp=2,
            context=context,
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body="\U0001f600",
            attributes=attributes,
        ),
        LogRecord(observed_timestamp=3, context=Context(), body="plain", attributes={"b": (True, None)}),
    ]
    return [
        ReadableLogRecord(log_record=log, resource=resource, instrumentation_scope=scope) for log in records
    ]


def _mismatch(encode: CompiledEncode, version: tuple[int, int] | None) -> str | None:
    """Why the C encoder must not be used with the SDK of ``version``, or None when it may."""
    if version is None or not SDK_OLDEST <= version < (SDK_NEXT_MAJOR, 0):
        return f"opentelemetry-sdk {version} is not a release it supports"
    batch = _sample_batch()
    missing = [name for name in _RECORD_ATTRIBUTES if not hasattr(batch[0], name)]
    missing += [name for name in _LOG_ATTRIBUTES if not hasattr(batch[0].log_record, name)]
    attributes = batch[0].log_record.attributes
    # The C encoder reads a BoundedAttributes' inner dict, as the pure path does.
    inner = getattr(attributes, "_dict", None)
    if type(attributes) is not BoundedAttributes or type(inner) is not dict or inner != dict(attributes):
        missing.append("BoundedAttributes._dict")
    if type(getattr(attributes, "dropped", None)) is not int:
        missing.append("BoundedAttributes.dropped")
    if missing:
        return f"the SDK's log records have no {', '.join(missing)}"
    template = StreamKeyTemplate.parse("logs:{service.name}")
    handed_back: list[int] = []
    fast = BatchEncoder(template, 64, compiled=noting_fallbacks(encode, handed_back)).encode(
        batch, 7, "0" * 22
    )
    pure = BatchEncoder(template, 64).encode(batch, 7, "0" * 22)
    if handed_back:
        return f"it leaves the SDK's records {handed_back} to the pure path"
    if _comparable(fast) != _comparable(pure):
        return "its entries differ from the pure path's on the SDK's records"
    return None


def _comparable(entries: dict[str, list[Fields]]) -> list[tuple[str, list[list[tuple[str, str]]]]]:
    """Entries with their field order made part of what is compared."""
    return [(key, [list(fields.items()) for fields in batch]) for key, batch in entries.items()]


def noting_fallbacks(encode: CompiledEncode, handed_back: list[int]) -> CompiledEncode:
    """``encode`` that also appends the index of each record it hands back to ``handed_back``."""
    call: Any = encode  # called with the fallback in place of the one it is given

    def noting(*args: Any) -> None:
        *head, fallback = args

        def noted(index: int, record: ReadableLogRecord) -> None:
            handed_back.append(index)
            fallback(index, record)

        call(*head, noted)

    return noting


def load_compiled(
    extension: Speedups | None = speedups, *, version: Callable[[], tuple[int, int] | None] = sdk_version
) -> CompiledEncode | None:
    """The C encoder bound to the SDK types it reads, or None (pure path, or a mismatch).

    ``version``: the installed opentelemetry-sdk's (major, minor) (a seam for the tests).
    """
    if extension is None:
        return None
    encode: CompiledEncode = functools.partial(extension.encode_flat, (BoundedAttributes, TraceFlags))
    try:
        reason = _mismatch(encode, version())
    except Exception as error:  # an SDK that builds records differently: the pure path
        reason = f"{type(error).__name__}: {error}"
    if reason is not None:
        logger.debug("The compiled encoder is not used, records are encoded in pure Python: %s", reason)
        return None
    return encode


COMPILED = load_compiled()
"""The C encoder for ``BatchEncoder(compiled=...)``, or None when records are encoded in pure Python."""
