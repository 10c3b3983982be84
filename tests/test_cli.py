"""The `otel-redis` command line, run through its installed entry point in a subprocess."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk.resources import Resource

from records import TRACE_ID, make_record, span_context
from servers import ServerProcess, free_port, wait_until, write_records

TRACE = f"{TRACE_ID:032x}"
ANSI = "\033["


def otel_redis_path() -> str:
    """The console script installed next to the running interpreter."""
    path = Path(sys.executable).parent / "otel-redis"
    found = str(path) if path.exists() else shutil.which("otel-redis")
    assert found, "the otel-redis console script is not installed (pip install -e .)"
    return found


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the exporter's variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_EXPORTER_REDIS")}
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run otel-redis to completion."""
    return subprocess.run(
        [otel_redis_path(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else clean_env(),
        stdin=subprocess.DEVNULL,
        check=False,
    )


def export(url: str, records: list[Any], **options: Any) -> None:
    """Write records through the exporter, asserting that each landed."""
    write_records(records, url=url, **options)


@pytest.fixture
def logs(redis_url: str) -> str:
    """A stream with records of two services, four severities and one trace; returns the URL."""
    records = [
        make_record("debug line", {"n": 1}, severity=SeverityNumber.DEBUG),
        make_record("info line", {"n": 2}, severity=SeverityNumber.INFO, context=span_context()),
        make_record(
            "warn line",
            {"n": 3},
            severity=SeverityNumber.WARN,
            resource=Resource({"service.name": "billing-service"}),
            context=span_context(),
        ),
        make_record("error line", {"n": 4, "why": "boom"}, severity=SeverityNumber.ERROR),
    ]
    export(redis_url, records, trace_index_ttl=60)
    return redis_url


def test_tail_prints_aligned_plain_lines_when_piped(logs: str) -> None:
    """tail: one aligned line per record, oldest first, no color codes in a pipe."""
    result = run("tail", "--url", logs)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert ANSI not in result.stdout
    assert "debug line" in lines[0]
    assert "error line" in lines[3]
    body_columns = {
        line.index(body) for line, body in zip(lines, ["debug", "info", "warn", "error"], strict=True)
    }
    assert len(body_columns) == 1  # bodies start in the same column
    assert "why=boom" in lines[3]
    assert f"trace={TRACE}" in lines[1]


def test_tail_filters_by_severity_service_and_trace(logs: str) -> None:
    """--severity keeps that level and above; --service and --trace-id narrow further."""
    warn_up = run("tail", "--url", logs, "--severity", "WARN").stdout
    assert "warn line" in warn_up
    assert "error line" in warn_up
    assert "info line" not in warn_up
    service = run("tail", "--url", logs, "--service", "billing-service").stdout.splitlines()
    assert len(service) == 1
    assert "warn line" in service[0]
    traced = run("tail", "--url", logs, "--trace-id", TRACE.upper(), "-n", "1").stdout.splitlines()
    assert len(traced) == 1
    assert "warn line" in traced[0]


def test_tail_json_is_one_object_per_line(logs: str) -> None:
    """--json: machine-readable records with types kept."""
    result = run("--json", "tail", "--url", logs, "-n", "2")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["body"] for r in records] == ["warn line", "error line"]
    assert records[1]["attributes"] == {"n": 4, "why": "boom"}
    assert records[1]["severity_text"] == "ERROR"
    assert records[0]["trace_id"] == TRACE
    assert records[0]["service_name"] == "billing-service"


def test_unknown_severity_is_a_usage_error(logs: str) -> None:
    """A wrong --severity exits 2 and names the allowed values."""
    result = run("tail", "--url", logs, "--severity", "LOUD")
    assert result.returncode == 2
    assert "WARN" in result.stderr
    assert "Traceback" not in result.stderr


def test_trace_prints_the_trace_in_time_order(logs: str) -> None:
    """trace ID: the trace's records, with and without the index; an unknown trace exits 1."""
    for extra in ([], ["--no-index"]):
        result = run("trace", TRACE, "--url", logs, *extra)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 2
        assert "info line" in lines[0]
        assert "warn line" in lines[1]
    missing = run("trace", "0" * 31 + "1", "--url", logs)
    assert missing.returncode == 1
    assert "no log records" in missing.stderr


def test_stats_shows_length_times_memory_and_groups(logs: str, redis_client: redis.Redis) -> None:
    """stats: one row per key, and each group's pending count and lag; --json carries the same."""
    redis_client.xgroup_create("otel:logs", "workers", id="0")
    redis_client.xreadgroup("workers", "w1", {"otel:logs": ">"}, count=1)
    text = run("stats", "--url", logs)
    assert text.returncode == 0, text.stderr
    assert "otel:logs" in text.stdout
    assert "workers" in text.stdout
    [stream] = json.loads(run("stats", "--url", logs, "--json").stdout)
    assert stream["length"] == 4
    assert stream["memory_bytes"] > 0
    assert stream["first_time"].endswith("Z")
    assert stream["groups"] == [
        {
            "name": "workers",
            "consumers": 1,
            "pending": 1,
            "lag": 3,
            "last_delivered_id": stream["first_entry_id"],
        }
    ]


def test_environment_variables_configure_url_and_stream(redis_url: str) -> None:
    """Without --url/--stream the exporter's environment variables apply (a template reads all its keys)."""
    export(
        redis_url,
        [make_record("from env", resource=Resource({"service.name": "api"}))],
        stream="logs:{service.name}",
    )
    env = clean_env(OTEL_EXPORTER_REDIS_URL=redis_url, OTEL_EXPORTER_REDIS_LOGS_STREAM="logs:{service.name}")
    result = run("tail", env=env)
    assert result.returncode == 0, result.stderr
    assert "from env" in result.stdout


def test_bad_url_is_a_usage_error() -> None:
    """A URL with another scheme: exit 2, one clear line, no traceback."""
    result = run("tail", "--url", "http://127.0.0.1:6379")
    assert result.returncode == 2
    assert "invalid URL: it must start with one of redis://" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_server_exits_1_with_the_reason() -> None:
    """Nothing listening: exit 1 saying the server cannot be reached."""
    result = run("stats", "--url", f"redis://127.0.0.1:{free_port()}/0", "--timeout", "2")
    assert result.returncode == 1
    assert "cannot reach the server" in result.stderr
    assert "Traceback" not in result.stderr


def test_wrong_password_exits_1_and_never_shows_it(start_server: Callable[..., ServerProcess]) -> None:
    """A wrong password: exit 1, 'authentication failed', the password not echoed."""
    server = start_server(config={"requirepass": "right-secret"})
    result = run("tail", "--url", f"redis://:wrong-secret@{server.host}:{server.port}/0")
    assert result.returncode == 1
    assert "authentication failed" in result.stderr
    assert "wrong-secret" not in result.stderr + result.stdout


@pytest.fixture
def follower(logs: str) -> Iterator[subprocess.Popen[str]]:
    """`otel-redis tail --follow` running in the background; killed if the test leaves it running."""
    process = subprocess.Popen(
        [otel_redis_path(), "tail", "--follow", "-n", "1", "--url", logs, "--block-ms", "100"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    yield process
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=10)


def read_line(process: subprocess.Popen[str], timeout: float = 10) -> str:
    """The next line of the process's stdout, within ``timeout`` seconds."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "no output in time"
    return process.stdout.readline()


def test_follow_prints_new_records_and_ctrl_c_exits_cleanly(
    follower: subprocess.Popen[str], logs: str
) -> None:
    """tail --follow prints records as they come; SIGINT ends it with 130 and no traceback."""
    assert "error line" in read_line(follower)
    export(logs, [make_record("fresh line")])
    assert "fresh line" in read_line(follower)
    follower.send_signal(signal.SIGINT)
    _, stderr = follower.communicate(timeout=10)
    assert follower.returncode == 130
    assert "Traceback" not in stderr


def test_colors_only_on_a_terminal(logs: str) -> None:
    """On a TTY the severity is colored; NO_COLOR turns it off again."""

    def on_tty(env: dict[str, str]) -> str:
        main, child = pty.openpty()
        process = subprocess.Popen(
            [otel_redis_path(), "tail", "--url", logs, "-n", "1"], stdout=child, stderr=child, env=env
        )
        os.close(child)
        output = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
        os.close(main)
        process.wait(timeout=10)
        return output.decode()

    colored = on_tty(clean_env())
    assert "error line" in colored
    assert "\033[31mERROR" in colored
    plain = on_tty(clean_env(NO_COLOR="1"))
    assert "error line" in plain
    assert ANSI not in plain


def test_help_lists_the_commands() -> None:
    """--help names the four commands and exits 0."""
    result = run("--help")
    assert result.returncode == 0
    for command in ("tail", "trace", "stats", "forward"):
        assert command in result.stdout


# --------------------------------------------------------------------------
# a safe terminal, one-line errors, hints for empty results
# --------------------------------------------------------------------------

FORGED = "\x1b[2K\x1b[1Glogin ok for admin\x1b]0;owned\x07\r\n\x00\x08\x7f\x9b31m\u202etxt"


def test_tail_shows_every_control_character_as_an_escape(redis_url: str) -> None:
    """Escape sequences in a body, attribute, key and service name reach the terminal only as visible text."""
    export(
        redis_url,
        [make_record(FORGED, {f"k{FORGED}": FORGED}, resource=Resource({"service.name": f"svc{FORGED}"}))],
    )
    result = subprocess.run(
        [otel_redis_path(), "tail", "--url", redis_url, "--color", "never"],
        capture_output=True,
        timeout=30,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split(b"\n")
    assert lines[-1] == b""
    assert len(lines) == 2, result.stdout
    text = lines[0].decode("utf-8")
    controls = [char for char in text if ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F]
    assert controls == [], controls
    assert "\u202e" not in text
    assert (
        "\\x1b[2K\\x1b[1Glogin ok for admin\\x1b]0;owned\\x07\\r\\n\\x00\\x08\\x7f\\x9b31m\\u202etxt" in text
    )


def test_tail_json_keeps_control_characters_exactly(redis_url: str) -> None:
    """--json output is exact: the body decodes to the very string that was logged."""
    export(redis_url, [make_record(FORGED)])
    result = run("--json", "tail", "--url", redis_url)
    assert json.loads(result.stdout)["body"] == FORGED


def test_stats_reports_a_missing_right_as_one(server: ServerProcess, redis_url: str) -> None:
    """stats as the writer user (~otel:* +xadd): exit 1 naming the command to grant, not 'no keys'."""
    export(redis_url, [make_record(str(n)) for n in range(100)])
    with server.client() as client:
        client.execute_command(
            "ACL", "SETUSER", "cli-writer", "reset", "on", ">writer-pw", "~otel:*", "+xadd"
        )
    try:
        result = run("stats", "--url", f"redis://cli-writer:writer-pw@{server.host}:{server.port}/0")
    finally:
        with server.client() as client:
            client.execute_command("ACL", "DELUSER", "cli-writer")
    assert result.returncode == 1
    assert "NOPERM" in result.stderr
    assert "grant it +xinfo" in result.stderr
    assert "no stream keys" not in result.stdout + result.stderr
    assert "writer-pw" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_key_of_another_type_is_one_line(redis_url: str, redis_client: redis.Redis) -> None:
    """tail on a string key: exit 1, one line saying the key holds another data type."""
    redis_client.set("otel:logs", "not a stream")
    result = run("tail", "--url", redis_url)
    assert result.returncode == 1
    assert "holds another data type" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unknown_url_option_is_a_usage_error() -> None:
    """?foo=bar: exit 2 with one line naming the parameter, no traceback."""
    result = run("tail", "--url", "redis://127.0.0.1:6379/0?foo=bar")
    assert result.returncode == 2
    assert "query parameter 'foo'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("arguments", "hint"),
    [
        (["--stream", "nosuch", "tail"], "no such stream key: nosuch"),
        (["--stream", "nosuch", "stats"], "no such stream key: nosuch"),
        (["--pattern", "nothing:*", "tail"], "no stream key matches the pattern"),
        (["tail", "--severity", "FATAL"], "no record matched"),
    ],
)
def test_an_empty_result_says_why(logs: str, arguments: list[str], hint: str) -> None:
    """Nothing to show: exit 0, no output, and a hint on stderr saying why."""
    result = run("--url", logs, *arguments)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert hint in result.stderr


def test_follow_survives_a_server_restart_and_prints_every_record_once(
    start_server: Callable[..., ServerProcess],
) -> None:
    """tail --follow across a restart: one notice on stderr, then it resumes; every record once."""
    server = start_server()
    export(server.url, [make_record(f"before{i}") for i in range(3)])
    command = [otel_redis_path(), "tail", "--follow", "--json", "-n", "3", "--url", server.url]
    process = subprocess.Popen(
        [*command, "--timeout", "1", "--block-ms", "100"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    lines: list[str] = []  # several lines can come in one read: collect them in a thread
    collector = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
    collector.start()
    try:
        wait_until(lambda: len(lines) >= 3, timeout=10, what="the newest records")
        server.restart()
        export(server.url, [make_record(f"after{i}") for i in range(5)])
        wait_until(lambda: len(lines) >= 8, timeout=15, what="the records written after the restart")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        collector.join(timeout=10)  # every line to the end of stdout, duplicates included
        stderr = process.stderr.read() if process.stderr else ""
    assert [json.loads(line)["body"] for line in lines] == [f"before{i}" for i in range(3)] + [
        f"after{i}" for i in range(5)
    ], "a record was lost or printed twice"
    assert stderr.count("lost the server") == 1, stderr
    assert "Traceback" not in stderr


def test_full_prints_stack_traces_whole(redis_url: str) -> None:
    """--full prints a long stack trace whole under its record; without it the line stays one line."""
    frames = "".join(f'  File "app.py", line {n}, in f{n}\n    step({n})\n' for n in range(40))
    trace = f"Traceback (most recent call last):\n{frames}ValueError: the end"
    export(redis_url, [make_record("failed", {"exception.stacktrace": trace, "k": "v"})])
    full = run("tail", "--url", redis_url, "-n", "1", "--full")
    assert full.returncode == 0, full.stderr
    first, *below = full.stdout.splitlines()
    assert "failed" in first
    assert "k=v" in first
    assert "exception.stacktrace" not in first
    assert [line[4:] for line in below] == trace.splitlines()
    short = run("tail", "--url", redis_url, "-n", "1")
    assert len(short.stdout.splitlines()) == 1
    assert "ValueError: the end" not in short.stdout
