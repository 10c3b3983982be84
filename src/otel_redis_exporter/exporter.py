"""``RedisLogExporter``: the glue between the SDK's log pipeline and a Redis Stream."""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.context import (
    _SUPPRESS_INSTRUMENTATION_KEY,
    Context,
    attach,
    create_key,
    detach,
    get_value,
    set_value,
)
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from ._buffer import OutageBuffer
from ._client import make_async_pool, make_pool
from ._config import ERROR_TYPE_INVALID_CONFIG, ExporterConfig, resolve_config
from ._delivery import Delivery, Report
from ._encoding import uid_prefix
from ._formats import Entries, batch_encoder
from ._keys import StreamKeyTemplate
from ._log import logger
from ._loop import LoopThread, keep_after_fork
from ._metrics import ExporterMetrics, ExporterStats
from ._redact import redact_url
from ._writer import AsyncWriter, SyncWriter, WriteResult, async_writer, sync_writer

DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000

# Records logged by this package itself are never exported: when Redis fails, the failure
# report must not become another record to write to the failing Redis.
_OWN_LOGGER = logger.name


# Set in the context while an export runs: whatever is logged meanwhile, by this package or by
# redis-py on the export's connections (its DEBUG lines), describes the export itself.
EXPORTING_KEY = create_key("otel_redis_exporter.exporting")


def logged_while_exporting(context: Context | None = None) -> bool:
    """True when ``context`` (default: the current one) belongs to an export of this package."""
    return bool(get_value(EXPORTING_KEY, context))


def _is_own(record: ReadableLogRecord) -> bool:
    scope = record.instrumentation_scope
    name = scope.name if scope is not None else ""
    if name == _OWN_LOGGER or name.startswith(_OWN_LOGGER + "."):
        return True
    context = getattr(record.log_record, "context", None)
    return context is not None and logged_while_exporting(context)


@contextlib.contextmanager
def _instrumentation_suppressed() -> Iterator[None]:
    """Redis instrumentation must not trace or log the exporter's own writes."""
    token = attach(set_value(EXPORTING_KEY, True, set_value(_SUPPRESS_INSTRUMENTATION_KEY, True)))
    try:
        yield
    finally:
        detach(token)


# Exporters alive in this process: after fork() the child's copies drop the parent's
# connections and loop thread and build their own on the next export.
_LIVE: weakref.WeakSet[RedisLogExporter] = weakref.WeakSet()


def _reinit_after_fork() -> None:
    for exporter in list(_LIVE):
        exporter._after_fork()


os.register_at_fork(after_in_child=_reinit_after_fork)


def _new_uid_prefix() -> str:
    # random's global generator is reseeded in a forked child, so children never share ids.
    return uid_prefix(time.time_ns() // 1_000_000, random.getrandbits(80))


def _server_of(url: str) -> tuple[str | None, int | None]:
    with contextlib.suppress(ValueError):
        parts = urlsplit(url)
        return parts.hostname, parts.port
    return None, None


class RedisLogExporter(LogRecordExporter):
    """Writes each log record as one entry of a Redis Stream (``XADD``).

    Use it behind the SDK's batch processor::

        BatchLogRecordProcessor(RedisLogExporter(url="redis://localhost:6379/0", stream="otel:logs"))

    Every argument falls back to an ``OTEL_EXPORTER_REDIS_*`` environment variable, then to a
    default (see the README's configuration table):

    * ``url``: ``redis://``, ``rediss://`` or ``unix://`` URL, user and password included.
    * ``stream``: the stream key, or a template over resource attributes such as
      ``logs:{service.name}``.
    * ``maxlen``: approximate cap on entries per stream (``XADD MAXLEN ~``); 0 disables it.
    * ``retention``: seconds of entries to keep (``XADD MINID ~``); exclusive with ``maxlen``.
    * ``timeout``: seconds one export may take, connect and retries included (default 10).
    * ``max_value_length``: longest string or bytes value kept in a body or attribute.
    * ``mode``: ``"sync"`` (redis-py on the calling thread) or ``"async"`` (redis.asyncio on an
      event-loop thread the exporter owns; the keys of a batch are written concurrently).
    * ``buffer_max_records``, ``buffer_max_bytes``: bounds of the outage buffer that keeps records
      Redis could not take yet (0 disables it).
    * ``meter_provider``: where the exporter's own metrics go (default: the global provider).
    * ``encoding``: ``"flat"`` (one field per record property, the default), ``"otlp_json"`` or
      ``"otlp_proto"`` (the record's OTLP ``ResourceLogs`` in one field; needs the ``otlp`` extra,
      checked here: ``OtlpNotInstalledError`` when it is missing).
    * ``trace_index_ttl``: seconds to keep a per-trace index of entry ids (one more round trip per
      batch, see the README); 0 or unset: no index.
    * ``cluster``, ``shards``: write to a Redis Cluster (``url`` names any node), each stream
      spread over ``shards`` keys in different slots (see the README's Cluster section).
    * ``sentinels``, ``sentinel_master``, ``sentinel_username``, ``sentinel_password``: find the
      master through Sentinel (``url`` then only gives the user, password, db and scheme).
    * ``wait_replicas``: report a batch written only once that many replicas have it (``WAIT``).
    * ``certificate``, ``client_certificate``, ``client_key``: PEM files for ``rediss://``.
    * ``username``, ``password``: the ACL user and password, kept out of the URL (they win over
      the URL's).
    * ``max_entry_bytes``: approximate cap on one entry's size; larger collections are cut.

    The URL is checked completely here (``ValueError`` without its password). An invalid
    ``OTEL_EXPORTER_REDIS_*URL`` or ``..._SENTINELS`` disables the exporter instead of writing
    elsewhere: one error is logged and every export returns ``FAILURE`` (``invalid_config``).

    The constructor does no I/O: the connection opens on the first export. ``export`` never
    raises; it returns ``FAILURE`` and logs the reason on the ``otel_redis_exporter`` logger.
    """

    def __init__(
        self,
        url: str | None = None,
        stream: str | None = None,
        *,
        maxlen: int | None = None,
        retention: float | None = None,
        timeout: float | None = None,
        max_value_length: int | None = None,
        mode: str | None = None,
        buffer_max_records: int | None = None,
        buffer_max_bytes: int | None = None,
        meter_provider: MeterProvider | None = None,
        encoding: str | None = None,
        trace_index_ttl: float | None = None,
        cluster: bool | None = None,
        shards: int | None = None,
        sentinels: str | Sequence[str | tuple[str, int]] | None = None,
        sentinel_master: str | None = None,
        sentinel_username: str | None = None,
        sentinel_password: str | None = None,
        wait_replicas: int | None = None,
        certificate: str | None = None,
        client_key: str | None = None,
        client_certificate: str | None = None,
        username: str | None = None,
        password: str | None = None,
        max_entry_bytes: int | None = None,
        _clock: Callable[[], float] = time.monotonic,
        _pool_factory: Callable[[ExporterConfig], Any] | None = None,
    ) -> None:
        self._config = resolve_config(
            url=url,
            stream=stream,
            maxlen=maxlen,
            retention=retention,
            timeout=timeout,
            max_value_length=max_value_length,
            mode=mode,
            buffer_max_records=buffer_max_records,
            buffer_max_bytes=buffer_max_bytes,
            encoding=encoding,
            trace_index_ttl=trace_index_ttl,
            cluster=cluster,
            shards=shards,
            sentinels=sentinels,
            sentinel_master=sentinel_master,
            sentinel_username=sentinel_username,
            sentinel_password=sentinel_password,
            wait_replicas=wait_replicas,
            certificate=certificate,
            client_key=client_key,
            client_certificate=client_certificate,
            username=username,
            password=password,
            max_entry_bytes=max_entry_bytes,
        )
        if self._config.disabled is not None:
            logger.error(
                "The Redis log exporter is disabled, nothing will be written: %s", self._config.disabled
            )
        self._async = self._config.mode == "async"
        self._template = StreamKeyTemplate.parse(self._config.stream)
        self._encode = batch_encoder(self._config, self._template)
        self._clock = _clock
        self._pool_factory = _pool_factory or (make_async_pool if self._async else make_pool)
        self._stop = threading.Event()
        # Held for the whole of one export: exports never overlap, and force_flush/shutdown
        # wait on it for whatever is in flight.
        self._export_lock = threading.Lock()
        self._sync_writer: SyncWriter | None = None
        self._async_writer: AsyncWriter | None = None
        self._loop = LoopThread()
        buffer = OutageBuffer(self._config.buffer_max_records, self._config.buffer_max_bytes)
        address, port = _server_of(self._config.url)
        self._metrics = ExporterMetrics(
            meter_provider,
            server_address=address,
            server_port=port,
            buffered=lambda: (buffer.records, buffer.bytes),
        )
        self._delivery = Delivery(self._write, buffer, self._metrics, _clock)
        _LIVE.add(self)

    @property
    def config(self) -> ExporterConfig:
        """The resolved configuration (its repr hides the password)."""
        return self._config

    def __repr__(self) -> str:
        disabled = "" if self._config.disabled is None else ", disabled=True"
        url = redact_url(self._config.url)
        return f"RedisLogExporter(url={url!r}, stream={self._config.stream!r}{disabled})"

    def stats(self) -> ExporterStats:
        """Counters since construction: written, dropped by reason, buffered now, failed exports."""
        return self._metrics.snapshot()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Write ``batch``, one entry per record, within one deadline; never raises."""
        if self._stop.is_set():
            return LogRecordExportResult.FAILURE
        if self._config.disabled is not None:  # logged once, at construction
            self._metrics.dropped(len(batch), ERROR_TYPE_INVALID_CONFIG)
            return LogRecordExportResult.FAILURE
        started = self._clock()
        try:
            with self._export_lock, _instrumentation_suppressed():
                entries = self._encode(
                    [record for record in batch if not _is_own(record)], time.time_ns(), _new_uid_prefix()
                )
                report = self._delivery.deliver(entries, started + self._config.timeout_s)
        except Exception:
            logger.exception("Unexpected error while exporting %d log records to Redis", len(batch))
            report = Report(ok=False, error_type="internal")
        self._metrics.operation(self._clock() - started, report.error_type)
        return self._result(report)

    def _result(self, report: Report) -> LogRecordExportResult:
        if report.ok:
            return LogRecordExportResult.SUCCESS
        if report.reason is not None:
            logger.warning(
                "Could not write log records to %s: %s (%d buffered for a later attempt, %d dropped)",
                redact_url(self._config.url),
                report.reason,
                report.buffered,
                report.dropped,
            )
        return LogRecordExportResult.FAILURE

    def _write(self, entries: Entries, deadline: float) -> WriteResult:
        if not self._async:
            if self._sync_writer is None:
                self._sync_writer = sync_writer(
                    self._config, self._pool_factory(self._config), clock=self._clock, stop=self._stop
                )
            return self._sync_writer.write(entries, deadline)
        try:
            # The loop enforces the deadline itself; the grace covers handing the result back.
            return self._loop.run(self._write_async(entries, deadline), deadline - self._clock() + 1.0)
        except TimeoutError as error:
            return WriteResult(failed=sum(map(len, entries.values())), reason=str(error))

    async def _write_async(self, entries: Entries, deadline: float) -> WriteResult:
        with _instrumentation_suppressed():
            if self._async_writer is None:
                self._async_writer = async_writer(
                    self._config, self._pool_factory(self._config), clock=self._clock, stop=self._stop
                )
            return await self._async_writer.write(entries, deadline)

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's connections, loop thread and lock."""
        self._export_lock = threading.Lock()
        keep_after_fork(self._async_writer)
        self._sync_writer = self._async_writer = None
        self._loop.abandon()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """True once no export is in flight (waits up to ``timeout_millis``)."""
        if not self._export_lock.acquire(timeout=max(timeout_millis, 0) / 1000):
            return False
        self._export_lock.release()
        return True

    def shutdown(self, timeout_millis: int = DEFAULT_SHUTDOWN_TIMEOUT_MS) -> None:
        """Stop exporting and close connections (and the loop thread); idempotent.

        A running export's backoff wait is cut short; the export in flight gets up to
        ``timeout_millis`` to finish before the connections are closed under it.
        """
        if self._stop.is_set():
            return
        self._stop.set()
        deadline = time.monotonic() + max(timeout_millis, 0) / 1000
        if self._async_writer is not None:
            self._loop.call_soon(self._async_writer.wake)
        finished = self._export_lock.acquire(timeout=max(deadline - time.monotonic(), 0))
        try:
            if finished:
                given_up = self._delivery.give_up(self._clock() + max(deadline - time.monotonic(), 0))
                if given_up:
                    logger.warning(
                        "Shutdown gave up %d buffered log records that Redis did not take", given_up
                    )
            if self._sync_writer is not None:
                self._sync_writer.close()
            closer = self._async_writer.close if self._async_writer is not None else None
            if not self._loop.stop(closer, max(deadline - time.monotonic(), 0)):
                logger.warning("The exporter's event-loop thread did not stop within %d ms", timeout_millis)
        except Exception as error:
            logger.debug("Error while closing the Redis connections: %s", error)
        finally:
            if finished:
                self._export_lock.release()
