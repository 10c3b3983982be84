"""``configure_logging``: stdlib logging -> LoggerProvider -> batch processor -> Redis, in one call.

For applications that do not run under ``opentelemetry-instrument``. The handler comes from
``opentelemetry-instrumentation-logging`` when it is installed (the ``[logging]`` extra), else
from the SDK, whose own ``LoggingHandler`` is deprecated since opentelemetry-sdk 1.40.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.util.types import AttributeValue

from ._config import ExporterOptions
from ._context import logged_while_exporting
from ._log import logger as _own_logger
from .exporter import RedisLogExporter

if TYPE_CHECKING:
    from typing_extensions import Unpack

DEFAULT_LEVEL = logging.INFO
# Loggers whose records the installed handler never exports: the exporter's own reports and
# the SDK's (a full queue, a failed export). Exporting them would feed failures back into the
# pipeline that failed.
EXCLUDED_LOGGERS = (_own_logger.name, "opentelemetry")

_LEVEL_NAMES = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")


class ExcludeLoggersFilter(logging.Filter):
    """Drops records of the named loggers and their children, and records logged during an export.

    The second kind are the lines other libraries (redis-py at DEBUG) log on the exporter's own
    connections; they are recognised by the context the export runs in, whatever the logger.
    """

    def __init__(self, names: tuple[str, ...] = EXCLUDED_LOGGERS) -> None:
        super().__init__()
        self.names = names
        self._prefixes = tuple(f"{name}." for name in names)

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if name in self.names or name.startswith(self._prefixes):
            return False
        return not logged_while_exporting()


def parse_level(level: int | str) -> int:
    """A logging level from an int or a level name (any case); ``ValueError`` otherwise."""
    if isinstance(level, int) and not isinstance(level, bool) and level >= 0:
        return level
    name = level.strip().upper() if isinstance(level, str) else None
    if name not in _LEVEL_NAMES:
        raise ValueError(f"level must be an int >= 0 or one of {', '.join(_LEVEL_NAMES)}; got {level!r}")
    return int(logging.getLevelName(name))


def make_handler(provider: LoggerProvider, level: int) -> logging.Handler:
    """The OpenTelemetry logging handler for ``provider``: the maintained one when installed."""
    try:
        # opentelemetry-instrumentation-logging >= 0.61b0; the module itself is public.
        from opentelemetry.instrumentation.logging.handler import (  # noqa: PLC0415
            LoggingHandler as InstrumentationHandler,
        )
    except ImportError:
        pass
    else:
        # Code attributes on, so entries look the same whichever handler wrote them.
        handler: logging.Handler = InstrumentationHandler(
            level=level, logger_provider=provider, log_code_attributes=True
        )
        return handler
    from opentelemetry.sdk._logs import LoggingHandler  # noqa: PLC0415

    # Chosen here, not by the caller: the deprecation is ours to act on (the [logging] extra).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return LoggingHandler(level=level, logger_provider=provider)


@dataclass(frozen=True)
class _Installed:
    settings: tuple[Any, ...]
    provider: LoggerProvider
    exporter: RedisLogExporter
    handler: logging.Handler
    target: logging.Logger


class _Registry:
    """What the last ``configure_logging`` call installed; one per process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.installed: _Installed | None = None


_registry = _Registry()


def configure_logging(
    url: str | None = None,
    stream: str | None = None,
    *,
    service_name: str | None = None,
    level: int | str = DEFAULT_LEVEL,
    resource_attributes: Mapping[str, AttributeValue] | None = None,
    logger: logging.Logger | str | None = None,
    **exporter_options: Unpack[ExporterOptions],
) -> LoggerProvider:
    """Send stdlib ``logging`` records to a Redis Stream; returns the ``LoggerProvider``.

    Builds a ``RedisLogExporter`` (``url``, ``stream`` and ``exporter_options`` such as
    ``maxlen``, ``retention``, ``timeout``, ``max_value_length`` and ``mode`` are its arguments,
    each falling back to its ``OTEL_EXPORTER_REDIS_*`` variable), a ``BatchLogRecordProcessor``
    (tuned by the ``OTEL_BLRP_*`` variables) and a ``LoggerProvider``, and attaches an
    OpenTelemetry logging handler to ``logger`` (default: the root logger).

    * ``service_name``: the resource's ``service.name``; when ``None``, ``OTEL_SERVICE_NAME``,
      then ``OTEL_RESOURCE_ATTRIBUTES``, then ``unknown_service:<executable>``.
    * ``resource_attributes``: more resource attributes, merged over ``OTEL_RESOURCE_ATTRIBUTES``.
    * ``level``: the lowest level exported (default ``INFO``), an int or a name such as
      ``"DEBUG"``. The target logger's level is lowered to it when it is higher (the root logger
      starts at ``WARNING``), as ``logging.basicConfig(level=...)`` does; it is never raised.

    Records of the ``otel_redis_exporter`` and ``opentelemetry`` loggers are never exported by
    this handler. A record logged inside a span carries the span's ``trace_id`` and
    ``span_id``; ``logger.exception`` adds ``exception.type``, ``exception.message`` and
    ``exception.stacktrace``; ``extra={...}`` keys become attributes with their types kept.

    Safe to call again: the same arguments return the same provider and change nothing (the
    handler is re-attached if it was removed); other arguments, or a provider shut down since,
    remove the previous handler, shut its provider down (flushing what is queued, each export
    bounded by the exporter's ``timeout``) and return a new provider.
    The global ``LoggerProvider`` of the Logs API is left alone; call
    ``opentelemetry._logs.set_logger_provider(provider)`` to use this one there too.

    Raises ``ValueError`` for an invalid argument (before anything is attached) and
    ``TypeError`` for an unknown exporter option. Configure console logging
    (``logging.basicConfig``, ``dictConfig``) first: ``basicConfig`` does nothing once the
    root logger has a handler, and ``dictConfig`` removes the handlers of the loggers it sets.
    """
    threshold = parse_level(level)
    target = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
    attributes: dict[str, AttributeValue] = dict(resource_attributes or {})
    if service_name is not None:
        attributes["service.name"] = service_name
    settings = (url, stream, threshold, attributes, target.name, sorted(exporter_options.items()))
    with _registry.lock:
        current = _registry.installed
        # A provider the application has shut down since is replaced, never handed out again.
        if current is not None and current.settings == settings and not current.exporter.closed:
            _attach(current.handler, current.target, threshold)
            return current.provider
        # Built first, so a bad argument raises before the previous setup is touched.
        exporter = RedisLogExporter(url, stream, **exporter_options)
        provider = LoggerProvider(resource=Resource.create(attributes))
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        handler = make_handler(provider, threshold)
        handler.addFilter(ExcludeLoggersFilter())
        if current is not None:
            _detach(current)
        _attach(handler, target, threshold)
        _registry.installed = _Installed(settings, provider, exporter, handler, target)
        return provider


def _attach(handler: logging.Handler, target: logging.Logger, threshold: int) -> None:
    if handler not in target.handlers:
        target.addHandler(handler)
    if target.getEffectiveLevel() > threshold:
        target.setLevel(threshold)


def _detach(installed: _Installed) -> None:
    installed.target.removeHandler(installed.handler)
    # Flushes what is queued; each export is bounded by the exporter's own timeout.
    installed.provider.shutdown()


def _unconfigure() -> None:
    """Remove what ``configure_logging`` installed and shut its provider down (tests use it)."""
    with _registry.lock:
        if _registry.installed is not None:
            _detach(_registry.installed)
            _registry.installed = None
