"""Where the export path spends its time, on the benchmark's records.

Prints the time per record of each stage of a sync export (each timed on its own, no profiler),
the whole export, then cProfile's top functions by own and by cumulative time. Without ``--url``
it starts its own redis-server on a free 127.0.0.1 port.

    python benchmarks/profile_export.py [--url redis://127.0.0.1:6379/0] [--mode async] [--records 16384]

It profiles the path that is active: OTEL_REDIS_EXPORTER_PURE_PYTHON=1 profiles the pure one.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import tempfile
import time
from typing import Any

from otel_redis_exporter import FAST_PATH, RedisLogExporter
from otel_redis_exporter._client import make_pool
from otel_redis_exporter._context import is_own
from otel_redis_exporter._encode.compiled import COMPILED
from otel_redis_exporter._encode.flat import BatchEncoder
from otel_redis_exporter._keys import StreamKeyTemplate
from otel_redis_exporter._write.attempt import (
    outcome,
    pack,
    pack_xadds,
    read_replies,
    read_replies_at_once,
    reads_at_once,
    xadd_commands,
)
from otel_redis_exporter._write.delivery import Parcel, Ticket

from servers import ServerProcess, server_binary
from workload import batches, make_records


def stage_split(exporter: RedisLogExporter, work: list[Any], records: int, repeat: int) -> None:
    """Each stage of a sync export on its own, timed without a profiler (best of ``repeat``)."""
    config = exporter.config
    template = StreamKeyTemplate.parse(config.stream)
    pool = make_pool(config)  # the sender's own pool is its business: the stages get one like it
    totals: dict[str, float] = {}
    round_trip_cpu = float("inf")
    for _ in range(repeat):
        times = dict.fromkeys(STAGES, 0.0)
        cpu = 0.0
        for batch in work:
            t0 = time.perf_counter()
            kept = [record for record in batch if not is_own(record)]
            t1 = time.perf_counter()
            entries = BatchEncoder(template, config.max_value_length, compiled=COMPILED).encode(
                kept, time.time_ns()
            )
            t2 = time.perf_counter()
            Parcel(entries, Ticket(len(kept)))
            t2q = time.perf_counter()
            now_ms = time.time_ns() // 1_000_000
            # The fast path packs straight from the fields; the pure one builds the tuples first.
            commands: Any = None if FAST_PATH else xadd_commands(entries, config, now_ms)
            t3 = time.perf_counter()
            packed = pack_xadds(entries, config, now_ms) if FAST_PATH else None
            buffer = packed.data if packed is not None else pack(None, commands)
            count = packed.count if packed is not None else len(commands)
            t4 = time.perf_counter()
            c4 = time.thread_time()
            connection = pool.get_connection()
            connection.send_packed_command([buffer], check_health=False)
            if reads_at_once(connection):
                replies, _ = read_replies_at_once(connection, count, lambda: None)
            else:
                replies, _ = read_replies(count, connection.read_response, lambda: None)
            pool.release(connection)
            cpu += time.thread_time() - c4
            t5 = time.perf_counter()
            outcome(range(count), replies)
            t6 = time.perf_counter()
            for name, seconds in zip(
                STAGES, (t1 - t0, t2 - t1, t2q - t2, t3 - t2q, t4 - t3, t5 - t4, t6 - t5), strict=True
            ):
                times[name] += seconds
        for name, seconds in times.items():
            totals[name] = min(totals.get(name, float("inf")), seconds)
        round_trip_cpu = min(round_trip_cpu, cpu)
    whole = sum(totals.values())
    for name, seconds in totals.items():
        print(f"  {name:<44} {seconds * 1e6 / records:6.2f} us/record  {seconds / whole:4.0%}")
    print(f"  {'sum of the stages':<44} {whole * 1e6 / records:6.2f} us/record")
    print(
        f"  {'  of the round trip, this thread on a CPU':<44} {round_trip_cpu * 1e6 / records:6.2f} us/record"
        "  (the rest is waiting for the server)"
    )


STAGES = (
    "filter own records (exporter)",
    "encode: record -> fields (C when compiled)",
    "queue: entry sizes for its bounds (C too)",
    "commands: fields -> XADD tuples (pure path)",
    "pack: one RESP buffer (C from the fields)",
    "round trip: send, server, read replies",
    "replies -> result (entry ids)",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a server to use instead of starting one")
    parser.add_argument("--mode", choices=("sync", "async"), default="sync")
    parser.add_argument("--records", type=int, default=16_384)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    work = batches(make_records(args.records), args.batch)
    with contextlib.ExitStack() as stack:
        url = args.url
        if url is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="profile-"))
            server = ServerProcess(server_binary("redis") or "redis-server", tmp, name="profile").start()
            stack.callback(server.stop)
            url = server.url
        run(url, work, args)


def run(url: str, work: list[Any], args: argparse.Namespace) -> None:
    exporter = RedisLogExporter(url=url, stream="bench:profile", mode=args.mode)
    exporter.export(work[0])  # connect outside the measurement

    path = "compiled fast path" if FAST_PATH else "pure Python"
    print(f"records: {args.records} in batches of {args.batch} ({args.mode}, {path}), best of {args.repeat}")
    if args.mode == "sync":
        stage_split(exporter, work, args.records, args.repeat)
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        for batch in work:
            exporter.export(batch)
        best = min(best, time.perf_counter() - start)
    print(f"  {'whole export() (wall clock)':<44} {best * 1e6 / args.records:6.2f} us/record")

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
