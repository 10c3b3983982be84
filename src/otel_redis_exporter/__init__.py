"""OpenTelemetry log exporter that writes log records to Redis Streams."""

from ._config import ExporterConfig
from ._encoding import LogEntry, decode_fields
from ._errors import OtlpNotInstalledError, RedisNotInstalledError
from .exporter import RedisLogExporter
from .reader import ConsumerGroup, GroupInfo, RedisLogReader, StreamStats

__all__ = [
    "ConsumerGroup",
    "ExporterConfig",
    "GroupInfo",
    "LogEntry",
    "OtlpNotInstalledError",
    "RedisLogExporter",
    "RedisLogReader",
    "RedisNotInstalledError",
    "StreamStats",
    "decode_fields",
]
