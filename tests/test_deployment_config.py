"""Configuration of Cluster, Sentinel, durable writes and TLS: resolved and checked, no server."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from otel_redis_exporter import RedisLogExporter
from otel_redis_exporter._client import make_async_pool, make_pool, tls_kwargs
from otel_redis_exporter._config import resolve_config


@pytest.fixture
def pem(tmp_path: Path) -> str:
    """A file to stand for a PEM file (configuration only checks that it exists)."""
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return str(path)


def test_defaults_mean_one_plain_server() -> None:
    """Nothing set: no cluster, one shard, no sentinels, no WAIT, no TLS files."""
    config = resolve_config(environ={})
    assert (config.cluster, config.shards, config.sentinels, config.wait_replicas) == (False, 1, (), 0)
    assert config.sentinel_master == "mymaster"
    assert (config.certificate, config.client_key, config.client_certificate) == (None, None, None)


def test_environment_sets_every_deployment_option(pem: str) -> None:
    """Each deployment variable sets its option."""
    env_password = "sentinel-secret"  # noqa: S105 (a test value, not a credential)
    config = resolve_config(
        environ={
            "OTEL_EXPORTER_REDIS_URL": "rediss://db:6380/0",
            "OTEL_EXPORTER_REDIS_LOGS_SHARDS": "4",
            "OTEL_EXPORTER_REDIS_SENTINELS": "s1:26379, s2 ,[::1]:26380",
            "OTEL_EXPORTER_REDIS_SENTINEL_MASTER": "logs",
            "OTEL_EXPORTER_REDIS_SENTINEL_USERNAME": "watcher",
            "OTEL_EXPORTER_REDIS_SENTINEL_PASSWORD": env_password,
            "OTEL_EXPORTER_REDIS_WAIT_REPLICAS": "2",
            "OTEL_EXPORTER_REDIS_CERTIFICATE": pem,
            "OTEL_EXPORTER_REDIS_CLIENT_KEY": pem,
            "OTEL_EXPORTER_REDIS_CLIENT_CERTIFICATE": pem,
        }
    )
    assert config.shards == 4
    assert config.sentinels == (("s1", 26379), ("s2", 26379), ("::1", 26380))
    assert (config.sentinel_master, config.sentinel_username) == ("logs", "watcher")
    assert config.sentinel_password == env_password
    assert config.wait_replicas == 2
    assert config.certificate == config.client_key == config.client_certificate == pem
    assert resolve_config(environ={"OTEL_EXPORTER_REDIS_CLUSTER": "TRUE"}).cluster is True


def test_sentinels_argument_takes_a_string_or_pairs() -> None:
    """sentinels= accepts "host:port,..." and a sequence of "host:port" or (host, port)."""
    expected = (("a", 1), ("b", 26379), ("c", 3))
    assert resolve_config(sentinels="a:1,b,c:3", environ={}).sentinels == expected
    assert resolve_config(sentinels=["a:1", "b", ("c", 3)], environ={}).sentinels == expected


@pytest.mark.parametrize(
    ("arguments", "allowed"),
    [
        ({"cluster": "yes"}, "True or False"),
        ({"shards": 0}, "from 1 to 256"),
        ({"shards": True}, "from 1 to 256"),
        ({"sentinels": "a:b"}, "host:port"),
        ({"sentinels": []}, "at least one"),
        ({"sentinels": [("a", "1")]}, "(host, port) pairs"),
        ({"sentinel_master": " "}, "non-empty name"),
        ({"wait_replicas": -1}, ">= 0"),
        ({"url": "rediss://h/0", "certificate": "/no/such/ca.pem"}, "no such file"),
        ({"cluster": True, "sentinels": "a:1"}, "exclusive"),
        ({"cluster": True, "url": "redis://h:1/2"}, "database 0"),
        ({"cluster": True, "url": "unix:///tmp/r.sock"}, "redis:// or rediss://"),
        ({"sentinels": "a:1", "url": "unix:///tmp/r.sock"}, "redis:// or rediss://"),
    ],
)
def test_invalid_argument_raises_value_error_naming_what_is_allowed(
    arguments: dict[str, object], allowed: str
) -> None:
    """A bad or contradictory deployment argument fails early with a ValueError saying what is allowed."""
    with pytest.raises(ValueError, match=re.escape(allowed)):
        resolve_config(**arguments, environ={})  # type: ignore[arg-type]


def test_tls_files_need_rediss(pem: str) -> None:
    """A CA file with a redis:// URL is an error as arguments, a warning from the environment."""
    with pytest.raises(ValueError, match="rediss://"):
        resolve_config(url="redis://h/0", certificate=pem, environ={})


def test_tls_files_from_the_environment_without_rediss_are_dropped(
    pem: str, caplog: pytest.LogCaptureFixture
) -> None:
    """From the environment, TLS files for a redis:// URL are ignored with a warning."""
    with caplog.at_level(logging.WARNING, logger="otel_redis_exporter"):
        config = resolve_config(url="redis://h/0", environ={"OTEL_EXPORTER_REDIS_CERTIFICATE": pem})
    assert config.certificate is None
    assert "OTEL_EXPORTER_REDIS_CERTIFICATE" in caplog.text


def test_client_key_and_certificate_go_together(pem: str, caplog: pytest.LogCaptureFixture) -> None:
    """Half of a client key pair is an error as an argument and dropped from the environment."""
    with pytest.raises(ValueError, match="go together"):
        resolve_config(url="rediss://h/0", client_key=pem, environ={})
    with caplog.at_level(logging.WARNING, logger="otel_redis_exporter"):
        config = resolve_config(url="rediss://h/0", environ={"OTEL_EXPORTER_REDIS_CLIENT_CERTIFICATE": pem})
    assert config.client_certificate is None
    assert "OTEL_EXPORTER_REDIS_CLIENT_CERTIFICATE" in caplog.text


def test_cluster_and_sentinels_from_the_environment_cancel_out(caplog: pytest.LogCaptureFixture) -> None:
    """Both set by variables: a warning, and neither is used."""
    env = {"OTEL_EXPORTER_REDIS_CLUSTER": "true", "OTEL_EXPORTER_REDIS_SENTINELS": "s:26379"}
    with caplog.at_level(logging.WARNING, logger="otel_redis_exporter"):
        config = resolve_config(environ=env)
    assert (config.cluster, config.sentinels) == (False, ())
    assert "exclusive" in caplog.text


def test_an_argument_wins_over_a_contradicting_variable(caplog: pytest.LogCaptureFixture) -> None:
    """cluster=True as an argument drops OTEL_EXPORTER_REDIS_SENTINELS with a warning."""
    with caplog.at_level(logging.WARNING, logger="otel_redis_exporter"):
        config = resolve_config(cluster=True, environ={"OTEL_EXPORTER_REDIS_SENTINELS": "s:26379"})
    assert (config.cluster, config.sentinels) == (True, ())
    assert "OTEL_EXPORTER_REDIS_SENTINELS" in caplog.text


def test_host_names_are_verified_by_default(pem: str) -> None:
    """rediss:// turns on certificate and host name checks and passes the PEM files on."""
    config = resolve_config(
        url="rediss://h/0", certificate=pem, client_key=pem, client_certificate=pem, environ={}
    )
    assert tls_kwargs(config) == {
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
        "ssl_ca_certs": pem,
        "ssl_certfile": pem,
        "ssl_keyfile": pem,
    }
    assert tls_kwargs(resolve_config(url="redis://h/0", environ={})) == {}


def test_sentinel_password_never_in_repr() -> None:
    """The config's repr hides the sentinel password as well as the URL's."""
    secrets = {"sentinel_password": "sentinel-secret"}
    config = resolve_config(url="redis://app:url-secret@h/0", sentinels="s:1", **secrets, environ={})
    text = repr(config)
    assert "url-secret" not in text
    assert "sentinel-secret" not in text
    assert "sentinel_password='***'" in text
    assert "sentinels=(('s', 1),)" in text


@pytest.mark.parametrize("factory", [make_pool, make_async_pool])
@pytest.mark.parametrize(
    "deployment", [{"cluster": True}, {"sentinels": "127.0.0.1:1"}, {"url": "rediss://127.0.0.1:1/0"}]
)
def test_building_the_connection_source_does_no_io(factory: object, deployment: dict[str, object]) -> None:
    """Pools for Cluster, Sentinel and TLS are built for unreachable addresses without connecting."""
    config = resolve_config(**deployment, environ={})  # type: ignore[arg-type]
    assert factory(config) is not None  # type: ignore[operator]


def test_exporter_takes_the_deployment_arguments() -> None:
    """The exporter passes every deployment argument to its configuration."""
    exporter = RedisLogExporter(
        url="redis://127.0.0.1:1/0",
        sentinels="127.0.0.1:2",
        sentinel_master="logs",
        wait_replicas=1,
        shards=2,
    )
    try:
        config = exporter.config
        assert (config.sentinels, config.sentinel_master, config.wait_replicas, config.shards) == (
            (("127.0.0.1", 2),),
            "logs",
            1,
            2,
        )
    finally:
        exporter.shutdown()
