"""Reading the streams back: ``RedisLogReader`` (ranges, tail, traces, stats) and consumer groups."""

from .reader import (
    DEAD_LETTER_SUFFIX,
    DEFAULT_BLOCK_MS,
    DEFAULT_CLAIM_IDLE_MS,
    DEFAULT_GROUP_COUNT,
    ConsumerGroup,
    GroupInfo,
    RedisLogReader,
    StreamStats,
)

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
