"""A bounded soak: log as fast as the machine allows for a fixed time and balance the books.

    python tests/soak.py --seconds 60 --mode sync --kind redis      (what `nox -s soak` runs)

The application thread emits records in a tight loop through the SDK's BatchLogRecordProcessor
into the exporter, which writes to a server started on a free loopback port. At the end:

    emitted = landed + dropped by the exporter (counted) + dropped by the batch processor

where the processor's drops (its queue was full) are measured as emitted minus what reached the
exporter. Resident memory is sampled during the run; threads and descriptors are compared with
the start after shutdown.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from otel_redis_exporter import RedisLogExporter

sys.path.insert(0, str(Path(__file__).parent))
from pipeline import Counting
from servers import ServerProcess, server_binary

MAX_RECORDS = 5_000_000  # a hard cap on the loop, whatever the time


def rss_bytes() -> int:
    """This process's resident set size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class SoakReport:
    """The books of one soak run."""

    mode: str
    seconds: float
    emitted: int
    landed: int
    exporter_dropped: int
    processor_dropped: int
    rss_samples_mb: list[float] = field(default_factory=list)
    threads_before: int = 0
    threads_after: int = 0
    fds_before: int = 0
    fds_after: int = 0

    @property
    def balanced(self) -> bool:
        return self.emitted == self.landed + self.exporter_dropped + self.processor_dropped

    @property
    def rss_growth_mb(self) -> float:
        """Growth from the first quarter of the run to its end."""
        return self.rss_samples_mb[-1] - self.rss_samples_mb[0] if self.rss_samples_mb else 0.0

    def __str__(self) -> str:
        rate = self.emitted / self.seconds if self.seconds else 0
        return (
            f"mode={self.mode} seconds={self.seconds:.1f} emitted={self.emitted} ({rate:,.0f}/s) "
            f"landed={self.landed} exporter_dropped={self.exporter_dropped} "
            f"processor_dropped={self.processor_dropped} balanced={self.balanced} "
            f"rss_mb={[round(x, 1) for x in self.rss_samples_mb]} "
            f"threads={self.threads_before}->{self.threads_after} fds={self.fds_before}->{self.fds_after}"
        )


def run_soak(url: str, seconds: float, mode: str = "sync", stream: str = "soak:logs") -> SoakReport:
    """Log as fast as possible for ``seconds`` through one exporter; return the books."""
    import redis  # noqa: PLC0415

    threads_before, fds_before = threading.active_count(), len(os.listdir("/proc/self/fd"))
    exporter = RedisLogExporter(url=url, stream=stream, mode=mode, maxlen=0)
    counting = Counting(exporter)
    provider = LoggerProvider(resource=Resource.create({"service.name": "soak"}))
    provider.add_log_record_processor(BatchLogRecordProcessor(counting))
    logger = provider.get_logger("soak")
    attributes = {"http.route": "/orders/{id}", "user.id": 12345, "ok": True, "ratio": 0.25}
    emitted = 0
    samples: list[float] = []
    started = time.monotonic()
    next_sample = started + seconds / 4
    while emitted < MAX_RECORDS:
        now = time.monotonic()
        if now >= started + seconds:
            break
        if now >= next_sample:
            samples.append(rss_bytes() / 2**20)
            next_sample += seconds / 4
        logger.emit(
            LogRecord(
                body=f"request {emitted} handled in 12 ms",
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                attributes=attributes,
            )
        )
        emitted += 1
    elapsed = time.monotonic() - started
    provider.shutdown()
    samples.append(rss_bytes() / 2**20)
    stats = exporter.stats()
    client = redis.Redis.from_url(url)
    landed = client.xlen(stream)
    client.delete(stream)
    client.close()
    return SoakReport(
        mode=mode,
        seconds=elapsed,
        emitted=emitted,
        landed=landed,
        exporter_dropped=stats.dropped_total,
        processor_dropped=emitted - counting.received,
        rss_samples_mb=samples,
        threads_before=threads_before,
        threads_after=threading.active_count(),
        fds_before=fds_before,
        fds_after=len(os.listdir("/proc/self/fd")),
    )


def main() -> int:
    """Start a server, soak each mode, print the books; exit 1 if they do not balance."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--mode", choices=["sync", "async", "both"], default="both")
    parser.add_argument("--kind", choices=["redis", "valkey"], default="redis")
    args = parser.parse_args()
    binary = server_binary(args.kind)
    if binary is None:
        print(f"no {args.kind} server binary found", file=sys.stderr)
        return 2
    ok = True
    with tempfile.TemporaryDirectory() as directory, ServerProcess(binary, Path(directory)) as server:
        for mode in ["sync", "async"] if args.mode == "both" else [args.mode]:
            report = run_soak(server.url, args.seconds, mode)
            print(report, flush=True)
            ok = ok and report.balanced and report.threads_after == report.threads_before
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
