"""End to end, in a process of its own: an application thread logs through stdlib ``logging``, the
SDK's ``LoggingHandler`` and a default ``BatchLogRecordProcessor`` into one exporter.

It prints one JSON object: the application thread's logging rate, the records the batch processor
dropped (logged minus handed to the exporter after the final flush), the process's peak resident
memory, and how long each export call took. The logging loop is bounded by ``--records`` and by
``--max-seconds``.

Exporters: ``null`` (does nothing, the reference), ``sync`` and ``async`` (``RedisLogExporter``),
and ``encode``, which encodes each batch as ``RedisLogExporter`` does and writes nothing: what
reading the records costs the application, the floor of any exporter that sends them.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import TracerProvider

from workload import LOGGER_NAME, MESSAGE, base_extra, resource_for

# Records logged inside one span (one "request").
RECORDS_PER_SPAN = 8


class NullExporter(LogRecordExporter):
    """Accepts every batch and does nothing with it."""

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        pass


class EncodeOnly(NullExporter):
    """Encodes each batch into its stream entries, as the exporter does, and drops them."""

    def __init__(self, stream: str) -> None:
        from otel_redis_exporter._config import resolve_config  # noqa: PLC0415
        from otel_redis_exporter._context import is_own  # noqa: PLC0415
        from otel_redis_exporter._encode.select import batch_encoder  # noqa: PLC0415
        from otel_redis_exporter._keys import StreamKeyTemplate  # noqa: PLC0415
        from otel_redis_exporter.exporter import _new_uid_prefix  # noqa: PLC0415

        config = resolve_config(stream=stream)
        self.encode = batch_encoder(config, StreamKeyTemplate.parse(config.stream))
        self.is_own = is_own
        self.uid_prefix = _new_uid_prefix

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        records = [record for record in batch if not self.is_own(record)]
        self.encode(records, time.time_ns(), self.uid_prefix())
        return LogRecordExportResult.SUCCESS


class Measured(LogRecordExporter):
    """Counts the records handed to ``inner`` and times each export call."""

    def __init__(self, inner: LogRecordExporter) -> None:
        self.inner = inner
        self.records = 0
        self.failures = 0
        self.durations: list[float] = []

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        start = time.perf_counter()
        result = self.inner.export(batch)
        self.durations.append(time.perf_counter() - start)
        self.records += len(batch)
        if result is not LogRecordExportResult.SUCCESS:
            self.failures += 1
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self.inner.shutdown()


def peak_rss_kib() -> int:
    """This process's peak resident memory (VmHWM; ru_maxrss would carry the parent's over exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def count_socket_calls() -> dict[str, int]:
    """Wrap the socket calls that release the interpreter lock in counters."""
    import selectors  # noqa: PLC0415
    import socket  # noqa: PLC0415

    counts: dict[str, int] = {}
    targets = [(socket.socket, name) for name in ("send", "sendall", "recv", "recv_into")]
    targets.append((type(selectors.DefaultSelector()), "select"))
    for owner, name in targets:
        original = getattr(owner, name)

        def wrapper(self: object, *args: object, _name: str = name, _original: Any = original) -> object:
            counts[_name] = counts.get(_name, 0) + 1
            return _original(self, *args)

        setattr(owner, name, wrapper)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exporter", choices=("null", "encode", "sync", "async"), required=True)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--stream", default="bench:e2e")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument(
        "--count-calls", action="store_true", help="count socket sends and receives (they release the lock)"
    )
    parser.add_argument("--warm", action="store_true", help="connect before the logging starts")
    args = parser.parse_args()
    calls = count_socket_calls() if args.count_calls else {}

    if args.exporter == "null":
        inner: LogRecordExporter = NullExporter()
    elif args.exporter == "encode":
        inner = EncodeOnly(args.stream)
    else:
        from otel_redis_exporter import RedisLogExporter  # noqa: PLC0415

        inner = RedisLogExporter(url=args.url, stream=args.stream, mode=args.exporter, timeout=10)
    exporter = Measured(inner)
    provider = LoggerProvider(resource=resource_for())
    # The SDK's defaults: queue 2048, batches of 512, 1 s schedule delay.
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=provider)
    log = logging.getLogger(LOGGER_NAME)
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    tracer = TracerProvider().get_tracer("bench")
    extras = [base_extra(index) for index in range(64)]

    if args.warm:
        with tracer.start_as_current_span("warm-up"):
            log.info("warm-up")
        provider.force_flush()
        exporter.records -= 1
        exporter.durations.clear()
    baseline_kib = peak_rss_kib()
    deadline = time.monotonic() + args.max_seconds
    logged = 0
    start = time.perf_counter()
    while logged < args.records and time.monotonic() < deadline:
        with tracer.start_as_current_span("POST /api/v2/orders"):
            for _ in range(RECORDS_PER_SPAN):
                log.info(MESSAGE, "ord-00012345", "cus-000042", 99.5, "4242", extra=extras[logged % 64])
                logged += 1
    elapsed = time.perf_counter() - start
    exports_during = len(exporter.durations)
    provider.shutdown()
    durations_ms = [seconds * 1000 for seconds in exporter.durations[:exports_during]] or [0.0]
    json.dump(
        {
            "exporter": args.exporter,
            "logged": logged,
            "elapsed_s": elapsed,
            "rate": logged / elapsed if elapsed > 0 else 0.0,
            "exported": exporter.records,
            "dropped": logged - exporter.records,
            "export_failures": exporter.failures,
            "exports_while_logging": exports_during,
            "export_ms_median": statistics.median(durations_ms),
            "export_ms_max": max(durations_ms),
            "peak_rss_kib": peak_rss_kib(),
            "baseline_rss_kib": baseline_kib,
            "threads_left": threading.active_count(),
            "socket_calls_per_export": {
                name: count / max(len(exporter.durations), 1) for name, count in sorted(calls.items())
            },
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
