"""``otel-redis``, its parser and entry point: read, follow, inspect and forward the log records in a stream.

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
import logging
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from .._errors import describe
from .._fast import FAST_PATH
from .._log import logger
from .._missing import OtlpNotInstalledError
from .._redact import redact, secrets_of_url
from ..read import DEFAULT_BLOCK_MS, DEFAULT_CLAIM_IDLE_MS
from .commands import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    PROG,
    UsageError,
    cmd_forward,
    cmd_stats,
    cmd_tail,
    cmd_trace,
    say,
)


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


def version_text() -> str:
    """The installed version and which write path is active (compiled fast path or pure Python)."""
    try:
        installed = metadata.version("otel-redis-exporter")
    except metadata.PackageNotFoundError:  # run from a source tree
        installed = "unknown"
    path = "compiled fast path" if FAST_PATH else "pure Python"
    return f"{PROG} {installed} ({path})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Read, follow, inspect and forward OpenTelemetry logs kept in a Redis stream."
    )
    parser.add_argument("--version", action="version", version=version_text())
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
        say(f"error: {redact(message, _secrets(args))}")
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
