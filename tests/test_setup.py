"""configure_logging: one call wires stdlib logging to a Redis Stream, in-process, on real servers."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator

import pytest
import redis
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider

from otel_redis_exporter import configure_logging, decode_fields
from otel_redis_exporter._context import instrumentation_suppressed
from otel_redis_exporter._setup import ExcludeLoggersFilter, _unconfigure, make_handler, parse_level

HANDLER_MODULE = "opentelemetry.instrumentation.logging.handler"


def _has_instrumentation_handler() -> bool:
    try:
        __import__(HANDLER_MODULE)
    except ImportError:
        return False
    return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Every test leaves the root and "app" loggers as it found them, with nothing of ours attached."""
    root, app = logging.getLogger(), logging.getLogger("app")
    levels, handlers = (root.level, app.level), list(root.handlers)
    yield
    _unconfigure()
    root.setLevel(levels[0])
    app.setLevel(levels[1])
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)


@pytest.fixture(params=["instrumentation", "sdk"])
def handler_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both handlers configure_logging may pick: the maintained one, and the SDK's fallback."""
    if request.param == "instrumentation":
        if not _has_instrumentation_handler():
            pytest.skip("opentelemetry-instrumentation-logging >= 0.61b0 is not installed")
    else:
        # As if opentelemetry-instrumentation-logging were not installed.
        monkeypatch.setitem(sys.modules, HANDLER_MODULE, None)
    return str(request.param)


def entries(client: redis.Redis, key: str = "otel:logs") -> list[dict[str, str]]:
    """Every entry's fields in stream order."""
    return [fields for _, fields in client.xrange(key)]


def ours(logger: logging.Logger | None = None) -> list[logging.Handler]:
    """The handlers on ``logger`` (default root) that configure_logging attached."""
    target = logger or logging.getLogger()
    return [h for h in target.handlers if any(isinstance(f, ExcludeLoggersFilter) for f in h.filters)]


# --------------------------------------------------------------------------
# pure parts, no server
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [(logging.DEBUG, 10), (25, 25), ("info", 20), (" WARNING ", 30), ("critical", 50), ("NOTSET", 0)],
)
def test_level_accepts_ints_and_level_names(given: int | str, expected: int) -> None:
    """A level is an int or a stdlib level name in any case."""
    assert parse_level(given) == expected


@pytest.mark.parametrize("given", ["verbose", "", -1, True, 1.5, None])
def test_level_rejects_anything_else_naming_the_allowed_values(given: object) -> None:
    """An unknown level name, a negative number or another type is a ValueError listing the names."""
    with pytest.raises(ValueError, match="DEBUG"):
        parse_level(given)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "exported"),
    [
        ("app", True),
        ("otel_redis_exporter", False),
        ("otel_redis_exporter.writer", False),
        ("opentelemetry", False),
        ("opentelemetry.sdk._shared_internal", False),
        ("opentelemetry_app", True),
        ("otel_redis_exporter_fork", True),
    ],
)
def test_filter_drops_the_exporter_and_sdk_loggers_and_their_children(name: str, exported: bool) -> None:
    """Records of otel_redis_exporter and opentelemetry (and children) are dropped; look-alikes are not."""
    record = logging.LogRecord(name, logging.WARNING, __file__, 1, "message", None, None)
    assert ExcludeLoggersFilter().filter(record) is exported


def test_filter_drops_whatever_is_logged_during_an_export() -> None:
    """Any logger's record logged inside an export's context (redis-py's DEBUG lines) is dropped."""
    record = logging.LogRecord("redis.connection", logging.DEBUG, __file__, 1, "connected", None, None)
    with instrumentation_suppressed():
        assert ExcludeLoggersFilter().filter(record) is False
    assert ExcludeLoggersFilter().filter(record) is True


def test_handler_falls_back_to_the_sdk_handler_without_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without opentelemetry-instrumentation-logging the SDK's handler is used, its deprecation silenced."""
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler  # noqa: PLC0415

    monkeypatch.setitem(sys.modules, HANDLER_MODULE, None)
    provider = LoggerProvider(shutdown_on_exit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        handler = make_handler(provider, logging.INFO)
    assert type(handler) is LoggingHandler
    assert handler.level == logging.INFO


def test_bad_arguments_raise_before_anything_is_attached() -> None:
    """A wrong URL scheme is a ValueError, an unknown exporter option a TypeError; no handler is left."""
    before = list(logging.getLogger().handlers)
    with pytest.raises(ValueError, match="redis://"):
        configure_logging(url="http://127.0.0.1:1/0")
    with pytest.raises(TypeError, match="colour"):
        configure_logging(url="redis://127.0.0.1:1/0", colour="blue")
    with pytest.raises(ValueError, match="level"):
        configure_logging(url="redis://127.0.0.1:1/0", level="loud")
    assert logging.getLogger().handlers == before


# --------------------------------------------------------------------------
# real servers
# --------------------------------------------------------------------------


def test_records_in_spans_land_with_trace_ids_exceptions_and_typed_extras(
    redis_url: str, redis_client: redis.Redis, mode: str, handler_kind: str
) -> None:
    """Inside a span: its trace/span ids; logger.exception: exception.*; extra: attributes, types kept."""
    provider = configure_logging(
        url=redis_url, stream="app:logs", service_name="checkout", level="INFO", mode=mode
    )
    tracer = TracerProvider().get_tracer("test")
    log = logging.getLogger("app.orders")
    extra = {"order.id": 42, "order.total": 9.5, "order.paid": True, "order.tags": ["a", "b"], "who": "ann"}
    with tracer.start_as_current_span("place order") as span:
        log.info("order %d placed", 42, extra=extra)
        try:
            raise KeyError("sku-7")
        except KeyError:
            log.exception("order %d failed", 42)
    log.warning("outside any span")
    log.debug("below the level")
    assert provider.force_flush(10_000)

    decoded = [decode_fields(fields) for fields in entries(redis_client, "app:logs")]
    assert [e.body for e in decoded] == ["order 42 placed", "order 42 failed", "outside any span"]
    context = span.get_span_context()
    for entry in decoded[:2]:
        assert entry.trace_id == format(context.trace_id, "032x")
        assert entry.span_id == format(context.span_id, "016x")
        assert entry.service_name == "checkout"
        assert entry.scope_name == "app.orders"
    assert decoded[2].trace_id is None
    assert decoded[2].span_id is None
    placed, failed, _ = decoded
    for key, value in extra.items():
        assert placed.attributes[key] == value
        assert type(placed.attributes[key]) is type(value)
    assert placed.severity_text == "INFO"
    assert failed.severity_text == "ERROR"
    assert failed.attributes["exception.type"] == "KeyError"
    assert failed.attributes["exception.message"] == "sku-7"
    assert 'raise KeyError("sku-7")' in failed.attributes["exception.stacktrace"]
    assert failed.attributes["exception.stacktrace"].startswith("Traceback (most recent call last)")
    assert failed.attributes["code.function.name"] == (
        "test_records_in_spans_land_with_trace_ids_exceptions_and_typed_extras"
    )


def test_second_call_with_the_same_arguments_changes_nothing(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """Same arguments: the same provider comes back and one handler stays attached, so no duplicates."""
    first = configure_logging(url=redis_url, service_name="twice")
    second = configure_logging(url=redis_url, service_name="twice")
    assert second is first
    assert len(ours()) == 1
    logging.getLogger("app").warning("once")
    assert first.force_flush(10_000)
    assert [fields["body"] for fields in entries(redis_client)] == ["once"]


def test_removed_handler_is_attached_again_by_the_same_call(redis_url: str) -> None:
    """If something removed the handler, the same call puts it back (once)."""
    configure_logging(url=redis_url)
    (handler,) = ours()
    logging.getLogger().removeHandler(handler)
    configure_logging(url=redis_url)
    assert ours() == [handler]


def test_call_with_other_arguments_replaces_and_flushes_the_previous_setup(
    redis_url: str, redis_client: redis.Redis, mode: str
) -> None:
    """Other arguments: the old handler goes, the old provider flushes and stops, a new one takes over."""
    old = configure_logging(url=redis_url, stream="old:logs", mode=mode)
    (old_handler,) = ours()
    logging.getLogger("app").warning("before")  # still queued in the old provider
    new = configure_logging(url=redis_url, stream="new:logs", mode=mode)
    assert new is not old
    assert ours() != [old_handler]
    assert len(ours()) == 1
    assert [fields["body"] for fields in entries(redis_client, "old:logs")] == ["before"]
    logging.getLogger("app").warning("after")
    assert new.force_flush(10_000)
    assert [fields["body"] for fields in entries(redis_client, "new:logs")] == ["after"]
    assert [fields["body"] for fields in entries(redis_client, "old:logs")] == ["before"]


def test_provider_shut_down_by_the_application_is_replaced(redis_url: str, redis_client: redis.Redis) -> None:
    """After provider.shutdown(), the same call builds a working provider, not the dead one again."""
    first = configure_logging(url=redis_url)
    first.shutdown()
    second = configure_logging(url=redis_url)
    assert second is not first
    assert len(ours()) == 1
    logging.getLogger("app").warning("alive")
    assert second.force_flush(10_000)
    assert [fields["body"] for fields in entries(redis_client)] == ["alive"]


def test_exporter_and_sdk_records_are_not_exported(redis_url: str, redis_client: redis.Redis) -> None:
    """Records of otel_redis_exporter and opentelemetry loggers stay out of the stream; the app's go in."""
    provider = configure_logging(url=redis_url)
    logging.getLogger("otel_redis_exporter").warning("exporter report")
    logging.getLogger("opentelemetry.sdk._logs").warning("sdk report")
    logging.getLogger("app").warning("app record")
    assert provider.force_flush(10_000)
    assert [fields["body"] for fields in entries(redis_client)] == ["app record"]


def test_level_lowers_the_root_level_and_filters_below_it(redis_url: str, redis_client: redis.Redis) -> None:
    """level=DEBUG lowers root from WARNING so DEBUG records are exported; a lower root level stays."""
    redis_client.ping()  # connected before: redis-py's DEBUG lines about it come before the handler
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    provider = configure_logging(url=redis_url, level=logging.DEBUG)
    assert root.level == logging.DEBUG
    logging.getLogger("app").debug("fine detail")
    assert provider.force_flush(10_000)
    assert [fields["body"] for fields in entries(redis_client)] == ["fine detail"]

    provider = configure_logging(url=redis_url, level="ERROR")
    assert root.level == logging.DEBUG  # never raised
    logging.getLogger("app").warning("not exported")
    logging.getLogger("app").error("exported")
    assert provider.force_flush(10_000)
    assert [fields["body"] for fields in entries(redis_client)] == ["fine detail", "exported"]


def test_resource_takes_service_name_argument_over_the_environment(
    redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """service_name beats OTEL_SERVICE_NAME; OTEL_RESOURCE_ATTRIBUTES and resource_attributes merge in."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging,team=core")
    provider = configure_logging(
        url=redis_url, service_name="billing", resource_attributes={"team": "payments", "shard": 3}
    )
    logging.getLogger("app").warning("hello")
    assert provider.force_flush(10_000)
    (entry,) = [decode_fields(fields) for fields in entries(redis_client)]
    assert entry.service_name == "billing"
    assert entry.resource["deployment.environment"] == "staging"
    assert entry.resource["team"] == "payments"
    assert entry.resource["shard"] == 3


def test_named_logger_gets_the_handler_instead_of_root(redis_url: str, redis_client: redis.Redis) -> None:
    """logger="app" attaches to that logger only: its records are exported, other loggers' are not."""
    provider = configure_logging(url=redis_url, logger="app")
    assert ours() == []
    assert len(ours(logging.getLogger("app"))) == 1
    logging.getLogger("app.sub").warning("in app")
    logging.getLogger("other").warning("elsewhere")
    assert provider.force_flush(10_000)
    assert [fields["body"] for fields in entries(redis_client)] == ["in app"]


def test_debug_lines_of_the_exporters_own_connections_are_not_exported(
    redis_url: str, redis_client: redis.Redis, mode: str
) -> None:
    """At DEBUG, what redis-py logs while the exporter connects and writes stays out of the stream."""
    redis_client.ping()
    provider = configure_logging(url=redis_url, level="DEBUG", mode=mode)
    for n in range(3):
        logging.getLogger("app").debug("detail %d", n)
        assert provider.force_flush(10_000)
    assert [fields["body"] for fields in entries(redis_client)] == ["detail 0", "detail 1", "detail 2"]


def test_warnings_reach_stderr_when_only_opentelemetry_would_see_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Root has only OpenTelemetry's handler (as under opentelemetry-instrument): the warning is on stderr."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [make_handler(LoggerProvider(), logging.NOTSET)]
    try:
        logging.getLogger("otel_redis_exporter").warning("Redis is down for %s", "this test")
        unseen = capsys.readouterr().err
        root.handlers.append(logging.StreamHandler())  # a handler that shows it: no second copy
        logging.getLogger("otel_redis_exporter").warning("Redis is down again for %s", "this test")
        seen_elsewhere = capsys.readouterr().err
    finally:
        root.handlers = saved
    assert "otel_redis_exporter: WARNING: Redis is down for this test" in unseen
    assert seen_elsewhere.count("Redis is down again for this test") == 1
