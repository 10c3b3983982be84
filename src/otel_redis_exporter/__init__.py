"""OpenTelemetry log exporter that writes log records to Redis Streams."""

# First: without redis-py, importing the package fails with a message that says how to fix it.
from ._redis import RedisNotInstalledError  # isort: skip

from ._config import ExporterConfig
from ._encoding import LogEntry, decode_fields
from ._errors import OtlpNotInstalledError
from ._fast import FAST_PATH
from ._keys import shard_keys
from ._setup import configure_logging
from .exporter import RedisLogExporter
from .reader import ConsumerGroup, GroupInfo, RedisLogReader, StreamStats

__all__ = [
    "FAST_PATH",
    "ConsumerGroup",
    "ExporterConfig",
    "GroupInfo",
    "LogEntry",
    "OtlpNotInstalledError",
    "RedisLogExporter",
    "RedisLogReader",
    "RedisNotInstalledError",
    "StreamStats",
    "configure_logging",
    "decode_fields",
    "shard_keys",
]
