"""The sender: one per exporter, it owns the connections, writes the queue and retries.

``ThreadSender`` (sync mode) is a daemon thread on redis-py; ``LoopSender`` (async mode) is a
task on the exporter's own event-loop thread on redis.asyncio. They are twins over
``SenderBase``, which does everything but I/O, and line up method for method:

* ``submit`` queues one export's entries and wakes the sender (started on first use). While the
  sender is idle and the connection just worked, the round trip is made at once instead, without
  letting go of the interpreter lock while a healthy server answers (``_write_here``): in sync
  mode on export()'s own thread, in async mode in one step of the loop; only what the server does
  not answer at once goes to the sender;
* ``_run`` takes a round trip, makes one attempt, books it, and after a failure waits a backoff
  capped below a second, so the queue drains as soon as the server answers, with no new export;
* ``close`` drains the queue while the server takes it and gives up once it has taken nothing
  for ``SHUTDOWN_PATIENCE_S`` (or at the close deadline), cutting short a round trip that waits
  on a server that does not answer; what it gives up is counted;
* ``after_fork`` forgets the parent's thread, loop, connections and queue in a forked child.

The sender knows nothing of the exporter: the exporter calls down into it, never the reverse.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._config import ExporterConfig
from .._context import instrumentation_suppressed
from .._log import logger
from .._metrics import ExporterMetrics
from .._redact import redact_url
from .._types import Clock, Entries
from .attempt import Heard, WriteResult, backoff, longest_wait_s
from .cluster import AsyncClusterWriter, SyncClusterWriter
from .delivery import HANDOFF_TIMEOUT_S, Delivery, Ticket, Trip
from .loop import LoopThread, keep_after_fork
from .sentinel import AsyncSentinelWriter, SyncSentinelWriter
from .single import AsyncWriter, Started, SyncWriter

THREAD_NAME = "otel-redis-exporter-sender"
# How long close() waits for the sender to finish after cutting its round trip short.
ABORT_GRACE_S = 0.5

PoolFactory = Callable[[ExporterConfig], Any]


def sync_writer(config: ExporterConfig, pool: Any, *, clock: Clock, heard: Heard) -> SyncWriter:
    """The sync writer for ``config``'s deployment, on ``pool`` from ``make_pool``."""
    kind = SyncClusterWriter if config.cluster else SyncSentinelWriter if config.sentinels else SyncWriter
    return kind(config, pool, clock=clock, heard=heard)


def async_writer(config: ExporterConfig, pool: Any, *, clock: Clock, heard: Heard) -> AsyncWriter:
    """The async writer for ``config``'s deployment, on ``pool`` from ``make_async_pool``."""
    kind = AsyncClusterWriter if config.cluster else AsyncSentinelWriter if config.sentinels else AsyncWriter
    return kind(config, pool, clock=clock, heard=heard)


@dataclass(slots=True)
class _Job:
    """A round trip for the sender: one to make, one export()'s thread began and left to finish
    (``started``), or one it made that did not write everything (``result``), to book."""

    trip: Trip
    at: float
    started: Started | None = None
    result: WriteResult | None = None


class SenderBase:
    """Everything the twins share: the queue, timeouts, backoff and what they log."""

    _work: threading.Event | asyncio.Event  # set: there is a job for the sender
    _handed: _Job | None  # a round trip begun by _write_here, for the sender to end

    def __init__(
        self,
        config: ExporterConfig,
        delivery: Delivery,
        metrics: ExporterMetrics,
        pool_factory: PoolFactory,
        clock: Clock,
    ) -> None:
        self._config = config
        self._delivery = delivery
        self._metrics = metrics
        self._pool_factory = pool_factory
        self._clock = clock
        self._backoff = backoff()
        self._outage_started: float | None = None
        self._evicted_seen = 0
        self._setup()

    def _setup(self) -> None:
        """The twin's own state: its thread or loop, its writer, how it is woken."""
        raise NotImplementedError

    def _start(self) -> None:
        raise NotImplementedError

    def submit(self, entries: Entries) -> Ticket:
        """Queue one export's entries and make sure the sender runs."""
        self._start()
        return self._delivery.submit(entries)

    def _writer_now(self) -> SyncWriter | AsyncWriter:
        """The writer, made on first use."""
        raise NotImplementedError

    def _write_here(self) -> bool:
        """Make the next round trip right here (export()'s thread in sync mode, a plain step of
        the loop in async mode) if the sender is idle and the connection just worked; True if it
        did. A round trip the server answers at once is booked here; the rest of one it does not
        answer at once, and any failure, go to the sender as a job (``_handed``)."""
        try:
            writer = self._writer_now()
        except Exception:  # the sender meets the same error, and says so
            return False
        if not writer.can_start:
            return False
        trip = self._delivery.take_now()
        if trip is None:
            return False
        job = _Job(trip, self._clock())
        try:
            job.started = writer.start(trip.entries, self._attempt_timeout(), self._delivery.quiet_s)
            job.result = writer.conclude(job.started)
        except Exception as error:  # a bug, not Redis: the sender keeps the entries
            logger.exception("Unexpected error while writing log records to Redis")
            job.result = WriteResult(count=trip.count, reason=str(error), error_type="internal")
        if job.result is not None and job.result.ok:
            self._booked(trip, job.result, job.at)
        else:
            self._handed = job
            self._start()
            self._work.set()
        return True

    def _attempt_timeout(self) -> float:
        """The exporter's timeout, and never past the close deadline."""
        return max(min(self._config.timeout_s, self._delivery.close_deadline - self._clock()), 0.001)

    def _stop_now(self) -> bool:
        return self._delivery.closing and self._clock() >= self._delivery.give_up_at()

    def _booked(self, trip: Trip, result: WriteResult, started: float) -> float | None:
        """Book an attempt and log what a person should know; the backoff delay after a failure."""
        # Logged before the books settle the tickets: an export that waits sees the reason first.
        retrying = result.count - result.written - len(result.rejected)
        if result.rejected:
            logger.warning("Redis refused %d log records for good: %s", len(result.rejected), result.reason)
        if retrying and not result.written:
            if self._outage_started is None:
                self._outage_started = self._clock()
            logger.warning(
                "Could not write log records to %s: %s; they stay queued and are sent again",
                redact_url(self._config.url),
                result.reason or "no reply",
            )
        elif self._outage_started is not None:
            logger.info(
                "Writing log records to %s again after %.1f s",
                redact_url(self._config.url),
                self._clock() - self._outage_started,
            )
            self._outage_started = None
        settled = self._delivery.settle(trip, result)
        self._metrics.operation(self._clock() - started, None if result.ok else result.error_type)
        if self._delivery.evicted > self._evicted_seen:  # on arrival of new batches, or just now
            self._evicted_seen = self._delivery.evicted
            logger.warning(
                "Dropped log records: the exporter's queue is full (buffer_max_records=%d, "
                "buffer_max_bytes=%d) while Redis does not take them",
                self._delivery.max_records,
                self._delivery.max_bytes,
            )
        if not settled.retrying:
            return None
        delay = float(self._backoff.compute(self._delivery.failures))
        if self._delivery.closing:
            delay = min(delay, max(self._delivery.give_up_at() - self._clock(), 0.0))
        return delay

    def _gave_up(self) -> None:
        counts = self._delivery.give_up()
        if counts:
            logger.warning(
                "Shutdown gave up %d log records that Redis did not take (%s)",
                sum(counts.values()),
                ", ".join(f"{reason}: {count}" for reason, count in sorted(counts.items())),
            )


class ThreadSender(SenderBase):
    """Sync mode: a daemon thread writes through redis-py."""

    def _setup(self) -> None:
        self._writer: SyncWriter | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._work = threading.Event()
        self._delivery.wake = self._work.set
        self._handed = None  # from export()'s thread (_write_here)

    def submit(self, entries: Entries) -> Ticket:
        """Queue one export's entries, and write them from this thread while the sender is idle.

        Unlike the async twin (its connections are its loop's): a round trip that starts and
        ends on export()'s thread hands nothing between threads, and each hand-over waits for the
        interpreter lock (up to the switch interval, 5 ms, while the application logs flat out):
        in flat-out logging that wait, not Redis, is what made the SDK's queue overflow."""
        ticket = self._delivery.submit(entries, wake=False)
        if not self._write_here():
            self._start()
            self._delivery.wake()
        return ticket

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        with instrumentation_suppressed():
            try:
                while (job := self._next_job()) is not None:
                    result = job.result if job.result is not None else self._write(job)
                    delay = self._booked(job.trip, result, job.at)
                    if delay:
                        time.sleep(delay)
            finally:
                self._gave_up()
                self._close_writer()

    def _next_job(self) -> _Job | None:
        """The next round trip; blocks until there is one. None: closing and done."""
        while not self._stop_now():
            job, self._handed = self._handed, None
            if job is not None:
                return job
            trip = self._delivery.take()
            if trip is not None:
                return _Job(trip, self._clock())
            if self._delivery.closing and not self._delivery.queued[0]:
                return None  # (a round trip export()'s thread began counts as queued: it ends soon)
            self._work.wait()
            self._work.clear()
        return None

    def _writer_now(self) -> SyncWriter:
        """The writer, made on first use (on export()'s thread or the sender's)."""
        with self._start_lock:
            if self._writer is None:
                pool = self._pool_factory(self._config)
                self._writer = sync_writer(self._config, pool, clock=self._clock, heard=self._delivery.heard)
            return self._writer

    def _write(self, job: _Job) -> WriteResult:
        try:
            writer = self._writer_now()
            if job.started is not None:
                return writer.finish(job.started)
            timeout = self._attempt_timeout()
            if self._delivery.closing:
                # Unlike the async twin's cancel, abort() cannot cut a connect short: bound every
                # socket wait (they are per call, so replies that keep coming still do) by the
                # moment to give up.
                timeout = max(min(timeout, self._delivery.give_up_at() - self._clock()), 0.001)
            return writer.write(job.trip.entries, timeout)
        except Exception as error:  # a bug, not Redis: keep the entries and keep the sender alive
            logger.exception("Unexpected error while writing log records to Redis")
            return WriteResult(count=job.trip.count, reason=str(error), error_type="internal")

    def _close_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()

    def close(self, timeout_s: float) -> bool:
        """Drain, give up what the server does not take in time, stop; True when stopped in time."""
        deadline = self._clock() + timeout_s
        self._delivery.begin_close(deadline)
        thread = self._thread
        if thread is None:  # every round trip was made at once, or none
            self._gave_up()
            self._close_writer()
            return True
        while thread.is_alive():
            now, give_up_at = self._clock(), self._delivery.give_up_at()
            if now >= give_up_at:
                # The round trip in flight waits on a server that does not answer: end it.
                if self._writer is not None:
                    self._writer.abort()
                thread.join(max(deadline - self._clock(), ABORT_GRACE_S))
                break
            thread.join(give_up_at - now)
        return not thread.is_alive()

    def after_fork(self) -> None:
        """In a forked child: the parent's thread and connections are not ours."""
        keep_after_fork(self._writer)
        self._delivery.forget()
        self._setup()


class LoopSender(SenderBase):
    """Async mode: a task on the exporter's event-loop thread writes through redis.asyncio."""

    _work: asyncio.Event

    def _setup(self) -> None:
        self._writer: AsyncWriter | None = None
        self._loop = LoopThread()
        self._run_future: concurrent.futures.Future[None] | None = None
        self._start_lock = threading.Lock()
        self._work = asyncio.Event()
        self._handed = None  # from a step of the loop (_write_here)
        self._attempt: asyncio.Future[WriteResult] | None = None
        self._aborted: bool | None = None  # set by _abort: whether the round trip had sent anything
        self._delivery.wake = self._wake

    def _start(self) -> None:
        if self._run_future is not None:
            return
        with self._start_lock:
            if self._run_future is None:
                self._run_future = asyncio.run_coroutine_threadsafe(self._run(), self._loop.loop)

    def _wake(self) -> None:
        # From export()'s thread or the loop: asyncio's work is done on its own loop only.
        self._loop.call_soon(self._woken)

    def _woken(self) -> None:
        """On the loop: the twin of ``ThreadSender.submit``'s ``_write_here``. Unlike the sync twin
        the round trip stays on the loop (redis.asyncio's connections are the loop's), but in one
        step of it, with no task to switch to: each step lets go of the interpreter lock while it
        polls, and taking it back waits for a busy application thread, up to 5 ms each time."""
        if self._delivery.closing or not self._write_here():
            self._work.set()

    async def _run(self) -> None:
        with instrumentation_suppressed():
            try:
                while (job := await self._next_job()) is not None:
                    result = job.result if job.result is not None else await self._write(job)
                    delay = self._booked(job.trip, result, job.at)
                    if delay:
                        await asyncio.sleep(delay)
            finally:
                self._gave_up()
                await self._close_writer()

    async def _next_job(self) -> _Job | None:
        """The async twin of ``ThreadSender._next_job``."""
        while not self._stop_now():
            job, self._handed = self._handed, None
            if job is not None:
                return job
            trip = self._delivery.take()
            if trip is not None:
                return _Job(trip, self._clock())
            if self._delivery.closing:
                return None  # (unlike the sync twin's, a round trip _write_here began is handed by now)
            await self._work.wait()
            self._work.clear()
        return None

    def _writer_now(self) -> AsyncWriter:
        """The twin of ``ThreadSender._writer_now``, on the loop only (no lock)."""
        if self._writer is None:
            pool = self._pool_factory(self._config)
            self._writer = async_writer(self._config, pool, clock=self._clock, heard=self._delivery.heard)
        return self._writer

    async def _write(self, job: _Job) -> WriteResult:
        try:
            writer = self._writer_now()
            if job.started is not None:
                attempt = writer.finish(job.started)
            else:
                attempt = writer.write(job.trip.entries, self._attempt_timeout())
            # A task of its own, unlike the sync twin: close() cuts it short by cancelling it.
            self._attempt = asyncio.ensure_future(attempt)
            return await self._attempt
        except asyncio.CancelledError:
            if self._aborted is None:
                raise
            return WriteResult(
                count=job.trip.count,
                unconfirmed=set(range(job.trip.count)) if self._aborted else set(),
                reason="shutdown ended the round trip before the server answered",
                error_type="shutdown",
            )
        except Exception as error:  # a bug, not Redis: keep the entries and keep the sender alive
            logger.exception("Unexpected error while writing log records to Redis")
            return WriteResult(count=job.trip.count, reason=str(error), error_type="internal")
        finally:
            self._attempt = None

    async def _close_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                await writer.close()

    def _abort(self) -> None:
        """On the loop: cancel the round trip in flight (the sync twin shuts its socket)."""
        if self._attempt is not None:
            # Whether anything was sent decides if its entries may have landed.
            self._aborted = self._writer is not None and self._writer.unanswered > 0
            self._attempt.cancel()

    def close(self, timeout_s: float) -> bool:
        """The twin of ``ThreadSender.close``; also stops the loop thread."""
        deadline = self._clock() + timeout_s
        self._delivery.begin_close(deadline)
        future = self._run_future
        if future is None:
            self._gave_up()
            return self._loop.stop(None, 0.0)
        while not future.done():
            now, give_up_at = self._clock(), self._delivery.give_up_at()
            if now >= give_up_at:
                self._loop.call_soon(self._abort)
                concurrent.futures.wait([future], max(deadline - self._clock(), ABORT_GRACE_S))
                break
            concurrent.futures.wait([future], give_up_at - now)
        return self._loop.stop(None, max(deadline - self._clock(), ABORT_GRACE_S))

    def after_fork(self) -> None:
        """The twin of ``ThreadSender.after_fork``: the parent's loop is not ours either."""
        keep_after_fork(self._writer, self._attempt)
        self._loop.abandon()
        self._delivery.forget()
        self._setup()


Sender = ThreadSender | LoopSender


def make_delivery(config: ExporterConfig, metrics: ExporterMetrics, clock: Clock) -> Delivery:
    """The queue for ``config``'s bounds; with ``wait_replicas``, export() also waits out WAIT."""
    quiet_s = HANDOFF_TIMEOUT_S + longest_wait_s(config)
    return Delivery(config.buffer_max_records, config.buffer_max_bytes, metrics, clock, quiet_s)


def make_sender(
    config: ExporterConfig,
    delivery: Delivery,
    metrics: ExporterMetrics,
    pool_factory: PoolFactory,
    clock: Clock,
) -> Sender:
    """The sender for ``config.mode``: nothing starts until the first ``submit``."""
    kind = LoopSender if config.mode == "async" else ThreadSender
    return kind(config, delivery, metrics, pool_factory, clock)
