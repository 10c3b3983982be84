"""Where the export path spends its time: cProfile over ``RedisLogExporter.export`` on the benchmark's
records, against a server at ``--url`` (e.g. one started by ``bench.py --keep-server``, or any
loopback server). Prints the split by stage and the top functions by own time.

    python benchmarks/profile_export.py --url redis://127.0.0.1:6379/0 [--mode async] [--records 16384]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from otel_redis_exporter import RedisLogExporter
from otel_redis_exporter._encoding import BatchEncoder
from otel_redis_exporter._keys import StreamKeyTemplate

from workload import batches, make_records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=("sync", "async"), default="sync")
    parser.add_argument("--records", type=int, default=16_384)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    work = batches(make_records(args.records), args.batch)
    exporter = RedisLogExporter(url=args.url, stream="bench:profile", mode=args.mode)
    exporter.export(work[0])  # connect outside the measurement

    # Stage split without the profiler's overhead: encoding alone, then the whole export.
    encoder_template = StreamKeyTemplate.parse("bench:profile")
    start = time.perf_counter()
    for batch in work:
        BatchEncoder(encoder_template, 65536).encode(batch, time.time_ns())
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    for batch in work:
        exporter.export(batch)
    export_s = time.perf_counter() - start
    per = 1e6 / args.records
    print(f"records: {args.records} in batches of {args.batch} ({args.mode})")
    print(f"encode only : {encode_s * per:6.2f} us/record")
    print(f"whole export: {export_s * per:6.2f} us/record (wall clock)")

    profiler = cProfile.Profile()
    profiler.enable()
    for batch in work:
        exporter.export(batch)
    profiler.disable()
    exporter.shutdown()
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
