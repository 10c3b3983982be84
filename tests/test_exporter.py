"""RedisLogExporter against real Redis and Valkey servers started by the suite, in both modes."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel_redis_exporter import RedisLogExporter, decode_fields
from otel_redis_exporter._client import make_async_pool, make_pool
from otel_redis_exporter._config import ExporterConfig
from otel_redis_exporter._write import HANDOFF_TIMEOUT_S
from otel_redis_exporter._write.delivery import SHUTDOWN_PATIENCE_S

from records import make_record, span_context
from servers import ServerProcess, free_port, logged
from test_encoding import representable, same

SUCCESS = LogRecordExportResult.SUCCESS
FAILURE = LogRecordExportResult.FAILURE


def entries(client: redis.Redis, key: str = "otel:logs") -> list[dict[str, str]]:
    """Every entry's fields in stream order."""
    return [fields for _, fields in client.xrange(key)]


def dead_url() -> str:
    """A loopback URL where nothing listens."""
    return f"redis://127.0.0.1:{free_port()}/0"


def test_logging_inside_a_span_lands_with_every_field(
    redis_url: str, redis_client: redis.Redis, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """stdlib logging -> LoggingHandler -> BatchLogRecordProcessor -> one entry with the span's ids."""
    provider = LoggerProvider(resource=Resource.create({"service.name": "shop", "service.version": "2.0"}))
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter_factory(url=redis_url)))
    handler = LoggingHandler(logger_provider=provider)
    app_logger = logging.getLogger("shop.orders")
    app_logger.addHandler(handler)
    app_logger.setLevel(logging.INFO)
    tracer = TracerProvider().get_tracer("shop")
    try:
        with tracer.start_as_current_span("place-order") as span:
            app_logger.warning("order %s placed", 42, extra={"order.total": 9.5, "order.items": 3})
        provider.force_flush()
    finally:
        app_logger.removeHandler(handler)
        provider.shutdown()

    [fields] = entries(redis_client)
    context = span.get_span_context()
    assert fields["trace_id"] == f"{context.trace_id:032x}"
    assert fields["span_id"] == f"{context.span_id:016x}"
    assert fields["trace_flags"] == str(int(context.trace_flags))
    assert fields["body"] == "order 42 placed"
    assert (fields["severity_number"], fields["severity_text"]) == ("13", "WARN")
    assert fields["scope.name"] == "shop.orders"
    assert fields["service.name"] == "shop"
    assert json.loads(fields["resource"])["service.version"] == "2.0"
    attributes = json.loads(fields["attributes"])
    assert attributes["order.total"] == 9.5
    assert attributes["order.items"] == 3
    assert int(fields["observed_timestamp"]) >= int(fields["timestamp"]) > 0


def test_batch_is_written_in_order(
    redis_url: str, redis_client: redis.Redis, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """A 512-record batch becomes 512 entries in batch order."""
    exporter = exporter_factory(url=redis_url)
    batch = [make_record(f"record {i}", {"i": i}, context=span_context()) for i in range(512)]
    assert exporter.export(batch) is SUCCESS
    assert [fields["body"] for fields in entries(redis_client)] == [f"record {i}" for i in range(512)]


def test_templated_stream_keys_stay_in_their_key_space(
    redis_url: str, redis_client: redis.Redis, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """Hostile service names cannot write outside `logs:<safe chars>`."""
    exporter = exporter_factory(url=redis_url, stream="logs:{service.name}")
    names = ["api", "a b:c*{x}", "../../etc", "", "é" * 200]
    batch = [make_record(n, resource=Resource({"service.name": n})) for n in names]
    batch.append(make_record("no service", resource=Resource({})))
    assert exporter.export(batch) is SUCCESS
    keys = sorted(redis_client.keys("*"))
    assert keys == sorted(
        {"logs:api", "logs:a_b_c__x_", "logs:.._.._etc", "logs:unknown", "logs:" + "_" * 64}
    )
    assert all(redis_client.type(key) == "stream" for key in keys)


def test_maxlen_trims_the_stream(
    redis_url: str, redis_client: redis.Redis, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """With maxlen, the stream stays near that length however much is written."""
    exporter = exporter_factory(url=redis_url, maxlen=100)
    for _ in range(10):
        assert exporter.export([make_record(str(i)) for i in range(200)]) is SUCCESS
    # MAXLEN ~ trims whole radix-tree nodes (100 entries each by default), never below maxlen.
    assert 100 <= redis_client.xlen("otel:logs") <= 300


def test_retention_trims_entries_older_than_it(
    redis_url: str, redis_client: redis.Redis, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """With retention, entries older than it are trimmed on the next writes."""
    for i in range(1, 1001):
        redis_client.xadd("otel:logs", {"old": str(i)}, id=f"{i}-0")  # in 1970: far past any retention
    exporter = exporter_factory(url=redis_url, retention=3600)
    assert exporter.export([make_record("new")]) is SUCCESS
    remaining_old = sum(1 for fields in entries(redis_client) if "old" in fields)
    assert remaining_old < 200
    assert entries(redis_client)[-1]["body"] == "new"


def test_redis_down_at_start_fails_within_the_timeout(
    exporter_factory: Callable[..., RedisLogExporter], caplog: pytest.LogCaptureFixture
) -> None:
    """No server: export returns FAILURE by its deadline and logs why; nothing raises."""
    url = dead_url()
    exporter = exporter_factory(url=url, timeout=0.5)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="otel_redis_exporter"):
        assert exporter.export([make_record()]) is FAILURE
        # export() waits for the hand-off at most, and a refused connection fails at once.
        assert time.monotonic() - started < 2 * HANDOFF_TIMEOUT_S
        logged(lambda: caplog.text, "cannot reach the server", url.removesuffix("/0"))


def recording_pool_factory(mode: str, calls: list[ExporterConfig]) -> Callable[[ExporterConfig], Any]:
    """The mode's real pool factory, noting each call."""
    real = make_async_pool if mode == "async" else make_pool

    def factory(config: ExporterConfig) -> Any:
        calls.append(config)
        return real(config)

    return factory


def test_constructor_does_no_io(mode: str) -> None:
    """Building an exporter for an unreachable server succeeds instantly and opens nothing."""
    calls: list[ExporterConfig] = []
    exporter = RedisLogExporter(url=dead_url(), mode=mode, _pool_factory=recording_pool_factory(mode, calls))
    assert calls == []
    assert not [t for t in threading.enumerate() if t.name.startswith("otel-redis-exporter")]
    exporter.shutdown()


def test_same_exporter_recovers_after_a_restart(
    start_server: Callable[..., ServerProcess], exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """Server stopped between exports: FAILURE while down, then everything lands in order."""
    server = start_server()
    exporter = exporter_factory(url=server.url, timeout=0.5)
    assert exporter.export([make_record("before")]) is SUCCESS
    server.stop()
    assert exporter.export([make_record("while down")]) is FAILURE
    server.restart()
    exporter.export([make_record("after")])
    deadline = time.monotonic() + 15
    while exporter.export([]) is not SUCCESS or exporter.stats().buffered_records:
        assert time.monotonic() < deadline, "the exporter did not recover"
        time.sleep(0.05)
    # The server keeps no data across the restart: what it holds came after it.
    assert [f["body"] for f in entries(server.client())] == ["while down", "after"]


def test_queued_batch_lands_when_the_server_returns_without_another_export(
    start_server: Callable[..., ServerProcess], exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """Server down: export returns FAILURE at once; the sender writes the batch once the server is back."""
    server = start_server()
    exporter = exporter_factory(url=server.url)
    assert exporter.export([make_record("warm-up")]) is SUCCESS
    server.stop()
    started = time.monotonic()
    assert exporter.export([make_record("retried")]) is FAILURE
    assert time.monotonic() - started < HANDOFF_TIMEOUT_S + 0.5
    server.start()
    assert exporter.force_flush(5_000)
    assert [f["body"] for f in entries(server.client())] == ["retried"]
    assert exporter.stats().dropped_total == 0


def test_wrong_password_fails_with_a_clear_reason_and_no_password(
    start_server: Callable[..., ServerProcess],
    exporter_factory: Callable[..., RedisLogExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Authentication failure: FAILURE at once, logged reason says so, the password is never shown."""
    server = start_server(config={"requirepass": "right-secret"})
    url = f"redis://:wrong-secret@{server.host}:{server.port}/0"
    exporter = exporter_factory(url=url, timeout=5)
    with caplog.at_level(logging.DEBUG, logger="otel_redis_exporter"):
        assert exporter.export([make_record()]) is FAILURE
        logged(lambda: caplog.text, "authentication failed")
    assert "wrong-secret" not in caplog.text
    assert "wrong-secret" not in repr(exporter)
    assert "wrong-secret" not in repr(exporter.config)


def test_right_password_in_the_url_is_used(
    start_server: Callable[..., ServerProcess], exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """user:password in the URL authenticates."""
    server = start_server(config={"requirepass": "right-secret"})
    exporter = exporter_factory(url=f"redis://:right-secret@{server.host}:{server.port}/0")
    assert exporter.export([make_record("authenticated")]) is SUCCESS


def test_permanent_error_fails_without_retrying(
    redis_url: str,
    redis_client: redis.Redis,
    exporter_factory: Callable[..., RedisLogExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """WRONGTYPE is not retried; the reason names it."""
    redis_client.set("otel:logs", "not a stream")
    exporter = exporter_factory(url=redis_url, timeout=30)
    with caplog.at_level(logging.WARNING, logger="otel_redis_exporter"):
        assert exporter.export([make_record()]) is FAILURE
        logged(lambda: caplog.text, "WRONGTYPE")


def test_one_bad_key_does_not_cost_the_others(
    redis_url: str, redis_client: redis.Redis, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """Entries for healthy keys land even when another key of the batch is refused."""
    redis_client.set("logs:broken", "not a stream")
    exporter = exporter_factory(url=redis_url, stream="logs:{service.name}")
    batch = [
        make_record("good", resource=Resource({"service.name": "fine"})),
        make_record("bad", resource=Resource({"service.name": "broken"})),
    ]
    assert exporter.export(batch) is FAILURE
    assert [f["body"] for f in entries(redis_client, "logs:fine")] == ["good"]


def test_shutdown_is_idempotent_and_export_after_it_fails_without_io(redis_url: str, mode: str) -> None:
    """shutdown twice is fine; export afterwards returns FAILURE and opens no connection."""
    opened: list[ExporterConfig] = []
    exporter = RedisLogExporter(url=redis_url, mode=mode, _pool_factory=recording_pool_factory(mode, opened))
    exporter.shutdown()
    exporter.shutdown(timeout_millis=10)
    assert exporter.export([make_record()]) is FAILURE
    assert opened == []
    assert exporter.force_flush() is True


def test_shutdown_against_a_dead_server_gives_up_within_its_patience(
    exporter_factory: Callable[..., RedisLogExporter],
) -> None:
    """Nothing listens: shutdown with a long timeout still returns soon and counts what it gave up."""
    exporter = exporter_factory(url=dead_url(), timeout=60)
    assert exporter.export([make_record(), make_record()]) is FAILURE
    started = time.monotonic()
    exporter.shutdown(timeout_millis=60_000)
    assert time.monotonic() - started < SHUTDOWN_PATIENCE_S + 0.5
    assert exporter.stats().dropped == {"shutdown": 2}
    assert exporter.stats().buffered_records == 0


def test_own_log_records_are_not_exported(
    redis_url: str, redis_client: redis.Redis, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """Records from the otel_redis_exporter logger never go back into Redis."""
    exporter = exporter_factory(url=redis_url)
    own = make_record("failure report", scope=InstrumentationScope("otel_redis_exporter"))
    assert exporter.export([own, make_record("app")]) is SUCCESS
    assert [f["body"] for f in entries(redis_client)] == ["app"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=representable, attributes=st.dictionaries(st.text(max_size=10), representable, max_size=5))
def test_any_value_round_trips_through_a_real_server(
    redis_url: str, redis_client: redis.Redis, mode: str, body: Any, attributes: dict[str, Any]
) -> None:
    """Whatever is logged is written, and the entry decodes to the same body and attributes."""
    exporter = RedisLogExporter(url=redis_url, stream="roundtrip", mode=mode)
    try:
        assert exporter.export([make_record(body, attributes)]) is SUCCESS
    finally:
        exporter.shutdown()
    [(entry_id, fields)] = redis_client.xrange("roundtrip", count=1)
    redis_client.delete("roundtrip")
    entry = decode_fields(fields, entry_id=entry_id)
    assert same(entry.body, body)
    assert same(dict(entry.attributes), attributes)


def test_connecting_costs_no_extra_round_trips(
    redis_url: str, redis_client: redis.Redis, exporter_factory: Callable[..., RedisLogExporter]
) -> None:
    """The exporter skips CLIENT SETINFO on connect: its first write is its first command."""

    def setinfo_calls() -> int:
        stats = redis_client.info("commandstats").get("cmdstat_client|setinfo", {})
        return int(stats.get("calls", 0))

    before = setinfo_calls()
    assert exporter_factory(url=redis_url).export([make_record()]) is SUCCESS
    assert setinfo_calls() == before
