"""One frozen configuration, resolved in one place: argument > environment variable > default.

A wrong constructor argument raises ``ValueError`` naming what is allowed; a wrong environment
value logs a warning and falls back to the default, so a typo in a deployment never stops an app.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from ._keys import StreamKeyTemplate

_logger = logging.getLogger(__name__)

T = TypeVar("T")
D = TypeVar("D")

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_STREAM = "otel:logs"
# Approximate cap on entries per stream key: about 100 MB at ~1 KB per entry, so a forgotten
# stream cannot fill a server's memory silently. 0 disables length trimming.
DEFAULT_MAXLEN = 100_000
DEFAULT_TIMEOUT_S = 10.0
# Longest str or bytes value kept in a body or attribute (characters or bytes), like
# OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT. Longer values are truncated and the entry says so.
DEFAULT_MAX_VALUE_LENGTH = 64 * 1024

URL_SCHEMES = ("redis", "rediss", "unix")
# Outage buffer bounds: records kept while Redis is away, and their approximate size in bytes.
DEFAULT_BUFFER_MAX_RECORDS = 10_000
DEFAULT_BUFFER_MAX_BYTES = 16 * 1024 * 1024
MODES = ("sync", "async")
DEFAULT_MODE = "sync"

ENV_URL = "OTEL_EXPORTER_REDIS_LOGS_URL"
ENV_URL_GENERIC = "OTEL_EXPORTER_REDIS_URL"
ENV_STREAM = "OTEL_EXPORTER_REDIS_LOGS_STREAM"
ENV_MAXLEN = "OTEL_EXPORTER_REDIS_LOGS_MAXLEN"
ENV_RETENTION = "OTEL_EXPORTER_REDIS_LOGS_RETENTION"
ENV_TIMEOUT = "OTEL_EXPORTER_REDIS_LOGS_TIMEOUT"
ENV_TIMEOUT_GENERIC = "OTEL_EXPORTER_REDIS_TIMEOUT"
ENV_MAX_VALUE_LENGTH = "OTEL_EXPORTER_REDIS_LOGS_MAX_VALUE_LENGTH"
ENV_MODE = "OTEL_EXPORTER_REDIS_MODE"
ENV_BUFFER_MAX_RECORDS = "OTEL_EXPORTER_REDIS_LOGS_BUFFER_MAX_RECORDS"
ENV_BUFFER_MAX_BYTES = "OTEL_EXPORTER_REDIS_LOGS_BUFFER_MAX_BYTES"
ENV_ENCODING = "OTEL_EXPORTER_REDIS_LOGS_ENCODING"
ENV_TRACE_INDEX_TTL = "OTEL_EXPORTER_REDIS_LOGS_TRACE_INDEX_TTL"

# "flat": one stream field per record attribute (the schema in the README); the OTLP encodings
# put the record's standard OTLP ResourceLogs (JSON or protobuf bytes) in one `payload` field.
ENCODINGS = ("flat", "otlp_json", "otlp_proto")
DEFAULT_ENCODING = "flat"


@dataclass(frozen=True, slots=True)
class ExporterConfig:
    """Everything the exporter needs to know, already validated."""

    url: str
    stream: str
    maxlen: int | None
    retention_s: float | None
    timeout_s: float
    max_value_length: int
    mode: str = DEFAULT_MODE
    buffer_max_records: int = DEFAULT_BUFFER_MAX_RECORDS
    buffer_max_bytes: int = DEFAULT_BUFFER_MAX_BYTES
    encoding: str = DEFAULT_ENCODING
    # Seconds a per-trace index key lives after the trace's last record; None: no index.
    trace_index_ttl_s: float | None = None

    def __repr__(self) -> str:
        return (
            f"ExporterConfig(url={redact_url(self.url)!r}, stream={self.stream!r}, "
            f"maxlen={self.maxlen!r}, retention_s={self.retention_s!r}, "
            f"timeout_s={self.timeout_s!r}, max_value_length={self.max_value_length!r}, mode={self.mode!r}, "
            f"buffer_max_records={self.buffer_max_records!r}, buffer_max_bytes={self.buffer_max_bytes!r})"
            f"encoding={self.encoding!r}, trace_index_ttl_s={self.trace_index_ttl_s!r})"
        )


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``, safe for logs and reprs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    netloc = f"{user}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _check_url(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme not in URL_SCHEMES:
        allowed = ", ".join(f"{s}://" for s in URL_SCHEMES)
        raise ValueError(f"url must start with one of {allowed}; got {redact_url(url)!r}")
    return url


def _check_stream(stream: str) -> str:
    if not stream or stream != stream.strip():
        raise ValueError(f"stream must be a non-empty key without surrounding blanks; got {stream!r}")
    StreamKeyTemplate.parse(stream)
    return stream


def _check_maxlen(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"maxlen must be a whole number of entries >= 0 (0 disables); got {value!r}")
    return value


def _check_positive_seconds(name: str) -> Callable[[float], float]:
    def check(value: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number of seconds > 0; got {value!r}")
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a number of seconds > 0; got {value!r}")
        return float(value)

    return check


def _check_count(name: str) -> Callable[[int], int]:
    def check(value: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0 (0 disables buffering); got {value!r}")
        return value

    return check


def _check_mode(value: str) -> str:
    if value not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {value!r}")
    return value


def _check_encoding(value: str) -> str:
    if value not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}; got {value!r}")
    return value


def _check_index_ttl(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"trace_index_ttl must be a number of seconds >= 0 (0 disables); got {value!r}")
    return float(value)


def _check_length(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 16:
        raise ValueError(f"max_value_length must be a whole number >= 16; got {value!r}")
    return value


def _resolve(
    argument: T | None,
    env_names: tuple[str, ...],
    *,
    parse: Callable[[str], T],
    check: Callable[[T], T],
    default: D,
    environ: Mapping[str, str],
) -> T | D:
    """Argument (checked, raises) > first set environment variable (checked, warns) > default."""
    if argument is not None:
        return check(argument)
    for name in env_names:
        raw = environ.get(name, "").strip()
        if not raw:
            continue
        try:
            return check(parse(raw))
        except ValueError as error:
            _logger.warning("Ignoring %s: %s; using the default %r.", name, error, default)
            return default
    return default


def resolve_config(
    *,
    url: str | None = None,
    stream: str | None = None,
    maxlen: int | None = None,
    retention: float | None = None,
    timeout: float | None = None,
    max_value_length: int | None = None,
    mode: str | None = None,
    buffer_max_records: int | None = None,
    buffer_max_bytes: int | None = None,
    encoding: str | None = None,
    trace_index_ttl: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> ExporterConfig:
    """Build the configuration from arguments, then ``OTEL_EXPORTER_REDIS_*`` variables, then defaults."""
    env = os.environ if environ is None else environ
    if maxlen is not None and retention is not None:
        raise ValueError("maxlen and retention are exclusive: XADD trims by MAXLEN or by MINID, not both")
    resolved_retention = _resolve(
        retention,
        (ENV_RETENTION,),
        parse=float,
        check=_check_positive_seconds("retention"),
        default=None,
        environ=env,
    )
    # Time-based retention replaces the default length cap; an explicit maxlen wins over both.
    maxlen_default = 0 if resolved_retention is not None and maxlen is None else DEFAULT_MAXLEN
    resolved_maxlen = _resolve(
        maxlen, (ENV_MAXLEN,), parse=int, check=_check_maxlen, default=maxlen_default, environ=env
    )
    if resolved_maxlen and resolved_retention is not None:
        _logger.warning(
            "Both %s and %s are set; trimming by length (MAXLEN ~ %d) and ignoring the retention.",
            ENV_MAXLEN,
            ENV_RETENTION,
            resolved_maxlen,
        )
        resolved_retention = None
    return ExporterConfig(
        url=_resolve(
            url, (ENV_URL, ENV_URL_GENERIC), parse=str, check=_check_url, default=DEFAULT_URL, environ=env
        ),
        stream=_resolve(
            stream, (ENV_STREAM,), parse=str, check=_check_stream, default=DEFAULT_STREAM, environ=env
        ),
        maxlen=resolved_maxlen or None,
        retention_s=resolved_retention,
        timeout_s=_resolve(
            timeout,
            (ENV_TIMEOUT, ENV_TIMEOUT_GENERIC),
            parse=float,
            check=_check_positive_seconds("timeout"),
            default=DEFAULT_TIMEOUT_S,
            environ=env,
        ),
        max_value_length=_resolve(
            max_value_length,
            (ENV_MAX_VALUE_LENGTH,),
            parse=int,
            check=_check_length,
            default=DEFAULT_MAX_VALUE_LENGTH,
            environ=env,
        ),
        mode=_resolve(
            mode, (ENV_MODE,), parse=str.lower, check=_check_mode, default=DEFAULT_MODE, environ=env
        ),
        buffer_max_records=_resolve(
            buffer_max_records,
            (ENV_BUFFER_MAX_RECORDS,),
            parse=int,
            check=_check_count("buffer_max_records"),
            default=DEFAULT_BUFFER_MAX_RECORDS,
            environ=env,
        ),
        buffer_max_bytes=_resolve(
            buffer_max_bytes,
            (ENV_BUFFER_MAX_BYTES,),
            parse=int,
            check=_check_count("buffer_max_bytes"),
            default=DEFAULT_BUFFER_MAX_BYTES,
            environ=env,
        ),
        encoding=_resolve(
            encoding,
            (ENV_ENCODING,),
            parse=str.lower,
            check=_check_encoding,
            default=DEFAULT_ENCODING,
            environ=env,
        ),
        trace_index_ttl_s=_resolve(
            trace_index_ttl,
            (ENV_TRACE_INDEX_TTL,),
            parse=float,
            check=_check_index_ttl,
            default=None,
            environ=env,
        )
        or None,
    )
