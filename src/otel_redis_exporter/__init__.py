"""OpenTelemetry log exporter that writes log records to Redis Streams."""

from ._config import ExporterConfig
from ._encoding import LogEntry, decode_fields
from ._errors import RedisNotInstalledError
from ._keys import shard_keys
from .exporter import RedisLogExporter

__all__ = [
    "ExporterConfig",
    "LogEntry",
    "RedisLogExporter",
    "RedisNotInstalledError",
    "decode_fields",
    "shard_keys",
]
