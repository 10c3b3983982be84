"""Records per second `otel-redis forward` moves from Redis to a collector on loopback.

    python benchmarks/forward.py [--records 20000] [--rounds 5] [--batch-size 512] [--encoding flat]

Starts a Redis server (benchmarks/servers.py) and the rotel collector (the `rotel` package) with its
blackhole exporter, so the collector decodes every request and throws it away. Each round fills
the stream through the exporter, then times `otel-redis forward --exit-when-idle` as a
subprocess from start to exit (start-up included) and checks that everything was acknowledged.
Prints the rounds and their median.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import rotel
from opentelemetry.sdk._logs.export import LogRecordExportResult

from otel_redis_exporter import RedisLogExporter

from servers import ServerProcess, free_port, server_binary, wait_until
from workload import request_record


def fill(url: str, count: int, encoding: str) -> None:
    exporter = RedisLogExporter(url=url, encoding=encoding, maxlen=0)
    attributes = {"http.route": "/orders/{id}"}
    try:
        for start in range(0, count, 512):
            batch = [
                request_record(f"request {n} handled", {**attributes, "n": n})
                for n in range(start, min(start + 512, count))
            ]
            assert exporter.export(batch) is LogRecordExportResult.SUCCESS
    finally:
        exporter.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--encoding", default="flat", choices=("flat", "otlp_json", "otlp_proto"))
    args = parser.parse_args()
    binary = server_binary("redis") or server_binary("valkey")
    assert binary, "no redis-server or valkey-server found"
    port = free_port()
    with tempfile.TemporaryDirectory() as directory, ServerProcess(binary, directory) as server:
        agent = str(Path(rotel.__file__).parent / "rotel-agent")
        receivers = [
            "--otlp-http-endpoint",
            f"127.0.0.1:{port}",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{free_port()}",
        ]
        files = ["--pid-file", f"{directory}/rotel.pid", "--log-file", f"{directory}/rotel.log"]
        collector = subprocess.Popen(
            [agent, "start", "--exporter", "blackhole", *receivers, *files],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: socket.create_connection(("127.0.0.1", port), 1).close() is None, timeout=10)
            script = str(Path(sys.executable).parent / "otel-redis")
            endpoint = f"http://127.0.0.1:{port}/v1/logs"
            options = ["--endpoint", endpoint, "--batch-size", str(args.batch_size), "--block-ms", "100"]
            rates = []
            for round_ in range(args.rounds):
                with server.client() as client:
                    client.flushall()
                fill(server.url, args.records, args.encoding)
                started = time.perf_counter()
                result = subprocess.run(
                    [
                        script,
                        "--url",
                        server.url,
                        "forward",
                        "--group",
                        "bench",
                        "--exit-when-idle",
                        *options,
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                elapsed = time.perf_counter() - started
                assert f"forwarded {args.records} log records" in result.stderr, result.stderr
                with server.client() as client:
                    assert client.xpending("otel:logs", "bench")["pending"] == 0
                rates.append(args.records / elapsed)
                rate = f"{rates[-1]:,.0f} records/s"
                print(f"round {round_ + 1}: {args.records} records in {elapsed:.2f} s = {rate}")
            median = f"{statistics.median(rates):,.0f} records/s"
            print(f"median: {median} ({args.encoding}, batch {args.batch_size})")
        finally:
            collector.terminate()
            collector.wait(timeout=10)


if __name__ == "__main__":
    main()
