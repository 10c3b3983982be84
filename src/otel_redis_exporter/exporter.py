"""``RedisLogExporter``: the glue between the SDK's log pipeline and a Redis Stream."""

from __future__ import annotations

import contextlib
import os
import random
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from ._client import make_async_pool, make_pool
from ._config import CONFIG_SETTINGS, ERROR_TYPE_INVALID_CONFIG, ExporterConfig, resolve
from ._context import EXPORTING_KEY, instrumentation_suppressed, is_own, logged_while_exporting
from ._encode.select import batch_encoder
from ._encode.uid import uid_prefix
from ._keys import StreamKeyTemplate
from ._log import logger
from ._metrics import ExporterMetrics, ExporterStats
from ._redact import redact_url
from ._types import Address, Clock
from ._write import make_delivery, make_sender

__all__ = ["EXPORTING_KEY", "RedisLogExporter", "logged_while_exporting"]

DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000
DEFAULT_FORCE_FLUSH_TIMEOUT_MS = 30_000

# Exporters alive in this process: after fork() the child's copies drop the parent's sender
# (thread or loop, connections and queue) and start their own on the next export.
_LIVE: weakref.WeakSet[RedisLogExporter] = weakref.WeakSet()


def _reinit_after_fork() -> None:
    for exporter in list(_LIVE):
        exporter._sender.after_fork()


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

    Use it behind the SDK's batch processor:

        BatchLogRecordProcessor(RedisLogExporter(url="redis://localhost:6379/0", stream="otel:logs"))

    Every argument falls back to an ``OTEL_EXPORTER_REDIS_*`` environment variable, then to a
    default (see the Configuration page of the documentation):

    * ``url``: ``redis://``, ``rediss://`` or ``unix://`` URL, user and password included.
    * ``stream``: the stream key, or a template over resource attributes such as
      ``logs:{service.name}``.
    * ``maxlen``: approximate cap on entries per stream (``XADD MAXLEN ~``); 0 disables it.
    * ``retention``: seconds of entries to keep (``XADD MINID ~``); exclusive with ``maxlen``.
    * ``timeout``: seconds one round trip waits for Redis to answer before its connection is
      dropped and the batch sent again (default 10).
    * ``max_value_length``: longest string or bytes value kept in a body or attribute.
    * ``mode``: ``"sync"`` (a sender thread on redis-py) or ``"async"`` (a sender task on
      redis.asyncio, on an event-loop thread the exporter owns; the keys of a round trip are
      written concurrently).
    * ``buffer_max_records``, ``buffer_max_bytes``: bounds of the sender's queue, the records
      waiting to be written (0: nothing is kept for another attempt).
    * ``meter_provider``: where the exporter's own metrics go (default: the global provider).
    * ``encoding``: ``"flat"`` (one field per record property, the default), ``"otlp_json"`` or
      ``"otlp_proto"`` (the record's OTLP ``ResourceLogs`` in one field; needs the ``otlp`` extra,
      checked here: ``OtlpNotInstalledError`` when it is missing).
    * ``trace_index_ttl``: seconds to keep a per-trace index of entry ids (one more round trip per
      batch, see Reading back in the documentation); 0 or unset: no index.
    * ``cluster``, ``shards``: write to a Redis Cluster (``url`` names any node), each stream
      spread over ``shards`` keys in different slots (see Operations, Redis Cluster, in the documentation).
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

    ``export`` encodes the batch on the caller's thread and hands it to the exporter's sender,
    which owns the connections, the queue and the retries: ``export`` never waits on a slow or
    absent Redis for long and never raises. The sender logs why it could not write on the
    ``otel_redis_exporter`` logger (rate limited). The constructor does no I/O: the sender starts
    with the first export.
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
        sentinels: str | Sequence[str | Address] | None = None,
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
        _clock: Clock = time.monotonic,
        _pool_factory: Callable[[ExporterConfig], Any] | None = None,
    ) -> None:
        given = locals()  # the keywords by name; the settings table says which are settings
        self._config = resolve({name: given[name] for name in CONFIG_SETTINGS})
        if self._config.disabled is not None:
            logger.error(
                "The Redis log exporter is disabled, nothing will be written: %s", self._config.disabled
            )
        self._template = StreamKeyTemplate.parse(self._config.stream)
        self._encode = batch_encoder(self._config, self._template)
        self._clock = _clock
        self._closed = False
        address, port = _server_of(self._config.url)
        self._metrics = ExporterMetrics(
            meter_provider,
            server_address=address,
            server_port=port,
            buffered=lambda: self._delivery.queued,
        )
        self._delivery = make_delivery(self._config, self._metrics, _clock)
        pools = _pool_factory or (make_async_pool if self._config.mode == "async" else make_pool)
        self._sender = make_sender(self._config, self._delivery, self._metrics, pools, _clock)
        _LIVE.add(self)

    @property
    def config(self) -> ExporterConfig:
        """The resolved configuration (its repr hides the password)."""
        return self._config

    @property
    def closed(self) -> bool:
        """True once ``shutdown()`` was called."""
        return self._closed

    def __repr__(self) -> str:
        disabled = "" if self._config.disabled is None else ", disabled=True"
        url = redact_url(self._config.url)
        return f"RedisLogExporter(url={url!r}, stream={self._config.stream!r}{disabled})"

    def stats(self) -> ExporterStats:
        """Counters since construction: written, dropped by reason, queued now, failed exports."""
        return self._metrics.snapshot()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Hand ``batch`` to the sender, one entry per record; never raises, never waits long.

        Returns SUCCESS once every record of the batch is in Redis. FAILURE when the exporter is
        shut down, when a record was refused or dropped, or when Redis stops answering for the
        hand-off (``Delivery.handoff``: 0.25 s without a reply, plus WAIT's timeout with
        ``wait_replicas``; no wait at all while Redis is failing): the records then stay queued,
        the sender keeps sending them, and each ends written or counted as dropped in ``stats()``.
        """
        if self._closed:
            return LogRecordExportResult.FAILURE
        if self._config.disabled is not None:  # logged once, at construction
            self._metrics.dropped(len(batch), ERROR_TYPE_INVALID_CONFIG)
            self._metrics.failed_export()
            return LogRecordExportResult.FAILURE
        try:
            with instrumentation_suppressed():  # starting the sender logs too (asyncio, at DEBUG)
                records = [record for record in batch if not is_own(record)]
                ticket = self._sender.submit(self._encode(records, time.time_ns(), _new_uid_prefix()))
            written = self._delivery.handoff(ticket)
        except Exception:
            logger.exception("Unexpected error while exporting %d log records to Redis", len(batch))
            written = False
        if written:
            return LogRecordExportResult.SUCCESS
        self._metrics.failed_export()
        return LogRecordExportResult.FAILURE

    def force_flush(self, timeout_millis: int = DEFAULT_FORCE_FLUSH_TIMEOUT_MS) -> bool:
        """True once every queued record is written or given up (waits up to ``timeout_millis``)."""
        return self._delivery.wait_idle(max(timeout_millis, 0) / 1000)

    def shutdown(self, timeout_millis: int = DEFAULT_SHUTDOWN_TIMEOUT_MS) -> None:
        """Write what is queued, then close the connections (and the loop thread); idempotent.

        The queue drains while Redis takes it, for up to ``timeout_millis``. Once Redis has taken
        nothing for ``SHUTDOWN_PATIENCE_S`` (0.75 s: refused, unreachable or frozen), the rest is
        given up, counted in ``stats()`` and logged. Exports after this return FAILURE without I/O.
        """
        if self._closed:
            return
        self._closed = True
        try:
            if not self._sender.close(max(timeout_millis, 0) / 1000):
                logger.warning("The exporter's sender did not stop within %d ms", timeout_millis)
        except Exception as error:
            logger.debug("Error while closing the Redis connections: %s", error)
