"""Reading the streams back: ``RedisLogReader`` (ranges, tail, traces, stats) and consumer groups."""

from .groups import DEFAULT_CLAIM_IDLE_MS, DEFAULT_GROUP_COUNT, ConsumerGroup, GroupInfo
from .reader import RedisLogReader, StreamStats
from .replies import DEAD_LETTER_SUFFIX, DEFAULT_BLOCK_MS

__all__ = [
    "DEAD_LETTER_SUFFIX",
    "DEFAULT_BLOCK_MS",
    "DEFAULT_CLAIM_IDLE_MS",
    "DEFAULT_GROUP_COUNT",
    "ConsumerGroup",
    "GroupInfo",
    "RedisLogReader",
    "StreamStats",
]
