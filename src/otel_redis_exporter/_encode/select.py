"""Chooses the entry encoding: the flat fields (default) or one of the OTLP encodings.

The OTLP encodings live in ``otlp`` and need the ``otlp`` extra; it is imported only when an
OTLP encoding is chosen, so the default path never loads protobuf.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING

from opentelemetry.sdk._logs import ReadableLogRecord

from .._keys import StreamKeyTemplate
from .._missing import OtlpNotInstalledError
from .._types import Entries
from .compiled import COMPILED
from .entry import LogEntry, decode_flat, text
from .flat import ENCODING_FIELD, FLAT, PAYLOAD_FIELD, BatchEncoder
from .uid import UID_FIELD

if TYPE_CHECKING:  # the configuration imports this module (to check the otlp extra)
    from .._config import ExporterConfig

# Records, the current time (ns) and the batch's uid prefix -> entries.
Encode = Callable[[Sequence[ReadableLogRecord], int, str | None], Entries]


def import_otlp() -> ModuleType:
    """The ``otlp`` module, or ``OtlpNotInstalledError`` saying which extra to install."""
    try:
        from . import otlp as _otlp  # noqa: PLC0415 - protobuf is loaded only for the OTLP encodings
    except ImportError as error:
        raise OtlpNotInstalledError(error) from error
    return _otlp


def batch_encoder(config: ExporterConfig, template: StreamKeyTemplate) -> Encode:
    """The encode step for ``config.encoding``; raises ``OtlpNotInstalledError`` early."""
    if config.encoding == FLAT:
        limit, entry_bytes = config.max_value_length, config.max_entry_bytes

        def encode_flat(batch: Sequence[ReadableLogRecord], now_ns: int, uid_prefix: str | None) -> Entries:
            return BatchEncoder(template, limit, entry_bytes, compiled=COMPILED).encode(
                batch, now_ns, uid_prefix
            )

        return encode_flat
    encoder = import_otlp().OtlpEncoder(template, config.encoding, config.max_entry_bytes)
    encode: Encode = encoder.encode
    return encode


def decode_fields(
    raw: Mapping[str, str] | Mapping[bytes, bytes],
    *,
    entry_id: str | None = None,
    stream: str | None = None,
) -> LogEntry:
    """The inverse of the encoder: stream entry fields (str or bytes) to a ``LogEntry``.

    Entries in an OTLP encoding (``encoding`` field ``otlp_json`` or ``otlp_proto``) are decoded
    too; that needs the ``otlp`` extra (protobuf and the OpenTelemetry proto classes).
    """
    fields = {text(k): text(v) for k, v in raw.items()}
    encoding = fields.get(ENCODING_FIELD)
    if encoding is not None and encoding != FLAT:
        payload = next((value for key, value in raw.items() if text(key) == PAYLOAD_FIELD), None)
        entry: LogEntry = import_otlp().decode_otlp(encoding, payload, entry_id=entry_id, stream=stream)
        truncated = tuple(json.loads(fields["truncated"])) if "truncated" in fields else ()
        return dataclasses.replace(entry, uid=fields.get(UID_FIELD), truncated=truncated)
    return decode_flat(fields, entry_id=entry_id, stream=stream)
