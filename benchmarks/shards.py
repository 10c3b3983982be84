"""Records per second into a local 3-master Redis Cluster with 1 and 3 shards, sync and async.

    python benchmarks/shards.py [redis|valkey] [--rounds 5] [--batches 40] [--batch-size 512]

Starts the cluster with benchmarks/servers.py, exports the same batches
with each setting in turn, round after round, and prints medians over the rounds:

* records/s one exporter achieved (client and servers share this machine's cores), and
* the XADD time the busiest master spent per 1,000 records (``INFO commandstats``). One stream
  key lives on one master, so with one shard that master carries the whole stream; shards spread
  the work over the masters, which is what lets more writers add up.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

from opentelemetry.sdk._logs.export import LogRecordExportResult

from otel_redis_exporter import RedisLogExporter

from servers import Cluster, start_cluster
from workload import request_record

Setting = tuple[str, int]


def xadd_usec(cluster: Cluster) -> dict[int, int]:
    """Microseconds each master has spent in XADD so far, by port."""
    spent = {}
    for node in cluster.masters:
        with node.client() as client:
            stats: dict[str, Any] = client.info("commandstats").get("cmdstat_xadd", {})
        spent[node.port] = int(stats.get("usec", 0))
    return spent


def export_all(exporter: RedisLogExporter, batch: list[Any], batches: int) -> None:
    for _ in range(batches):
        if exporter.export(batch) is not LogRecordExportResult.SUCCESS:
            raise SystemExit("an export failed; see the otel_redis_exporter log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", nargs="?", default="redis", choices=["redis", "valkey"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args()

    batch = [
        request_record(f"request {n} handled", {"http.route": "/orders"}, trace_id=n + 1)
        for n in range(args.batch_size)
    ]
    records = args.batches * args.batch_size
    settings: list[Setting] = [(mode, shards) for mode in ("sync", "async") for shards in (1, 3)]
    rates: dict[Setting, list[float]] = {setting: [] for setting in settings}
    busiest_usec: dict[Setting, list[float]] = {setting: [] for setting in settings}
    with tempfile.TemporaryDirectory() as directory, start_cluster(args.kind, base_dir=directory) as cluster:
        exporters = {
            (mode, shards): RedisLogExporter(
                url=cluster.url, cluster=True, shards=shards, mode=mode, stream=f"bench:{mode}:{shards}"
            )
            for mode, shards in settings
        }
        try:
            for exporter in exporters.values():  # connect and read the slot map outside the timing
                export_all(exporter, batch[:1], 1)
            for _ in range(args.rounds):
                for setting, exporter in exporters.items():
                    before = xadd_usec(cluster)
                    started = time.perf_counter()
                    export_all(exporter, batch, args.batches)
                    rates[setting].append(records / (time.perf_counter() - started))
                    after = xadd_usec(cluster)
                    busiest = max(after[port] - before.get(port, 0) for port in after)
                    busiest_usec[setting].append(busiest / records * 1000)
        finally:
            for exporter in exporters.values():
                exporter.shutdown()
    print(f"{args.kind} cluster, 3 masters; median of {args.rounds} rounds of {records} records")
    for mode, shards in settings:
        rate, usec = statistics.median(rates[mode, shards]), statistics.median(busiest_usec[mode, shards])
        line = f"  {mode:5} shards={shards}: {rate:>7,.0f} records/s"
        print(f"{line};  busiest master: {usec:>6,.0f} us of XADD per 1,000 records")


if __name__ == "__main__":
    main()
