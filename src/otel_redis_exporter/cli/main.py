"""``otel-redis``: read, follow, inspect and forward the log records in a Redis stream.

    otel-redis tail [--follow] [-n N] [--severity WARN] [--trace-id ID] [--service NAME]
    otel-redis trace TRACE_ID
    otel-redis stats
    otel-redis forward --endpoint http://HOST:4318/v1/logs --group NAME

``--url`` and ``--stream`` (or ``--pattern``) fall back to the exporter's environment variables, and
so do the deployment options (``--cluster``, ``--shards``, ``--sentinels``, TLS files): one
environment serves the exporter and the command line. ``--username`` and ``--password`` (or
``OTEL_EXPORTER_REDIS_USERNAME`` / ``..._PASSWORD``) keep the ACL user out of the URL.
Output is aligned text, colored on a terminal, every control character in it shown as an escape
(``\x1b``); ``--json`` prints one JSON object per line, exactly. Errors are one line on stderr,
with no password in it. Exit status: 0 success (an empty result says why on stderr), 1 the server
or endpoint failed (the message says why), 2 bad usage (a bad URL included), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from .._encoding import LogEntry, _dumps, _Sanitizer
from .._errors import describe
from .._log import logger
from .._missing import OtlpNotInstalledError
from .._redact import redact, secrets_of_url
from .._terminal import visible
from ..read import DEFAULT_BLOCK_MS, DEFAULT_CLAIM_IDLE_MS, RedisLogReader, StreamStats

PROG = "otel-redis"
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Lowest severity number of each OpenTelemetry severity range.
SEVERITIES = {
    "TRACE": 1,
    "DEBUG": 5,
    "INFO": 9,
    "WARN": 13,
    "WARNING": 13,
    "ERROR": 17,
    "FATAL": 21,
    "CRITICAL": 21,
}
# Attribute values longer than this are cut in the text output (not with --json).
MAX_SHOWN_VALUE = 120

_RESET = "\033[0m"
_DIM = "\033[2m"
_CYAN = "\033[36m"
_SEVERITY_COLORS = ((21, "\033[1;31m"), (17, "\033[31m"), (13, "\033[33m"), (9, "\033[32m"), (1, _DIM))


class UsageError(Exception):
    """A command-line argument is wrong (exit 2)."""


# ---------------------------------------------------------------------- formatting


def severity_floor(text: str) -> int:
    """``WARN`` -> 13; a number 1..24 is taken as it is."""
    name = text.strip().upper()
    if name.isdigit() and 1 <= int(name) <= 24:
        return int(name)
    if name in SEVERITIES:
        return SEVERITIES[name]
    allowed = ", ".join(dict.fromkeys(SEVERITIES))
    raise UsageError(f"--severity must be one of {allowed} or a number 1..24; got {text!r}")


def severity_number(entry: LogEntry) -> int | None:
    """The entry's severity number, from its text when only that is set."""
    if entry.severity_number:
        return entry.severity_number
    if entry.severity_text:
        return SEVERITIES.get(entry.severity_text.upper())
    return None


def iso_time(ns: int) -> str:
    """Nanoseconds since the epoch -> ``2024-05-01T12:00:00.123Z`` (UTC, milliseconds)."""
    moment = dt.datetime.fromtimestamp(ns // 1_000_000 / 1000, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def jsonable(value: Any) -> Any:
    """``value`` as JSON data, with the entry schema's tags for bytes and non-finite floats."""
    return _Sanitizer(1 << 30).value(value)


def entry_json(entry: LogEntry) -> str:
    """One line of ``--json`` output."""
    document = {
        "time": iso_time(entry.timestamp),
        "timestamp": entry.timestamp,
        "observed_timestamp": entry.observed_timestamp,
        "severity_number": entry.severity_number,
        "severity_text": entry.severity_text,
        "body": entry.body,
        "attributes": dict(entry.attributes),
        "trace_id": entry.trace_id,
        "span_id": entry.span_id,
        "trace_flags": entry.trace_flags,
        "event_name": entry.event_name,
        "service_name": entry.service_name,
        "scope": {
            "name": entry.scope_name,
            "version": entry.scope_version,
            "attributes": dict(entry.scope_attributes),
        },
        "resource": dict(entry.resource),
        "dropped_attributes_count": entry.dropped_attributes_count,
        "truncated": list(entry.truncated),
        "stream": entry.stream,
        "entry_id": entry.entry_id,
        "encoding": entry.encoding,
    }
    return _dumps(jsonable(document))


def _shown(value: Any) -> str:
    text = visible(value if isinstance(value, str) else _dumps(jsonable(value)))
    return text if len(text) <= MAX_SHOWN_VALUE else text[: MAX_SHOWN_VALUE - 1] + "…"


# Attributes that hold a stack trace (OpenTelemetry semantic conventions): with --full they are
# printed whole, one line per line, under the record.
STACK_TRACE_ATTRIBUTES = ("exception.stacktrace",)


class TextFormatter:
    """Aligned lines: time, severity, service, body, attributes, trace id; colored when asked.

    With ``full``, stack traces are not cut and flattened into the line but follow it whole,
    indented."""

    def __init__(self, color: bool, service_width: int = 8, *, full: bool = False) -> None:
        self._color = color
        self.service_width = service_width
        self._full = full

    def _paint(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self._color and text else text

    def line(self, entry: LogEntry) -> str:
        number = severity_number(entry)
        severity = visible(entry.severity_text or (str(number) if number else "-"))[:5]
        color = next((code for floor, code in _SEVERITY_COLORS if number and number >= floor), "")
        service = visible(entry.service_name or "-")
        self.service_width = max(self.service_width, len(service))
        body = "" if entry.body is None else _shown(entry.body)
        parts = [
            self._paint(_DIM, iso_time(entry.timestamp)),
            self._paint(color, f"{severity:<5}"),
            self._paint(_CYAN, f"{service:<{self.service_width}}"),
            body,
        ]
        whole = {
            key: value
            for key, value in entry.attributes.items()
            if self._full and key in STACK_TRACE_ATTRIBUTES and isinstance(value, str)
        }
        attributes = " ".join(
            f"{self._paint(_DIM, visible(key) + '=')}{_shown(value)}"
            for key, value in entry.attributes.items()
            if key not in whole
        )
        if attributes:
            parts.append(attributes)
        if entry.trace_id:
            parts.append(self._paint(_DIM, f"trace={visible(entry.trace_id)}"))
        below = [f"    {visible(line)}" for value in whole.values() for line in value.splitlines()]
        return "\n".join(["  ".join(parts), *below])


def _ms_time(ms: int | None) -> str:
    return "-" if ms is None else iso_time(ms * 1_000_000)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def stats_text(stats: Sequence[StreamStats], color: bool) -> list[str]:
    """An aligned table of the keys, then one line per consumer group."""
    header = ("stream", "length", "first entry", "last entry", "memory", "dead letters")
    rows = [
        (
            visible(s.key),
            str(s.length),
            _ms_time(s.first_ms),
            _ms_time(s.last_ms),
            _size(s.memory_bytes),
            str(s.dead_letters),
        )
        for s in stats
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def fmt(row: Sequence[str]) -> str:
        cells = [
            row[0].ljust(widths[0]),
            *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)),
        ]
        return "  ".join(cells).rstrip()

    head = fmt(header)
    lines = [f"\033[1m{head}{_RESET}" if color else head, *(fmt(row) for row in rows)]
    groups = [(s.key, g) for s in stats for g in s.groups]
    if groups:
        lines.append("")
        group_header = ("stream", "group", "consumers", "pending", "lag", "last delivered")
        group_rows = [
            (
                visible(key),
                visible(g.name),
                str(g.consumers),
                str(g.pending),
                "-" if g.lag is None else str(g.lag),
                g.last_delivered_id,
            )
            for key, g in groups
        ]
        gw = [max(len(row[i]) for row in [group_header, *group_rows]) for i in range(len(group_header))]
        for row in [group_header, *group_rows]:
            cells = [
                row[0].ljust(gw[0]),
                row[1].ljust(gw[1]),
                *(c.rjust(w) for c, w in zip(row[2:5], gw[2:5], strict=True)),
                row[5],
            ]
            text = "  ".join(cells)
            lines.append(f"\033[1m{text}{_RESET}" if color and row is group_header else text)
    return lines


def stats_json(stats: Sequence[StreamStats]) -> str:
    return json.dumps(
        [
            {
                "stream": s.key,
                "length": s.length,
                "first_entry_id": s.first_entry_id,
                "last_entry_id": s.last_entry_id,
                "first_time": None if s.first_ms is None else _ms_time(s.first_ms),
                "last_time": None if s.last_ms is None else _ms_time(s.last_ms),
                "memory_bytes": s.memory_bytes,
                "dead_letters": s.dead_letters,
                "groups": [
                    {
                        "name": g.name,
                        "consumers": g.consumers,
                        "pending": g.pending,
                        "lag": g.lag,
                        "last_delivered_id": g.last_delivered_id,
                    }
                    for g in s.groups
                ],
            }
            for s in stats
        ]
    )


# ---------------------------------------------------------------------- commands


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
            _say(
                _why_empty(
                    reader, "no record matched --severity, --trace-id or --service" if filtered else None
                )
            )
    return 0


def _say(message: str) -> None:
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
            _say(_why_empty(reader, None))
            return 0
    if args.json:
        out.write(stats_json(stats) + "\n")
    else:
        out.write("\n".join(stats_text(stats, _use_color(args, out))) + "\n")
    return 0


def _sender(args: argparse.Namespace) -> Any:
    """OTLP/HTTP (ours, which sees each answer) or OTLP/gRPC (the SDK's exporter, the grpc extra)."""
    from .._formats import import_otlp  # noqa: PLC0415

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


# ---------------------------------------------------------------------- parser


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--url",
        default=default,
        help="redis://[user:password@]host:port/db, rediss://... or unix://... "
        "(default: $OTEL_EXPORTER_REDIS_LOGS_URL, then $OTEL_EXPORTER_REDIS_URL, then redis://localhost:6379/0)",
    )
    group.add_argument(
        "--stream",
        default=default,
        help="stream key or template such as logs:{service.name} (default: $OTEL_EXPORTER_REDIS_LOGS_STREAM, "
        "then otel:logs)",
    )
    group.add_argument("--pattern", default=default, help="read every stream key matching this SCAN pattern")
    group.add_argument(
        "--key", action="append", default=default, help="read this stream key (repeat for several keys)"
    )
    group.add_argument("--timeout", type=float, default=default, help="seconds per Redis call (default 10)")
    group.add_argument(
        "--username",
        default=default,
        help="ACL user (default: $OTEL_EXPORTER_REDIS_USERNAME, then the URL's)",
    )
    group.add_argument(
        "--password",
        default=default,
        help="ACL password; prefer $OTEL_EXPORTER_REDIS_PASSWORD (a command line is visible to other users)",
    )
    deployment = parser.add_argument_group(
        "deployment (each defaults to the exporter's OTEL_EXPORTER_REDIS_* variable)"
    )
    deployment.add_argument(
        "--cluster",
        action=argparse.BooleanOptionalAction,
        default=default,
        help="a Redis Cluster; --url names any node ($OTEL_EXPORTER_REDIS_CLUSTER)",
    )
    deployment.add_argument(
        "--shards",
        type=int,
        default=default,
        help="read each stream as the exporter's N shard keys ($OTEL_EXPORTER_REDIS_LOGS_SHARDS, default 1)",
    )
    deployment.add_argument(
        "--sentinels",
        default=default,
        help="host:port,... of the sentinels to ask for the master ($OTEL_EXPORTER_REDIS_SENTINELS)",
    )
    deployment.add_argument(
        "--sentinel-master",
        default=default,
        help="the master's name at the sentinels ($OTEL_EXPORTER_REDIS_SENTINEL_MASTER, default mymaster)",
    )
    deployment.add_argument(
        "--sentinel-username",
        default=default,
        help="user at the sentinels ($OTEL_EXPORTER_REDIS_SENTINEL_USERNAME; "
        "the password only from $OTEL_EXPORTER_REDIS_SENTINEL_PASSWORD)",
    )
    deployment.add_argument(
        "--certificate", default=default, help="CA file for rediss:// ($OTEL_EXPORTER_REDIS_CERTIFICATE)"
    )
    deployment.add_argument(
        "--client-key", default=default, help="client key for mutual TLS ($OTEL_EXPORTER_REDIS_CLIENT_KEY)"
    )
    deployment.add_argument(
        "--client-certificate",
        default=default,
        help="client certificate for mutual TLS ($OTEL_EXPORTER_REDIS_CLIENT_CERTIFICATE)",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="JSON, one object per line",
    )
    output.add_argument(
        "--full",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print exception stack traces whole, under their record (text output)",
    )
    output.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default=argparse.SUPPRESS if suppress else "auto",
        help="color the output (auto: only on a terminal, and not when NO_COLOR is set)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Read, follow, inspect and forward OpenTelemetry logs kept in a Redis stream."
    )
    _common(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tail = commands.add_parser("tail", help="the newest records, and with --follow every new one")
    _common(tail, suppress=True)
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new records until Ctrl-C")
    tail.add_argument(
        "-n", "--lines", type=int, default=10, help="how many of the newest records (default 10)"
    )
    tail.add_argument(
        "--severity", help="only this severity and above: TRACE, DEBUG, INFO, WARN, ERROR, FATAL"
    )
    tail.add_argument("--trace-id", help="only records of this trace (32 hex digits)")
    tail.add_argument("--service", help="only records of this service.name")
    tail.add_argument("--block-ms", type=int, default=DEFAULT_BLOCK_MS, help=argparse.SUPPRESS)
    tail.set_defaults(run=cmd_tail)

    trace = commands.add_parser("trace", help="every record of one trace, in time order")
    _common(trace, suppress=True)
    trace.add_argument("trace_id", metavar="TRACE_ID", help="32 hex digits")
    trace.add_argument(
        "--no-index", action="store_true", help="scan the streams even if a trace index exists"
    )
    trace.set_defaults(run=cmd_trace)

    stats = commands.add_parser(
        "stats", help="length, time span, memory and consumer groups of each stream key"
    )
    _common(stats, suppress=True)
    stats.set_defaults(run=cmd_stats)

    forward = commands.add_parser(
        "forward", help="send the records to an OTLP endpoint through a consumer group (at-least-once)"
    )
    _common(forward, suppress=True)
    forward.add_argument(
        "--endpoint",
        required=True,
        help="OTLP/HTTP logs URL, e.g. http://127.0.0.1:4318/v1/logs (with --protocol grpc: 127.0.0.1:4317)",
    )
    forward.add_argument("--group", required=True, help="consumer group name (created when missing)")
    forward.add_argument("--consumer", help="consumer name (default: the host name)")
    forward.add_argument(
        "--batch-size", type=int, default=512, help="entries per key per request (default 512)"
    )
    forward.add_argument(
        "--claim-idle",
        type=float,
        default=DEFAULT_CLAIM_IDLE_MS / 1000,
        help="take over entries other consumers left pending this many seconds (default 60)",
    )
    forward.add_argument(
        "--export-timeout",
        type=float,
        default=10.0,
        help="seconds per OTLP request, retries included (default 10)",
    )
    forward.add_argument(
        "--max-backoff",
        type=float,
        default=30.0,
        help="longest wait in seconds between failed attempts (default 30)",
    )
    forward.add_argument(
        "--dead-letter",
        metavar="KEY",
        help="stream for batches the endpoint refuses for good (default: each source key + ':dead')",
    )
    forward.add_argument(
        "--compression", choices=("none", "gzip"), default="none", help="request body compression"
    )
    forward.add_argument(
        "--protocol",
        choices=("http", "grpc"),
        default="http",
        help="OTLP/HTTP (default) or OTLP/gRPC (the grpc extra; --endpoint host:4317 or http(s)://host:4317)",
    )
    forward.add_argument(
        "--progress-interval",
        type=float,
        default=60.0,
        help="seconds between progress lines on stderr: forwarded, dead-lettered, pending, lag "
        "(default 60, 0: none)",
    )
    forward.add_argument("--exit-when-idle", action="store_true", help="stop once nothing is left to forward")
    forward.add_argument("--block-ms", type=int, default=DEFAULT_BLOCK_MS, help=argparse.SUPPRESS)
    forward.set_defaults(run=cmd_forward)
    return parser


def _configure_logging() -> None:
    """Warnings (skipped entries, failed attempts) go to stderr; the OTLP exporter's only when it gives up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    otlp = logging.getLogger("opentelemetry.exporter")
    otlp.addHandler(handler)
    otlp.setLevel(logging.ERROR)
    otlp.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging()
    try:
        status: int = args.run(args, sys.stdout)
        return status
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (e.g. `| head`): not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as error:
        status, message = _failure(error)
        _say(f"error: {redact(message, _secrets(args))}")
        return status


def _failure(error: Exception) -> tuple[int, str]:
    """The exit status and the one line that explain ``error``."""
    from redis.exceptions import RedisError  # noqa: PLC0415

    if isinstance(error, UsageError | ValueError):
        return EXIT_USAGE, str(error)
    if isinstance(error, OtlpNotInstalledError):
        return EXIT_FAILURE, str(error)
    if isinstance(error, RedisError | OSError):
        return EXIT_FAILURE, describe(error)
    return EXIT_FAILURE, f"unexpected {type(error).__name__}: {error}"


def _secrets(args: argparse.Namespace) -> list[str]:
    """Every password the command line or the environment gave, to keep out of messages."""
    urls = [getattr(args, "url", None), os.environ.get("OTEL_EXPORTER_REDIS_LOGS_URL")]
    urls.append(os.environ.get("OTEL_EXPORTER_REDIS_URL"))
    found = [secret for url in urls if url for secret in secrets_of_url(url)]
    found += [getattr(args, "password", None) or "", os.environ.get("OTEL_EXPORTER_REDIS_PASSWORD", "")]
    return [secret for secret in found if secret]


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
