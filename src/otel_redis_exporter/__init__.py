"""OpenTelemetry log exporter that writes log records to Redis Streams."""

# First: without redis-py, importing the package fails with a message that says how to fix it.
from . import _redis  # noqa: F401  # isort: skip

from ._config import ExporterConfig
from ._encode.entry import LogEntry
from ._encode.select import decode_fields
from ._fast import FAST_PATH
from ._keys import shard_keys
from ._metrics import ExporterStats
from ._missing import OtlpNotInstalledError, RedisNotInstalledError
from ._setup import configure_logging
from .exporter import RedisLogExporter
from .read import ConsumerGroup, GroupInfo, RedisLogReader, StreamStats

__all__ = [
    "FAST_PATH",
    "ConsumerGroup",
    "ExporterConfig",
    "ExporterStats",
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
