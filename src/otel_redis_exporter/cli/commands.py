"""The commands of ``otel-redis``: tail, trace, stats, forward; each returns an exit status."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from .._encode.entry import LogEntry
from .._errors import describe
from .._missing import OtlpNotInstalledError
from .._terminal import visible
from ..read import RedisLogReader
from .render import SEVERITIES, TextFormatter, entry_json, severity_number, stats_json, stats_text

PROG = "otel-redis"
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command-line argument is wrong (exit 2)."""


def severity_floor(text: str) -> int:
    """``WARN`` -> 13; a number 1..24 is taken as it is."""
    name = text.strip().upper()
    if name.isdigit() and 1 <= int(name) <= 24:
        return int(name)
    if name in SEVERITIES:
        return SEVERITIES[name]
    allowed = ", ".join(dict.fromkeys(SEVERITIES))
    raise UsageError(f"--severity must be one of {allowed} or a number 1..24; got {text!r}")


def _use_color(args: argparse.Namespace, stream: TextIO) -> bool:
    choice = getattr(args, "color", "auto")
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty()


# Deployment options, named as RedisLogReader names them; unset ones fall back to the variables.
_DEPLOYMENT_OPTIONS = (
    "cluster",
    "shards",
    "sentinels",
    "sentinel_master",
    "sentinel_username",
    "certificate",
    "client_key",
    "client_certificate",
)


def _reader(args: argparse.Namespace) -> RedisLogReader:
    keys = getattr(args, "key", None)
    deployment: dict[str, Any] = {name: getattr(args, name, None) for name in _DEPLOYMENT_OPTIONS}
    return RedisLogReader(
        url=getattr(args, "url", None),
        stream=getattr(args, "stream", None),
        keys=keys or None,
        pattern=getattr(args, "pattern", None),
        timeout=getattr(args, "timeout", None),
        username=getattr(args, "username", None),
        password=getattr(args, "password", None),
        **deployment,
    )


def _printer(args: argparse.Namespace, out: TextIO) -> Callable[[Iterable[LogEntry]], int]:
    if getattr(args, "json", False):

        def print_json(entries: Iterable[LogEntry]) -> int:
            count = 0
            for entry in entries:
                out.write(entry_json(entry) + "\n")
                out.flush()
                count += 1
            return count

        return print_json
    formatter = TextFormatter(_use_color(args, out), full=getattr(args, "full", False))

    def print_text(entries: Iterable[LogEntry]) -> int:
        if isinstance(entries, list):  # known in advance: align on the widest service name
            formatter.service_width = max(
                [formatter.service_width, *(len(e.service_name or "") for e in entries)]
            )
        count = 0
        for entry in entries:
            out.write(formatter.line(entry) + "\n")
            out.flush()
            count += 1
        return count

    return print_text


def cmd_tail(args: argparse.Namespace, out: TextIO) -> int:
    floor = severity_floor(args.severity) if args.severity else None
    trace = args.trace_id.strip().lower() if args.trace_id else None

    def where(entry: LogEntry) -> bool:
        if floor is not None and (severity_number(entry) or 0) < floor:
            return False
        if trace is not None and entry.trace_id != trace:
            return False
        return args.service is None or entry.service_name == args.service

    if args.lines < 0:
        raise UsageError(f"-n must be >= 0; got {args.lines}")

    def lost(error: BaseException, attempt: int, delay: float) -> None:
        if attempt == 1:  # one line per outage
            print(
                f"{PROG}: lost the server ({describe(error)}); reconnecting, "
                "then resuming after the last record shown",
                file=sys.stderr,
                flush=True,
            )

    with _reader(args) as reader:
        reader.ping()
        entries = reader.tail(
            args.lines, follow=args.follow, block_ms=args.block_ms, where=where, on_disconnect=lost
        )
        shown = _printer(args, out)(entries if args.follow else list(entries))
        if not shown and args.lines:
            filtered = floor is not None or trace is not None or args.service is not None
            say(
                _why_empty(
                    reader, "no record matched --severity, --trace-id or --service" if filtered else None
                )
            )
    return 0


def say(message: str) -> None:
    """One line on stderr, safe for a terminal."""
    print(f"{PROG}: {visible(message)}", file=sys.stderr)


def _why_empty(reader: RedisLogReader, filtered: str | None) -> str:
    """Why a read found nothing: no such key, no key matching the pattern, empty keys, or the filter."""
    keys = reader.keys()
    if not keys:
        return "no stream key matches the pattern; check --stream, --pattern or --key"
    try:
        found = {stats.key: stats.length for stats in reader.stats()}
    except Exception:  # a hint only: without the rights to look, say what is known
        return f"nothing to show from {', '.join(keys)}"
    missing = [key for key in keys if key not in found]
    if len(missing) == len(keys):
        return f"no such stream key: {', '.join(missing)}; check --stream or --key"
    if filtered is not None and any(found.values()):
        return filtered
    return f"the stream holds no entries: {', '.join(keys)}"


def cmd_trace(args: argparse.Namespace, out: TextIO) -> int:
    with _reader(args) as reader:
        entries = reader.by_trace(args.trace_id, use_index=False if args.no_index else None)
    if not entries:
        print(f"{PROG}: no log records of trace {args.trace_id.strip().lower()}", file=sys.stderr)
        return EXIT_FAILURE
    _printer(args, out)(entries)
    return 0


def cmd_stats(args: argparse.Namespace, out: TextIO) -> int:
    with _reader(args) as reader:
        stats = reader.stats()
        if not stats and not args.json:
            say(_why_empty(reader, None))
            return 0
    if args.json:
        out.write(stats_json(stats) + "\n")
    else:
        out.write("\n".join(stats_text(stats, _use_color(args, out))) + "\n")
    return 0


def _sender(args: argparse.Namespace) -> Any:
    """OTLP/HTTP (ours, which sees each answer) or OTLP/gRPC (the SDK's exporter, the grpc extra)."""
    from .._encode.select import import_otlp  # noqa: PLC0415

    import_otlp()
    if args.protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (  # noqa: PLC0415
                OTLPLogExporter,
            )
        except ImportError as error:
            raise OtlpNotInstalledError(error, extra="grpc") from error
        from .send import ExporterSender  # noqa: PLC0415

        insecure = not args.endpoint.startswith("https://")
        compression = None if args.compression == "none" else _grpc_compression(args.compression)
        exporter = OTLPLogExporter(
            endpoint=args.endpoint, insecure=insecure, timeout=args.export_timeout, compression=compression
        )
        return ExporterSender(exporter)
    try:
        import requests  # noqa: F401, PLC0415 - the otlp extra brings it
    except ImportError as error:
        raise OtlpNotInstalledError(error) from error
    from .send import OtlpHttpSender  # noqa: PLC0415

    return OtlpHttpSender(args.endpoint, timeout_s=args.export_timeout, compression=args.compression)


def _grpc_compression(name: str) -> Any:
    import grpc  # noqa: PLC0415

    return grpc.Compression.Gzip if name == "gzip" else grpc.Compression.NoCompression


def cmd_forward(args: argparse.Namespace, out: TextIO) -> int:

    from .forward import Forwarder, ForwardStats  # noqa: PLC0415

    if args.batch_size <= 0:
        raise UsageError(f"--batch-size must be > 0; got {args.batch_size}")
    if args.progress_interval < 0:
        raise UsageError(f"--progress-interval must be >= 0; got {args.progress_interval}")
    sender = _sender(args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    dead_key: str | None = args.dead_letter

    def progress(stats: ForwardStats) -> None:
        def shown(value: int | None) -> str:
            return "?" if value is None else str(value)

        print(
            f"{PROG}: forwarded {stats.forwarded}, dead-lettered {stats.dead_lettered}, "
            f"pending {shown(stats.pending)}, lag {shown(stats.lag)}",
            file=sys.stderr,
            flush=True,
        )

    consumer = args.consumer or socket.gethostname()
    with _reader(args) as reader:
        reader.ping()
        group = reader.group(args.group, consumer, claim_idle_ms=int(args.claim_idle * 1000))
        group.ensure()
        print(
            f"{PROG}: forwarding to {args.endpoint} as consumer {consumer!r} of group {args.group!r}",
            file=sys.stderr,
        )
        forwarder = Forwarder(
            group,
            sender,
            count=args.batch_size,
            block_ms=args.block_ms,
            max_backoff_s=args.max_backoff,
            stop=stop,
            dead_letter=None if dead_key is None else (lambda _key: dead_key),
            progress_interval_s=args.progress_interval,
            on_progress=progress,
        )
        try:
            forwarder.run(exit_when_idle=args.exit_when_idle)
        finally:
            sender.shutdown()
            stats = forwarder.stats
            print(
                f"{PROG}: forwarded {stats.forwarded} log records, dead-lettered {stats.dead_lettered}",
                file=sys.stderr,
            )
    return 0
