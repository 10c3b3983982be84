"""The benchmark: this exporter side by side with the alternatives, on the same records, in one run.

    nox -s bench                 # full run (a few minutes), table on stdout, figures in bench-results.json
    nox -s bench -- --quick      # under a minute, for CI
    python benchmarks/bench.py --help

It starts its own redis-server (Debian's, on a free 127.0.0.1 port) and its own OTLP/HTTP receiver
(another process on 127.0.0.1 that answers 200). Every case exports the same prebuilt batches of real
SDK log records (see ``workload.py``). Rounds are interleaved (every case once per round, the order
rotated each round) after one warm-up round that is not counted; the table shows medians over the
rounds, and every ratio is computed within a round and then its median taken. Every loop is bounded
in count and in time.

Every exporter case runs twice, on the compiled fast path (this process) and on the pure-Python
path (a worker process started with ``OTEL_REDIS_EXPORTER_PURE_PYTHON=1``, given the same cases
and driven round by round from here), so the table's ``fast path`` and ``pure`` columns come from
the same rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import redis
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult

from otel_redis_exporter import FAST_PATH, RedisLogExporter
from otel_redis_exporter._encode.flat import BatchEncoder
from otel_redis_exporter._keys import StreamKeyTemplate

from servers import ServerProcess, server_binary
from workload import batches, make_records

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

MAXLEN = 100_000  # the exporter's default trim, used by every Redis case
BATCH = 512  # the SDK's default max_export_batch_size
PIPELINE_DEPTH = 256  # redis-benchmark -P
# End to end: the reference, then this exporter connecting on its first export (as in an
# application that logs a burst at start), already connected, and the async path.
# "encode": encodes each batch and writes nothing, the floor of any exporter that sends them.
E2E_KINDS = ("null", "encode", "sync", "sync-warm", "async", "sync-pure", "async-pure")
PURE_ENV = {"OTEL_REDIS_EXPORTER_PURE_PYTHON": "1"}


@dataclass(frozen=True)
class Profile:
    """How much work one run does; every count is also a bound."""

    records: int  # records per throughput case and round
    small_records: int  # records for the scaling cases (attributes, body size, batch size)
    tiny_batch_records: int  # records for batch sizes 1 and 8 (a round trip each)
    rounds: int
    ceiling_requests: int
    e2e_records: int
    e2e_rounds: int
    case_cap_s: float  # one case in one round stops after this long
    deadline_s: float  # no new round starts after this long


FULL = Profile(
    records=16_384,
    small_records=4_096,
    tiny_batch_records=1_024,
    rounds=7,
    ceiling_requests=200_000,
    e2e_records=100_000,
    e2e_rounds=5,
    case_cap_s=20.0,
    deadline_s=900.0,
)
QUICK = Profile(
    records=4_096,
    small_records=1_024,
    tiny_batch_records=256,
    rounds=3,
    ceiling_requests=50_000,
    e2e_records=20_000,
    e2e_rounds=2,
    case_cap_s=5.0,
    deadline_s=40.0,
)


# --------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------


@dataclass
class Case:
    """One way of getting records into a store; ``run`` returns (records written, seconds)."""

    name: str
    label: str
    group: str
    run: Callable[[float], tuple[int, float]]
    close: Callable[[], None] = lambda: None
    rates: list[float] = field(default_factory=list)  # records/s, one per counted round

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0


def timed_batches(
    export: Callable[[list[ReadableLogRecord]], bool], work: Sequence[list[ReadableLogRecord]], cap_s: float
) -> tuple[int, float]:
    """Export every batch (stop early after ``cap_s``); fail loudly if an export fails."""
    done = 0
    start = time.perf_counter()
    for batch in work:
        if not export(batch):
            raise RuntimeError("an export failed during the benchmark")
        done += len(batch)
        if time.perf_counter() - start > cap_s:
            break
    return done, time.perf_counter() - start


def exporter_case(
    name: str, label: str, group: str, url: str, work: Sequence[list[ReadableLogRecord]], **kwargs: Any
) -> Case:
    exporter = RedisLogExporter(url=url, maxlen=MAXLEN, **kwargs)

    def export(batch: list[ReadableLogRecord]) -> bool:
        return exporter.export(batch) is LogRecordExportResult.SUCCESS

    return Case(name, label, group, lambda cap: timed_batches(export, work, cap), exporter.shutdown)


def naive_case(url: str, work: Sequence[list[ReadableLogRecord]]) -> Case:
    """The same entries (our encoder), written the way a hand-written handler does: one XADD each."""
    client = redis.Redis.from_url(url)
    encoder_template = StreamKeyTemplate.parse("bench:naive")

    def export(batch: list[ReadableLogRecord]) -> bool:
        entries = BatchEncoder(encoder_template, 65536).encode(batch, time.time_ns())
        for key, fields_list in entries.items():
            for fields in fields_list:
                client.xadd(key, fields, maxlen=MAXLEN, approximate=True)  # type: ignore[arg-type]
        return True

    return Case(
        "naive",
        "naive loop: one XADD round trip per record",
        "alternatives",
        lambda cap: timed_batches(export, work, cap),
        client.close,
    )


def otlp_case(endpoint: str, work: Sequence[list[ReadableLogRecord]]) -> Case:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # noqa: PLC0415

    exporter = OTLPLogExporter(endpoint=endpoint, timeout=10)

    def export(batch: list[ReadableLogRecord]) -> bool:
        return exporter.export(batch) is LogRecordExportResult.SUCCESS

    return Case(
        "otlp",
        "OTLP/HTTP exporter to a loopback receiver",
        "alternatives",
        lambda cap: timed_batches(export, work, cap),
        exporter.shutdown,
    )


def ceiling_case(server: ServerProcess, sample: dict[str, str], requests: int) -> Case:
    """redis-benchmark, one connection, 256-deep pipeline, XADD of an entry like ours."""
    binary = Path(server_binary("redis") or "redis-server").with_name("redis-benchmark")
    argv = [
        str(binary),
        "-h",
        server.host,
        "-p",
        str(server.port),
        "-c",
        "1",
        "-P",
        str(PIPELINE_DEPTH),
        "-n",
        str(requests),
        "--csv",
        "XADD",
        "bench:ceiling",
        "MAXLEN",
        "~",
        str(MAXLEN),
        "*",
        *(item for pair in sample.items() for item in pair),
    ]

    def run(cap: float) -> tuple[int, float]:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=cap + 30, check=True)
        # The command's text is the first CSV column, unescaped: read the 7 numbers from the right.
        last = out.stdout.strip().splitlines()[-1]
        rps = float(last.rsplit(",", 7)[1].strip('"'))
        return requests, requests / rps

    return Case(
        "ceiling", f"server ceiling: redis-benchmark -c 1 -P {PIPELINE_DEPTH} XADD", "alternatives", run
    )


# --------------------------------------------------------------------------
# end to end
# --------------------------------------------------------------------------


def end_to_end(
    kind: str, url: str, records: int, cap_s: float, *, count_calls: bool = False
) -> dict[str, Any]:
    """One run of ``end_to_end.py`` in a fresh process (``sync-warm``: connected before logging;
    ``-pure``: on the pure-Python path)."""
    pure = kind.endswith("-pure")
    exporter = kind.removesuffix("-pure").removesuffix("-warm")
    argv = [
        sys.executable,
        str(HERE / "end_to_end.py"),
        "--exporter",
        exporter,
        *(["--warm"] if kind.endswith("-warm") else []),
        "--url",
        url,
        "--stream",
        f"bench:e2e:{exporter}",
        "--records",
        str(records),
        "--max-seconds",
        str(cap_s),
        *(["--count-calls"] if count_calls else []),
    ]
    env = {**os.environ, **PURE_ENV} if pure else None
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=cap_s + 60, check=True, cwd=HERE, env=env
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------


def ratios(numerator: Case, denominator: Case) -> list[float]:
    return [a / b for a, b in zip(numerator.rates, denominator.rates, strict=False) if b]


def span(values: Sequence[float]) -> str:
    if values and all(isinstance(value, int) for value in values):
        return f"{min(values)}..{max(values)}"
    return f"{min(values):.2f}..{max(values):.2f}" if values else "-"


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in (
        "redis",
        "hiredis",
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-http",
        "orjson",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    server = subprocess.run(
        [server_binary("redis") or "redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "server": server,
        "packages": versions,
    }


@contextlib.contextmanager
def otlp_receiver() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "otlp_receiver.py"), "--max-seconds", "1800"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1/logs"
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Work:
    """The records every case exports, built the same way in this process and in the worker."""

    records: list[ReadableLogRecord]
    work: list[list[ReadableLogRecord]]
    work8: list[list[ReadableLogRecord]]
    scaling: dict[str, list[ReadableLogRecord]]


def build_work(profile: Profile) -> Work:
    """Every case's records, built once and moved out of the garbage collector's reach.

    The prebuilt records are hundreds of thousands of objects no application holds: a full
    collection over them pauses the process for ~0.2 s, which the exporter would see as a server
    that stopped answering (``export()`` then returns FAILURE, its batch still queued).
    """
    records = make_records(profile.records)
    work = Work(
        records=records,
        work=batches(records, BATCH),
        work8=batches(make_records(profile.records, services=8), BATCH),
        scaling={
            "attributes=0": make_records(profile.small_records, attributes=0),
            "attributes=10": make_records(profile.small_records, attributes=10),
            "attributes=50": make_records(profile.small_records, attributes=50),
            "body=100B": make_records(profile.small_records, body_size=100),
            "body=10KB": make_records(profile.small_records, body_size=10_000),
        },
    )
    gc.collect()
    gc.freeze()
    return work


def exporter_cases(url: str, profile: Profile, load: Work) -> list[Case]:
    """The cases that run this exporter: each also runs on the pure path, in the worker."""
    cases = [
        exporter_case("sync", "this exporter, sync", "main", url, load.work, stream="bench:sync"),
        exporter_case(
            "async", "this exporter, async", "main", url, load.work, stream="bench:async", mode="async"
        ),
        exporter_case(
            "sync8", "sync, 8 templated streams", "main", url, load.work8, stream="bench:sync8:{service.name}"
        ),
        exporter_case(
            "async8",
            "async, 8 templated streams",
            "main",
            url,
            load.work8,
            stream="bench:async8:{service.name}",
            mode="async",
        ),
    ]
    for size in (1, 8, 64, 512, 4096):
        count = profile.tiny_batch_records if size < 64 else profile.records
        cases.append(
            exporter_case(
                f"batch={size}",
                f"sync, batch size {size}",
                "batch size",
                url,
                batches(load.records[:count], size),
                stream="bench:scale",
            )
        )
    for name, records in load.scaling.items():
        group = "attributes" if name.startswith("attr") else "body size"
        cases.append(
            exporter_case(name, f"sync, {name}", group, url, batches(records, BATCH), stream="bench:scale")
        )
    return cases


class PureWorker:
    """This script in a child process on the pure-Python path, running its exporter cases on request."""

    def __init__(self, url: str, quick: bool) -> None:
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--pure-worker",
            url,
            *(["--quick"] if quick else []),
        ]
        self._process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, **PURE_ENV}
        )
        if self._reply() != "ready":
            raise RuntimeError("the pure-Python worker did not start")

    def _reply(self) -> str:
        assert self._process.stdout is not None
        return self._process.stdout.readline().strip()

    def twin(self, case: Case) -> Case:
        """``case`` run by the worker, on the pure path."""

        def run(cap: float) -> tuple[int, float]:
            assert self._process.stdin is not None
            self._process.stdin.write(f"{case.name} {cap}\n")
            self._process.stdin.flush()
            done, seconds = json.loads(self._reply())
            return int(done), float(seconds)

        return Case(case.name, case.label, case.group, run)

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def serve_pure(url: str, profile: Profile) -> int:
    """The worker's side: build the same exporter cases, run each one the parent names."""
    if FAST_PATH:
        print("the pure-Python worker is on the fast path", file=sys.stderr)
        return 2
    warnings.simplefilter("ignore", DeprecationWarning)
    cases = {case.name: case for case in exporter_cases(url, profile, build_work(profile))}
    print("ready", flush=True)
    for line in sys.stdin:
        name, cap = line.split()
        print(json.dumps(cases[name].run(float(cap))), flush=True)
    for case in cases.values():
        case.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a run of under a minute (CI)")
    parser.add_argument("--rounds", type=int, help="counted rounds (default: 7, quick: 3)")
    parser.add_argument("--json", default="bench-results.json", help="where to write the figures")
    parser.add_argument("--no-e2e", action="store_true", help="skip the end-to-end case")
    parser.add_argument("--pure-worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    if args.pure_worker:
        return serve_pure(args.pure_worker, profile)
    rounds = args.rounds or profile.rounds
    warnings.simplefilter("ignore", DeprecationWarning)
    began = time.monotonic()

    print(f"building records ({profile.records} per case)...", file=sys.stderr)
    load = build_work(profile)
    encoded = BatchEncoder(StreamKeyTemplate.parse("x"), 65536).encode(load.records[:1], time.time_ns())
    sample = encoded["x"][0]
    entry_bytes = sum(len(k.encode()) + len(v.encode()) for k, v in sample.items())
    if not FAST_PATH:
        print("the compiled fast path is not active: both columns are pure Python", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, otlp_receiver() as endpoint:
        binary = server_binary("redis")
        if binary is None or not Path(binary).with_name("redis-benchmark").exists():
            print("redis-server or redis-benchmark not found (apt-get install redis-server)", file=sys.stderr)
            return 2
        server = ServerProcess(binary, tmp, name="bench").start()
        worker: PureWorker | None = None
        try:
            url = server.url
            ours = exporter_cases(url, profile, load)
            cases = [
                *ours[:2],
                naive_case(url, load.work),
                otlp_case(endpoint, load.work),
                ceiling_case(server, sample, profile.ceiling_requests),
                *ours[2:],
            ]
            worker = PureWorker(url, args.quick)
            pure = {case.name: worker.twin(case) for case in ours}
            every = [*cases, *pure.values()]

            counted = 0
            for round_index in range(rounds + 1):
                if round_index > 1 and time.monotonic() - began > profile.deadline_s:
                    print(f"deadline reached after {counted} counted rounds", file=sys.stderr)
                    break
                shift = round_index % len(every)
                for case in every[shift:] + every[:shift]:
                    try:
                        done, seconds = case.run(profile.case_cap_s)
                    except RuntimeError as error:
                        raise RuntimeError(f"{case.label}: {error}") from error
                    if round_index > 0:  # round 0 warms up: connections, caches, streams up to MAXLEN
                        case.rates.append(done / seconds)
                if round_index > 0:
                    counted += 1
                print(f"round {round_index}/{rounds} done", file=sys.stderr)
            for case in cases:
                case.close()

            e2e: dict[str, list[dict[str, Any]]] = {kind: [] for kind in E2E_KINDS}
            memory: list[dict[str, Any]] = []
            if not args.no_e2e:
                e2e_cap = profile.case_cap_s * 3
                for round_index in range(profile.e2e_rounds):
                    order = list(E2E_KINDS)
                    shift = round_index % len(order)
                    for kind in order[shift:] + order[:shift]:
                        e2e[kind].append(end_to_end(kind, url, profile.e2e_records, e2e_cap))
                    print(f"end-to-end round {round_index + 1}/{profile.e2e_rounds} done", file=sys.stderr)
                for factor in (1, 4):
                    # Not timed against the null exporter, so these runs also count socket calls.
                    records = profile.e2e_records * factor
                    memory.append(end_to_end("sync", url, records, e2e_cap * factor, count_calls=True))
        finally:
            if worker is not None:
                worker.close()
            server.stop()

    results = report(
        cases=cases,
        pure=pure,
        e2e=e2e,
        memory=memory,
        profile=profile,
        rounds=rounds,
        entry_bytes=entry_bytes,
        quick=args.quick,
    )
    results["machine"] = machine()
    results["elapsed_s"] = time.monotonic() - began
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nfigures written to {args.json} ({results['elapsed_s']:.0f} s)")
    return 0


def report(
    *,
    cases: list[Case],
    pure: dict[str, Case],
    e2e: dict[str, list[dict[str, Any]]],
    memory: list[dict[str, Any]],
    profile: Profile,
    rounds: int,
    entry_bytes: int,
    quick: bool,
) -> dict[str, Any]:
    by_name = {case.name: case for case in cases}
    sync = by_name["sync"]
    counted = len(sync.rates)

    def on_pure(name: str) -> Case:
        """The case on the pure path (the alternatives have no pure path: themselves)."""
        return pure.get(name, by_name[name])

    print()
    print(
        f"records: {profile.records} per case and round, batches of {BATCH}, entry ~{entry_bytes} bytes; "
        f"{counted} counted rounds{' (quick)' if quick else ''}; fast path active: {FAST_PATH}"
    )
    print()
    header = (
        f"{'case':<42} {'fast path':>10} {'pure':>10} {'fast us':>8} {'pure us':>8} {'fast/pure':>9} "
        f"{'x sync':>7}  per-round x sync"
    )
    print(f"{'':<42} {'records/s':>21} {'per record':>17}")
    print(header)
    print("-" * len(header))
    last_group = None
    for case in cases:
        if case.group != last_group and last_group is not None:
            print()
        last_group = case.group
        versus = ratios(case, sync)
        twin = pure.get(case.name)
        speedup = statistics.median(ratios(case, twin)) if twin is not None and ratios(case, twin) else None
        print(
            f"{case.label:<42} {case.median:>10,.0f} {(twin.median if twin else case.median):>10,.0f} "
            f"{1e6 / case.median if case.median else 0:>8.2f} "
            f"{1e6 / twin.median if twin and twin.median else 1e6 / case.median if case.median else 0:>8.2f} "
            f"{f'{speedup:.2f}' if speedup is not None else '-':>9} "
            f"{statistics.median(versus) if versus else 0:>7.2f}  {span(versus)}"
        )

    targets = [
        ("sync / OTLP-HTTP", "sync", "otlp", 4.0),
        ("sync / naive loop", "sync", "naive", 8.0),
        ("sync / server ceiling", "sync", "ceiling", 0.4),
        ("async / sync, one stream", "async", "sync", 0.8),
        ("async / sync, 8 streams", "async8", "sync8", 1.0),
    ]
    rows: list[tuple[str, list[float], list[float], float]] = [
        (label, ratios(by_name[a], by_name[b]), ratios(on_pure(a), on_pure(b)), goal)
        for label, a, b, goal in targets
    ]
    e2e_rows: dict[str, Any] = {}
    if e2e["null"]:
        e2e_rows = {
            kind: [run["rate"] / null["rate"] for run, null in zip(runs, e2e["null"], strict=False)]
            for kind, runs in e2e.items()
            if kind != "null" and runs
        }
        for kind in ("sync", "sync-warm", "async"):
            pure_rates = e2e_rows.get(f"{kind}-pure", [])
            rows.append((f"end to end: logging rate {kind} / null", e2e_rows[kind], pure_rates, 0.85))
    print()
    header = f"{'target':<44} {'fast':>7} {'pure':>7} {'fast rounds':>12} {'goal':>7}  met (fast)"
    print(header)
    print("-" * len(header))
    target_rows = []
    for label, values, pure_values, goal in rows:
        median = statistics.median(values) if values else 0.0
        pure_median = statistics.median(pure_values) if pure_values else 0.0
        strict = label.startswith("async / sync, 8")
        met = median > goal if strict else median >= goal
        sign = ">" if strict else ">="
        goal_text = sign + format(goal, "g")
        pure_text = f"{pure_median:.2f}" if pure_values else "-"
        print(
            f"{label:<44} {median:>7.2f} {pure_text:>7} {span(values):>12} {goal_text:>7}  "
            f"{'yes' if met else 'NO'}"
        )
        target_rows.append(
            {
                "target": label,
                "median": median,
                "per_round": values,
                "pure_median": pure_median,
                "pure_per_round": pure_values,
                "goal": goal,
                "strict": strict,
                "met": met,
            }
        )
    for kind in ("sync", "sync-warm", "async", "sync-pure", "async-pure") if e2e["null"] else ():
        drops = [run["dropped"] for run in e2e[kind]]
        met = max(drops) == 0
        label = f"end to end: records dropped, {kind}"
        worst = f"max {max(drops)}"
        print(f"{label:<44} {worst:>7} {'':>7} {span(drops):>12} {'0':>7}  {'yes' if met else 'NO'}")
        target_rows.append({"target": label, "median": max(drops), "per_round": drops, "goal": 0, "met": met})

    if e2e["null"]:
        print()
        print(
            "end to end: stdlib logging -> LoggingHandler -> BatchLogRecordProcessor (defaults: queue "
            f"2048, batch 512) -> exporter; {profile.e2e_records} records per run, "
            f"medians of {len(e2e['null'])} runs"
        )
        header = (
            f"{'exporter':<10} {'records/s':>10} {'x null':>7} {'dropped*':>8} "
            f"{'export ms (median/max)':>23} {'peak RSS MiB':>13}"
        )
        print(header)
        print("-" * len(header))
        for kind in E2E_KINDS:
            runs = e2e[kind]
            rate = statistics.median(run["rate"] for run in runs)
            versus = statistics.median(e2e_rows[kind]) if kind in e2e_rows else 1.0
            dropped = max(run["dropped"] for run in runs)
            export_ms = statistics.median(run["export_ms_median"] for run in runs)
            export_max = max(run["export_ms_max"] for run in runs)
            rss = statistics.median(run["peak_rss_kib"] for run in runs) / 1024
            print(
                f"{kind:<10} {rate:>10,.0f} {versus:>7.2f} {dropped:>8} "
                f"{f'{export_ms:.1f} / {export_max:.1f}':>23} {rss:>13.1f}"
            )
        print()
        print("* the most records any one run dropped; every run's figures are in the JSON")
        print("encode: encodes each batch as the exporter does and writes nothing (the cost of reading")
        print("the records, the floor of any exporter that sends them)")
        print()
        for run in memory:
            calls = ", ".join(f"{n} {c:.1f}" for n, c in run.get("socket_calls_per_export", {}).items())
            print(
                f"peak RSS, sync, {run['logged']:>7} records logged: {run['peak_rss_kib'] / 1024:6.1f} MiB "
                f"(before logging {run['baseline_rss_kib'] / 1024:.1f} MiB, dropped {run['dropped']}; "
                f"socket calls per export: {calls})"
            )

    return {
        "profile": profile.__dict__,
        "rounds": rounds,
        "entry_bytes": entry_bytes,
        "fast_path": FAST_PATH,
        "cases": {
            case.name: {"label": case.label, "group": case.group, "rates": case.rates, "median": case.median}
            for case in cases
        },
        "pure_cases": {
            name: {"label": case.label, "group": case.group, "rates": case.rates, "median": case.median}
            for name, case in pure.items()
        },
        "targets": target_rows,
        "end_to_end": e2e,
        "memory": memory,
    }


if __name__ == "__main__":
    sys.exit(main())
