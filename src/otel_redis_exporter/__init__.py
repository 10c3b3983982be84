"""OpenTelemetry log exporter that writes log records to Redis Streams."""

from ._config import ExporterConfig
from ._encoding import LogEntry, decode_fields
from ._errors import RedisNotInstalledError
from ._setup import configure_logging
from .exporter import RedisLogExporter

__all__ = [
    "ExporterConfig",
    "LogEntry",
    "RedisLogExporter",
    "RedisNotInstalledError",
    "configure_logging",
    "decode_fields",
]
