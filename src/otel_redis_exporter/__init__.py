"""OpenTelemetry log exporter that writes log records to Redis Streams."""

# First: without redis-py, importing the package fails with a message that says how to fix it.
from ._redis import RedisNotInstalledError  # isort: skip

from ._config import ExporterConfig
from ._encoding import LogEntry, decode_fields
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
