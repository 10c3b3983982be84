"""Counts the calls that release the interpreter lock per exported batch.

Each socket call that blocks (send, recv, poll) lets another thread take the interpreter lock; beside
a busy application thread, getting it back can cost a whole switch interval (5 ms). This runs
``--batches`` exports of 512 records and prints the calls per batch, counted two ways:

* ``--method python`` (default): the socket methods and the event loop's selector are wrapped in
  counters, at full speed. A socket call with a timeout is a ``poll`` plus the call itself, so each
  counted socket call is two lock releases.
* ``--method strace``: every system call is traced with ``strace -f``. Tracing slows the client so
  much that the server has answered before the first read: a lower bound on the reads.

    python benchmarks/syscalls.py --url redis://127.0.0.1:6379/0 [--mode async] [--method strace]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TRACED = "sendto,sendmsg,recvfrom,recvmsg,poll,ppoll,select,pselect6,epoll_wait,epoll_pwait,write,read"


def child(url: str, mode: str, batches: int, ready_fd: int) -> None:
    """Build records and connect (not counted), then export ``batches`` batches."""
    from otel_redis_exporter import RedisLogExporter  # noqa: PLC0415

    from workload import make_records  # noqa: PLC0415

    records = make_records(512)
    exporter = RedisLogExporter(url=url, stream="bench:syscalls", mode=mode)
    exporter.export(records)
    os.write(ready_fd, b"ready\n")  # marks the start of the counted part in the trace
    for _ in range(batches):
        exporter.export(records)
    os.write(ready_fd, b"done\n")
    exporter.shutdown()


def count_in_process(url: str, mode: str, batches: int) -> None:
    """Wrap socket I/O and selector waits in counters, export, print the counts per batch."""
    import selectors  # noqa: PLC0415
    import socket  # noqa: PLC0415

    from otel_redis_exporter import RedisLogExporter  # noqa: PLC0415

    from workload import make_records  # noqa: PLC0415

    counts: dict[str, int] = {}

    def counted(owner: type, name: str) -> None:
        original = getattr(owner, name)

        def wrapper(self: object, *args: object, **kwargs: object) -> object:
            counts[name] = counts.get(name, 0) + 1
            return original(self, *args, **kwargs)

        setattr(owner, name, wrapper)

    records = make_records(512)
    exporter = RedisLogExporter(url=url, stream="bench:syscalls", mode=mode)
    exporter.export(records)
    for name in ("send", "sendall", "recv", "recv_into"):
        counted(socket.socket, name)
    counted(type(selectors.DefaultSelector()), "select")
    for _ in range(batches):
        exporter.export(records)
    exporter.shutdown()
    print(f"{mode}: {batches} batches of 512 records (counted in process)")
    for name, count in sorted(counts.items(), key=lambda item: -item[1]):
        print(f"  {name:<12} {count:6d}  {count / batches:6.1f} per batch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=("sync", "async"), default="sync")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--method", choices=("python", "strace"), default="python")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.url, args.mode, args.batches, 2)
        return
    if args.method == "python":
        count_in_process(args.url, args.mode, args.batches)
        return
    strace = shutil.which("strace")
    if strace is None:
        sys.exit("strace not found (apt-get install strace)")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "trace"
        argv = [strace, "-f", "-qq", "-e", f"trace={TRACED}", "-o", str(log)]
        argv += [sys.executable, __file__, "--url", args.url, "--mode", args.mode]
        argv += ["--batches", str(args.batches), "--child"]
        subprocess.run(argv, check=True, timeout=120, cwd=Path(__file__).parent, stderr=subprocess.DEVNULL)
        lines = log.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if 'write(2, "ready' in line)
    end = next(i for i, line in enumerate(lines) if 'write(2, "done' in line)
    counts: dict[str, int] = {}
    for line in lines[start + 1 : end]:
        parts = line.split(None, 1)
        if len(parts) < 2 or "(" not in parts[1] or "resumed>" in parts[1]:
            continue
        name = parts[1].split("(", 1)[0]
        # File reads/writes are not part of the export path; socket reads/writes are recv*/send*.
        counts[name] = counts.get(name, 0) + 1
    total = sum(counts.values())
    print(f"{args.mode}: {args.batches} batches of 512 records")
    for name, count in sorted(counts.items(), key=lambda item: -item[1]):
        print(f"  {name:<12} {count:6d}  {count / args.batches:6.1f} per batch")
    print(f"  {'total':<12} {total:6d}  {total / args.batches:6.1f} per batch")


if __name__ == "__main__":
    main()
