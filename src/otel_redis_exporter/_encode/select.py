"""Chooses the entry encoding: the flat fields (default) or one of the OTLP encodings.

The OTLP encodings live in ``otlp`` and need the ``otlp`` extra; it is imported only when an
OTLP encoding is chosen, so the default path never loads protobuf.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType

from opentelemetry.sdk._logs import ReadableLogRecord

from .._config import ExporterConfig
from .._keys import StreamKeyTemplate
from .._missing import OtlpNotInstalledError
from .._types import Entries
from .flat import FLAT, BatchEncoder

# Records, the current time (ns) and the batch's uid prefix -> entries.
Encode = Callable[[Sequence[ReadableLogRecord], int, str | None], Entries]


def import_otlp() -> ModuleType:
    """The ``_otlp`` module, or ``OtlpNotInstalledError`` saying which extra to install."""
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
            return BatchEncoder(template, limit, entry_bytes).encode(batch, now_ns, uid_prefix)

        return encode_flat
    encoder = import_otlp().OtlpEncoder(template, config.encoding, config.max_entry_bytes)
    encode: Encode = encoder.encode
    return encode
