"""The exporter's configuration: what can be set (``settings``) and how it is resolved (``resolve``)."""

from .resolve import (
    DEFAULT_MAX_VALUE_LENGTH,
    DEFAULT_MAXLEN,
    DEFAULT_STREAM,
    DEFAULT_TIMEOUT_S,
    DEFAULT_URL,
    ERROR_TYPE_INVALID_CONFIG,
    MODES,
    Address,
    ExporterConfig,
    resolve_config,
)

__all__ = [
    "DEFAULT_MAXLEN",
    "DEFAULT_MAX_VALUE_LENGTH",
    "DEFAULT_STREAM",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_URL",
    "ERROR_TYPE_INVALID_CONFIG",
    "MODES",
    "Address",
    "ExporterConfig",
    "resolve_config",
]
