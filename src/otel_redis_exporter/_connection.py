"""The reader's connection: one server, Sentinel or a Redis Cluster, from the exporter's configuration.

The reader, the ``otel-redis`` command line and ``forward`` resolve the same settings as the
exporter (arguments, then the ``OTEL_EXPORTER_REDIS_*`` variables, then defaults), so one
deployment environment serves writer and reader alike. The pools come from ``_client``: the
same TLS files, sentinel credentials and timeouts, and no retry layer of redis-py's own on a
single server or Sentinel (the reader's callers decide when to try again). On a Cluster,
redis-py's ``RedisCluster`` routes every command by key and follows ``MOVED`` by itself.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import redis

from ._client import cluster_kwargs, make_pool, sentinel_pools, startup_node
from ._config import ExporterConfig
from ._keys import key_slot

# Stream replies are parsed by the reader rather than by redis-py, the same way for RESP2 and
# RESP3 and for every redis-py version (a deleted entry has no fields).
RAW_COMMANDS = ("XRANGE", "XREVRANGE", "XREAD", "XREADGROUP", "XAUTOCLAIM", "XINFO STREAM")


def _raw(response: Any, **options: Any) -> Any:
    return response


def reader_client(config: ExporterConfig, extra_s: float = 0.0) -> Any:
    """A redis-py client for ``config`` whose socket timeout is ``timeout_s`` plus ``extra_s``
    (a blocking read's block time); nothing connects yet."""
    config = dataclasses.replace(config, timeout_s=config.timeout_s + extra_s)
    client: Any
    if config.cluster:
        cluster = importlib.import_module("redis.cluster")
        host, port = startup_node(config)
        client = cluster.RedisCluster(
            startup_nodes=[cluster.ClusterNode(host, port)], **cluster_kwargs(config, config.timeout_s)
        )
    else:
        client = redis.Redis(connection_pool=make_pool(config))
    for command in RAW_COMMANDS:
        client.set_response_callback(command, _raw)
    return client


def close_client(client: Any) -> None:
    """Close every connection of a client made by ``reader_client`` (a client given a pool
    leaves the pool open on ``close()``), the sentinels' too."""
    if not isinstance(client, redis.Redis):
        client.close()  # RedisCluster: every node's connections
        return
    pool = client.connection_pool
    pool.disconnect()
    if hasattr(pool, "sentinel_manager"):
        for sentinel_pool in sentinel_pools(pool):
            sentinel_pool.disconnect()


def one_slot(config: ExporterConfig, keys: list[str]) -> bool:
    """Whether one command may name all of ``keys``: always on one server, on a Cluster only
    when they share a slot (else the server answers CROSSSLOT)."""
    return not config.cluster or len({key_slot(key) for key in keys}) <= 1
