"""The exporter's configuration: what can be set (``settings``), how values are checked
(``checks``) and how they are resolved (``resolve``)."""

from .resolve import ERROR_TYPE_INVALID_CONFIG, ExporterConfig, resolve, resolve_config
from .settings import (
    CONFIG_SETTINGS,
    DEFAULT_MAX_VALUE_LENGTH,
    DEFAULT_MAXLEN,
    DEFAULT_STREAM,
    DEFAULT_TIMEOUT_S,
    DEFAULT_URL,
    MODES,
    SETTINGS,
    ExporterOptions,
)

__all__ = [
    "CONFIG_SETTINGS",
    "DEFAULT_MAXLEN",
    "DEFAULT_MAX_VALUE_LENGTH",
    "DEFAULT_STREAM",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_URL",
    "ERROR_TYPE_INVALID_CONFIG",
    "MODES",
    "SETTINGS",
    "ExporterConfig",
    "ExporterOptions",
    "resolve",
    "resolve_config",
]
