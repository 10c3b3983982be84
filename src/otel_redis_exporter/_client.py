"""Builds redis-py connection pools from the configuration, without any I/O.

redis-py retries by itself and waits up to its own socket timeouts; the exporter owns retries and
one deadline per export, so its own retry layer is switched off here and every socket timeout is
bounded by what is left of the deadline (``bound_timeouts``).

Four deployments: one server (``ConnectionPool``), Sentinel (``SentinelConnectionPool``, which asks
the sentinels for the master whenever it connects), Redis Cluster (``ClusterNodes``: redis-py's
``RedisCluster`` for the slot map, one pool per master) and TLS on any of them (``rediss://``).
"""

from __future__ import annotations

import contextlib
import encodings.idna  # noqa: F401 (see below)
import importlib
import inspect
import secrets  # noqa: F401 (see below)
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.connection
import redis.retry
from redis.backoff import NoBackoff

from ._config import ExporterConfig
from ._keys import key_slot
from ._types import Address

# redis-py imports ``secrets`` when it makes a pool, and naming a host imports the IDNA codec: both
# on the first export, which an application often makes while it logs a burst. Imported here,
# with the exporter, they cost that export nothing (every file read lets go of the interpreter
# lock, and taking it back waits for a busy application thread).

# No CLIENT SETINFO on connect: two round trips less before the first write (which matters when
# an application logs a burst at start) and no ACL permission to ask for. redis-py 8 takes
# driver_info=None for that; older releases take lib_name=None and lib_version=None.
_NO_CLIENT_SETINFO: dict[str, Any] = (
    {"driver_info": None}
    if "driver_info" in inspect.signature(redis.connection.AbstractConnection.__init__).parameters
    else {"lib_name": None, "lib_version": None}
)


def connection_kwargs(config: ExporterConfig, retry: Any) -> dict[str, Any]:
    """redis-py connection options shared by every client the exporter builds."""
    kwargs = {
        "socket_timeout": config.timeout_s,
        "socket_connect_timeout": config.timeout_s,
        "retry": retry,
        "retry_on_timeout": False,
        "health_check_interval": 0,
        **_NO_CLIENT_SETINFO,
    }
    # RESP2, as redis-py before 8 spoke by default: an XADD's, WAIT's and error's replies are the
    # same in RESP3, RESP2 has no push messages to interleave, and the compiled fast path reads
    # RESP2 (a ?protocol=3 in the URL still wins, and then redis-py reads the replies). Not over
    # TLS: without RESP3's HELLO nothing reads the session tickets a TLS 1.3 server sends after
    # the handshake, and redis-py 8 takes them for unread replies ("Connection not ready").
    if urlsplit(config.url).scheme != "rediss":
        kwargs["protocol"] = 2
    return kwargs


def tls_kwargs(config: ExporterConfig) -> dict[str, Any]:
    """TLS options for a ``rediss://`` URL: the CA file, the client certificate and key, and
    host name verification (on unless the URL says ``?ssl_check_hostname=false``)."""
    if urlsplit(config.url).scheme != "rediss":
        return {}
    kwargs: dict[str, Any] = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
    if config.certificate is not None:
        kwargs["ssl_ca_certs"] = config.certificate
    if config.client_certificate is not None and config.client_key is not None:
        kwargs["ssl_certfile"] = config.client_certificate
        kwargs["ssl_keyfile"] = config.client_key
    return kwargs


def credentials(config: ExporterConfig) -> dict[str, Any]:
    """The ``username`` and ``password`` settings; they win over the URL's user and password."""
    given = {"username": config.username, "password": config.password}
    return {name: value for name, value in given.items() if value is not None}


def url_options(config: ExporterConfig) -> dict[str, Any]:
    """What the URL says besides its address: user, password, db and query options."""
    options: dict[str, Any] = _module("redis.connection").parse_url(config.url)
    for name in ("host", "port", "path", "connection_class"):
        options.pop(name, None)
    options.update(credentials(config))
    return options


def _from_url(pool_class: Any, config: ExporterConfig, kwargs: dict[str, Any]) -> Any:
    """``pool_class.from_url`` with the credentials given outside the URL (from_url lets the URL win)."""
    pool = pool_class.from_url(config.url, **kwargs)
    pool.connection_kwargs.update(credentials(config))
    return pool


def make_pool(config: ExporterConfig) -> Any:
    """Where the sync writer gets connections for ``config``; nothing connects yet.

    A ``ConnectionPool`` for one server, a ``SentinelConnectionPool`` with sentinels, and
    ``ClusterNodes`` for a Redis Cluster.
    """
    if config.cluster:
        return ClusterNodes(config)
    kwargs = {**connection_kwargs(config, redis.retry.Retry(NoBackoff(), 0)), **tls_kwargs(config)}
    if config.sentinels:
        return _sentinel_pool(_module("redis.sentinel"), config, kwargs)
    return _from_url(redis.ConnectionPool, config, kwargs)


def make_async_pool(config: ExporterConfig) -> Any:
    """The redis.asyncio twin of ``make_pool``; build it on the loop that will use it."""
    if config.cluster:
        return AsyncClusterNodes(config)
    kwargs = {**connection_kwargs(config, redis.asyncio.retry.Retry(NoBackoff(), 0)), **tls_kwargs(config)}
    if config.sentinels:
        return _sentinel_pool(_module("redis.asyncio.sentinel"), config, kwargs)
    return _from_url(redis.asyncio.ConnectionPool, config, kwargs)


def _module(name: str) -> Any:
    """A redis-py module, untyped: parts of redis-py have no annotations."""
    return importlib.import_module(name)


def _sentinel_pool(sentinel: Any, config: ExporterConfig, kwargs: dict[str, Any]) -> Any:
    """A master pool of ``sentinel`` (``redis.sentinel`` or ``redis.asyncio.sentinel``): each new
    connection asks the sentinels where the master is; READONLY drops the connection."""
    manager = sentinel.Sentinel(list(config.sentinels), sentinel_kwargs=sentinel_kwargs(config, kwargs))
    return sentinel.SentinelConnectionPool(config.sentinel_master, manager, **_over_tls(config, kwargs))


def _over_tls(config: ExporterConfig, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` plus what the URL says (it wins, as with ``from_url``), plus ``ssl`` for TLS."""
    merged = {**kwargs, **url_options(config)}
    if urlsplit(config.url).scheme == "rediss":
        merged["ssl"] = True
    return merged


def sentinel_kwargs(config: ExporterConfig, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Connection options for the sentinels: the same timeouts, no retries and, with a
    ``rediss://`` URL, the same TLS files; their own user and password."""
    options = {name: kwargs[name] for name in ("socket_timeout", "socket_connect_timeout", "retry")}
    options.update(tls_kwargs(config))
    if urlsplit(config.url).scheme == "rediss":
        options["ssl"] = True
    if config.sentinel_username is not None:
        options["username"] = config.sentinel_username
    if config.sentinel_password is not None:
        options["password"] = config.sentinel_password
    return options


def sentinel_pools(pool: Any) -> Iterator[Any]:
    """The connection pools of the sentinels behind a ``SentinelConnectionPool``."""
    for sentinel in pool.sentinel_manager.sentinels:
        yield sentinel.connection_pool


def bound_idle_timeouts(pool: Any, seconds: float) -> None:
    """``bound_timeouts`` for every idle connection of a sync ``pool`` and the ones it opens next."""
    bound_timeouts(pool, None, seconds)
    for connection in list(getattr(pool, "_available_connections", ())):
        bound_timeouts(pool, connection, seconds)


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


# --------------------------------------------------------------------------
# Redis Cluster
# --------------------------------------------------------------------------


def _redis_major() -> int:
    import redis  # noqa: PLC0415

    major = str(redis.__version__).split(".", 1)[0]
    return int(major) if major.isdigit() else 99


def cluster_kwargs(config: ExporterConfig, timeout: float) -> dict[str, Any]:
    """``RedisCluster`` options: the startup node from the URL, its credentials and TLS, timeouts
    of at most ``timeout`` seconds, no full-coverage requirement (a lost master must not stop
    writes to the others)."""
    options = url_options(config)
    options.pop("db", None)
    seconds = max(min(timeout, config.timeout_s), 0.001)
    options.update(socket_timeout=seconds, socket_connect_timeout=seconds, health_check_interval=0)
    options.update(tls_kwargs(config))
    if urlsplit(config.url).scheme == "rediss":
        options["ssl"] = True
    options["require_full_coverage"] = False
    return options


def startup_node(config: ExporterConfig) -> Address:
    parts = urlsplit(config.url)
    return parts.hostname or "localhost", parts.port or 6379


def topology_error(error: BaseException) -> BaseException:
    """What to report when the slot map cannot be read: the server's own refusal behind
    redis-py's wrapper (a wrong password, NOPERM, cluster support disabled), or else a
    ``ConnectionError`` (retried: the cluster may be electing a new master)."""
    from redis import exceptions as rex  # noqa: PLC0415

    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, rex.AuthenticationError | rex.ResponseError):
            return seen
        if isinstance(seen, rex.ConnectionError | rex.TimeoutError | OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return rex.ConnectionError(f"cannot read the cluster's slot map: {error}")


class ClusterNodes:
    """The masters of a Redis Cluster and the slots they serve, through redis-py's ``RedisCluster``.

    Building it reads the slot map and the command table from a node (I/O), so that happens on
    the first ``ready``, not in the constructor; ``stale`` asks the next ``ready`` to read the
    slot map again (after a MOVED redirect or a lost node). The writer sends its own pipelines
    on the per-master connection pools.
    """

    def __init__(self, config: ExporterConfig) -> None:
        self._config = config
        self._client: Any = None
        self.stale = False

    def ready(self, timeout: float) -> None:
        """Have a slot map, read again if stale; raises ``topology_error``s."""
        try:
            if self._client is None:
                self._client = self._build(timeout)
            elif self.stale:
                manager = self._client.nodes_manager
                seconds = max(min(timeout, self._config.timeout_s), 0.001)
                manager.connection_kwargs.update(socket_timeout=seconds, socket_connect_timeout=seconds)
                for node in list(manager.nodes_cache.values()):
                    if node.redis_connection is not None:
                        bound_idle_timeouts(node.redis_connection.connection_pool, timeout)
                manager.initialize()
            self.stale = False
        except Exception as error:
            raise topology_error(error) from error

    def _build(self, timeout: float) -> Any:
        from redis.backoff import NoBackoff  # noqa: PLC0415
        from redis.retry import Retry  # noqa: PLC0415

        cluster = _module("redis.cluster")

        options = cluster_kwargs(self._config, timeout)
        if _redis_major() < 6:
            # redis-py 5 retries cluster errors itself unless told not to (6+ follows ``retry``).
            options["cluster_error_retry_attempts"] = 0
        host, port = startup_node(self._config)
        nodes = [cluster.ClusterNode(host, port)]
        return cluster.RedisCluster(startup_nodes=nodes, retry=Retry(NoBackoff(), 0), **options)

    def pool_for(self, key: str) -> tuple[str, Any]:
        """The name and connection pool of the master serving ``key``'s slot."""
        node = self._client.nodes_manager.get_node_from_slot(key_slot(key))
        return node.name, node.redis_connection.connection_pool

    def pool_at(self, address: Address) -> tuple[str, Any] | None:
        """The node at ``address`` (an ASK redirect's target), if the slot map knows it."""
        node = self._client.nodes_manager.get_node(host=address[0], port=address[1])
        if node is None or node.redis_connection is None:
            return None
        return node.name, node.redis_connection.connection_pool

    def disconnect(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None


class _NodeConnections:
    """A redis.asyncio ``ClusterNode``'s connections behind the two calls a pool answers."""

    def __init__(self, node: Any) -> None:
        self._node = node

    async def get_connection(self) -> Any:
        return self._node.acquire_connection()

    async def release(self, connection: Any) -> None:
        release = getattr(self._node, "release", None)
        if release is not None:
            release(connection)
        else:  # redis-py 5
            self._node._free.append(connection)


class AsyncClusterNodes:
    """The redis.asyncio twin of ``ClusterNodes``; its calls are bounded by the caller."""

    def __init__(self, config: ExporterConfig) -> None:
        self._config = config
        self._client: Any = None
        self.stale = False

    async def ready(self, timeout: float) -> None:
        """Have a slot map, read again if stale; raises ``topology_error``s."""
        try:
            if self._client is None:
                client = self._build(timeout)
                await client.initialize()
                self._client = client
            elif self.stale:
                await self._client.nodes_manager.initialize()
            self.stale = False
        except Exception as error:
            raise topology_error(error) from error

    def _build(self, timeout: float) -> Any:
        from redis.asyncio.cluster import ClusterNode, RedisCluster  # noqa: PLC0415
        from redis.asyncio.retry import Retry  # noqa: PLC0415
        from redis.backoff import NoBackoff  # noqa: PLC0415

        host, port = startup_node(self._config)
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port)],
            retry=Retry(NoBackoff(), 0),
            **cluster_kwargs(self._config, timeout),
        )

    def pool_for(self, key: str) -> tuple[str, Any]:
        node = self._client.nodes_manager.get_node_from_slot(key_slot(key))
        return node.name, _NodeConnections(node)

    def pool_at(self, address: Address) -> tuple[str, Any] | None:
        node = self._client.nodes_manager.get_node(host=address[0], port=address[1])
        return None if node is None else (node.name, _NodeConnections(node))

    async def disconnect(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None
