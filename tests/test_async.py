"""The async path and the lifecycle both modes share: loop thread, threads with loops, fork, leaks."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, get_value
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from redis.utils import HIREDIS_AVAILABLE

from otel_redis_exporter import FAST_PATH, RedisLogExporter
from otel_redis_exporter._client import make_async_pool, make_pool
from otel_redis_exporter._config import MODES, ExporterConfig
from otel_redis_exporter._write import HANDOFF_TIMEOUT_S
from otel_redis_exporter._write.loop import THREAD_NAME

from records import make_record, span_context
from servers import ServerProcess, delivered

SUCCESS = LogRecordExportResult.SUCCESS
FAILURE = LogRecordExportResult.FAILURE


def loop_threads() -> list[threading.Thread]:
    """The exporter's event-loop threads alive now."""
    return [thread for thread in threading.enumerate() if thread.name == THREAD_NAME]


def open_fds() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def test_async_entries_are_the_same_as_sync_entries(redis_url: str, redis_client: redis.Redis) -> None:
    """The same batch yields byte-for-byte the same entry fields on both paths."""
    batch = [make_record(f"r{i}", {"i": i, "f": [1.5, None]}, context=span_context()) for i in range(50)]
    written: dict[str, list[dict[str, str]]] = {}
    for mode in MODES:
        exporter = RedisLogExporter(url=redis_url, stream=f"same:{mode}", mode=mode)
        assert exporter.export(batch) is SUCCESS
        exporter.shutdown()
        written[mode] = [fields for _, fields in redis_client.xrange(f"same:{mode}")]
    assert len(written["sync"]) == 50
    uids = {fields.pop("log.record.uid") for mode in MODES for fields in written[mode]}
    assert len(uids) == 100  # every record gets its own id; everything else is identical
    assert written["sync"] == written["async"]


def test_loop_thread_starts_on_first_export_and_stops_on_shutdown(redis_url: str) -> None:
    """One named daemon thread appears with the first async export and is gone after shutdown."""
    before = len(loop_threads())
    exporter = RedisLogExporter(url=redis_url, mode="async")
    assert len(loop_threads()) == before
    assert exporter.export([make_record()]) is SUCCESS
    [thread] = loop_threads()[before:]
    assert thread.daemon
    exporter.shutdown(timeout_millis=5_000)
    assert not thread.is_alive()


def test_export_from_a_thread_running_an_event_loop(
    redis_url: str, redis_client: redis.Redis, mode: str
) -> None:
    """A SimpleLogRecordProcessor inside `async def` exports without deadlock or loop errors."""
    exporter = RedisLogExporter(url=redis_url, mode=mode)
    provider = LoggerProvider(resource=Resource.create({"service.name": "asgi"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    app_logger = provider.get_logger("asgi.app")

    async def handler() -> None:
        for i in range(3):
            app_logger.emit(body=f"inside the app's loop {i}")
            await asyncio.sleep(0)

    try:
        asyncio.run(asyncio.wait_for(handler(), timeout=30))
    finally:
        provider.shutdown()
    assert [f["body"] for _, f in redis_client.xrange("otel:logs")] == [
        f"inside the app's loop {i}" for i in range(3)
    ]


def test_frozen_server_costs_export_no_more_than_the_handoff(
    start_server: Callable[..., ServerProcess], mode: str
) -> None:
    """A frozen server: export returns FAILURE within the hand-off; the record lands once after the thaw."""
    server = start_server()
    exporter = RedisLogExporter(url=server.url, mode=mode)
    try:
        assert exporter.export([make_record("warm-up")]) is SUCCESS
        server.freeze()
        started = time.monotonic()
        assert exporter.export([make_record("stuck")]) is FAILURE
        assert time.monotonic() - started < HANDOFF_TIMEOUT_S + 0.5
        server.thaw()
        assert exporter.force_flush(10_000)
    finally:
        server.thaw()
        exporter.shutdown(timeout_millis=5_000)
    assert [f["body"] for _, f in server.client().xrange("otel:logs")] == ["warm-up", "stuck"]


def test_keys_of_one_batch_go_out_together(redis_url: str, redis_client: redis.Redis) -> None:
    """Eight templated keys: on the fast path (with hiredis), one round trip on one connection
    carries them all, as in sync mode; otherwise their round trips overlap on separate
    connections. Every entry lands."""
    in_use = 0
    peak = 0
    all_held: asyncio.Event | None = None  # made on the exporter's loop

    def factory(config: ExporterConfig) -> Any:
        pool = make_async_pool(config)
        get_connection, release = pool.get_connection, pool.release

        async def counting_get(*args: Any, **kwargs: Any) -> Any:
            nonlocal in_use, peak, all_held
            connection = await get_connection(*args, **kwargs)
            in_use += 1
            peak = max(peak, in_use)
            all_held = all_held or asyncio.Event()
            if in_use == 8:
                all_held.set()
            # Each round trip keeps its connection until all eight hold one (or 1 s passed): only
            # concurrent round trips all get there, sequential ones would peak at 1.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(all_held.wait(), 1.0)
            return connection

        async def counting_release(connection: Any) -> None:
            nonlocal in_use
            in_use -= 1
            await release(connection)

        pool.get_connection, pool.release = counting_get, counting_release
        return pool

    resources = [Resource({"service.name": f"svc{i}"}) for i in range(8)]
    batch = [make_record(f"r{i}", resource=resources[i % 8]) for i in range(800)]
    exporter = RedisLogExporter(
        url=redis_url, stream="logs:{service.name}", mode="async", _pool_factory=factory
    )
    try:
        assert delivered(exporter, batch)  # (a round trip alone waits out its 1 s above)
    finally:
        exporter.shutdown()
    one_round_trip = FAST_PATH and HIREDIS_AVAILABLE
    assert peak == (1 if one_round_trip else 8), f"at most {peak} of 8 round trips at once"
    assert sorted(redis_client.keys("logs:*")) == [f"logs:svc{i}" for i in range(8)]
    assert all(redis_client.xlen(f"logs:svc{i}") == 100 for i in range(8))


def test_writes_run_with_instrumentation_suppressed(redis_url: str, mode: str) -> None:
    """Redis instrumentation sees the suppress flag while the exporter takes a connection."""
    seen: list[object] = []
    real = make_async_pool if mode == "async" else make_pool

    def factory(config: ExporterConfig) -> Any:
        pool = real(config)
        get_connection = pool.get_connection

        def recording(*args: Any, **kwargs: Any) -> Any:
            seen.append(get_value(_SUPPRESS_INSTRUMENTATION_KEY))
            return get_connection(*args, **kwargs)

        pool.get_connection = recording
        return pool

    exporter = RedisLogExporter(url=redis_url, mode=mode, _pool_factory=factory)
    try:
        assert exporter.export([make_record()]) is SUCCESS
    finally:
        exporter.shutdown()
    assert seen == [True]


@pytest.mark.filterwarnings("error::ResourceWarning")
def test_fifty_lifecycles_leave_no_thread_or_socket_behind(redis_url: str, mode: str) -> None:
    """50 create-export-shutdown cycles end with the threads and descriptors they started with."""
    gc.collect()
    threads, fds = threading.active_count(), open_fds()
    for i in range(50):
        exporter = RedisLogExporter(url=redis_url, mode=mode, stream="cycles")
        assert exporter.export([make_record(f"cycle {i}")]) is SUCCESS
        exporter.shutdown(timeout_millis=5_000)
    del exporter
    gc.collect()
    assert threading.active_count() == threads
    assert open_fds() == fds


def test_forked_child_exports_with_its_own_connections(
    redis_url: str, redis_client: redis.Redis, mode: str
) -> None:
    """After fork() both child and parent keep exporting, each on its own connections and loop."""
    exporter = RedisLogExporter(url=redis_url, mode=mode)
    try:
        assert exporter.export([make_record("parent before fork")]) is SUCCESS
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            code = 0 if exporter.export([make_record("child")]) is SUCCESS else 1
            exporter.shutdown(timeout_millis=5_000)
            os._exit(code)
        assert exporter.export([make_record("parent after fork")]) is SUCCESS
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert exporter.export([make_record("parent after child exit")]) is SUCCESS
    finally:
        exporter.shutdown()
    bodies = sorted(f["body"] for _, f in redis_client.xrange("otel:logs"))
    assert bodies == sorted(["parent before fork", "child", "parent after fork", "parent after child exit"])
