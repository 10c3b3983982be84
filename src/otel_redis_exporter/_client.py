"""Builds redis-py connection pools from the configuration, without any I/O.

redis-py retries by itself and waits up to its own socket timeouts; the exporter owns retries and
one deadline per export, so its own retry layer is switched off here and every socket timeout is
bounded by what is left of the deadline (``bound_timeouts``).
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
import redis.asyncio.retry
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._config import ExporterConfig


def connection_kwargs(config: ExporterConfig, retry: Any) -> dict[str, Any]:
    """redis-py connection options shared by every client the exporter builds."""
    return {
        "socket_timeout": config.timeout_s,
        "socket_connect_timeout": config.timeout_s,
        "retry": retry,
        "retry_on_timeout": False,
        "health_check_interval": 0,
    }


def make_pool(config: ExporterConfig) -> Any:
    """A connection pool for ``config.url``; connections open on first use."""
    return redis.ConnectionPool.from_url(config.url, **connection_kwargs(config, Retry(NoBackoff(), 0)))


def make_async_pool(config: ExporterConfig) -> Any:
    """The redis.asyncio twin of ``make_pool``; build it on the loop that will use it."""
    return redis.asyncio.ConnectionPool.from_url(
        config.url, **connection_kwargs(config, redis.asyncio.retry.Retry(NoBackoff(), 0))
    )


def bound_timeouts(pool: Any, connection: Any | None, seconds: float) -> None:
    """Make connect, read and write on ``connection`` (and new ones) give up after ``seconds``."""
    seconds = max(seconds, 0.001)
    pool.connection_kwargs["socket_connect_timeout"] = seconds
    pool.connection_kwargs["socket_timeout"] = seconds
    if connection is None:
        return
    connection.socket_connect_timeout = seconds
    connection.socket_timeout = seconds
    sock = getattr(connection, "_sock", None)
    if sock is not None:
        sock.settimeout(seconds)
