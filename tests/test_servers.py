"""Self-test of the test-server infrastructure in ``servers.py`` / ``conftest.py``."""

from __future__ import annotations

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from conftest import on_tls_kinds

from servers import Cluster, SentinelGroup, ServerProcess, StartServer, TlsMaterial, no_retry


def test_plain_server_ping_and_xadd(redis_client: redis.Redis, redis_url: str) -> None:
    """The shared server answers PING and XADD, and its URL works."""
    assert redis_client.ping()
    redis_client.xadd("s", {"k": "v"})
    with redis.Redis.from_url(redis_url, decode_responses=True) as other:
        assert other.xlen("s") == 1


def test_restart_keeps_appendonly_data(start_server: StartServer) -> None:
    """restart() reuses port, dir and config, so AOF data survives."""
    proc = start_server({"appendonly": "yes", "appendfsync": "always"})
    with proc.client() as conn:
        conn.xadd("s", {"k": "v"})
    port = proc.port
    proc.restart()
    assert proc.port == port
    with proc.client() as conn:
        assert conn.xlen("s") == 1


def test_freeze_and_thaw(start_server: StartServer) -> None:
    """A frozen server times out; after thaw() it answers again."""
    proc: ServerProcess = start_server()
    proc.freeze()
    with proc.client(socket_timeout=0.3, retry=no_retry()) as conn, pytest.raises(redis.TimeoutError):
        conn.ping()
    proc.thaw()
    with proc.client() as conn:
        assert conn.ping()


@on_tls_kinds
def test_tls_server_refuses_plain_tcp_and_accepts_ca(
    start_server: StartServer, tls_material: TlsMaterial
) -> None:
    """A TLS-only server rejects plaintext and the wrong CA, accepts the right CA."""
    proc: ServerProcess = start_server(tls=tls_material)
    assert proc.url.startswith("rediss://")
    plain = redis.Redis(host=proc.host, port=proc.port, socket_timeout=2, retry=no_retry())
    with plain, pytest.raises(redis.ConnectionError):
        plain.ping()
    wrong = redis.Redis(
        host=proc.host, port=proc.port, ssl=True, ssl_ca_certs=tls_material.wrong_ca_cert, retry=no_retry()
    )
    with wrong, pytest.raises(redis.ConnectionError):
        wrong.ping()
    good = redis.Redis(host=proc.host, port=proc.port, ssl=True, ssl_ca_certs=tls_material.ca_cert)
    with good:
        assert good.ping()
        good.xadd("s", {"k": "v"})


@on_tls_kinds
def test_tls_mutual_auth(start_server: StartServer, tls_material: TlsMaterial) -> None:
    """With tls-auth-clients yes only a client presenting its certificate gets in."""
    proc: ServerProcess = start_server(tls=tls_material, tls_auth_clients="yes")
    anonymous = redis.Redis(
        host=proc.host, port=proc.port, retry=no_retry(), **proc.tls_client_kwargs(client_cert=False)
    )
    with anonymous, pytest.raises(redis.ConnectionError):
        anonymous.ping()
    with proc.client(**proc.tls_client_kwargs(client_cert=True)) as conn:
        assert conn.ping()


def test_cluster(cluster: Cluster) -> None:
    """3 masters + 3 replicas reach cluster_state:ok; RedisCluster writes to several slots; failover works."""
    assert len(cluster.masters) == 3
    assert len(cluster.replicas) == 3
    for node in cluster.nodes:
        with node.client() as conn:
            assert "cluster_state:ok" in conn.execute_command("CLUSTER", "INFO")

    client = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in cluster.startup_nodes],
        decode_responses=True,
    )
    with client:
        keys = ["stream-a", "stream-b", "stream-c", "stream-d"]
        owners = {cluster.node_for_slot(client.keyslot(key)).port for key in keys}
        assert len(owners) > 1, "test keys should land on different masters"
        for key in keys:
            client.xadd(key, {"k": "v"})
        assert all(client.xlen(key) == 1 for key in keys)

        replica = cluster.replicas[0]
        cluster.failover(replica)
        assert replica in cluster.masters
        client.xadd("stream-a", {"k": "after-failover"})


def test_sentinel_group_failover(sentinel_group: SentinelGroup) -> None:
    """Sentinels report the master, and failover() moves it to the replica."""
    old = sentinel_group.current_master_address()
    assert old == sentinel_group.master.address
    sentinel = Sentinel(sentinel_group.sentinels, socket_timeout=2)
    assert sentinel.discover_master(sentinel_group.master_name) == old

    new = sentinel_group.failover()
    assert new != old
    assert sentinel.discover_master(sentinel_group.master_name) == new
    with sentinel.master_for(sentinel_group.master_name, decode_responses=True) as master:
        master.xadd("s", {"k": "v"})
