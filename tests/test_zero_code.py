"""Zero-code: ``opentelemetry-instrument`` and ``OTEL_CONFIG_FILE`` in real subprocesses, real servers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis
from opentelemetry.context import set_value

from otel_redis_exporter import LogEntry, RedisLogExporter, decode_fields
from otel_redis_exporter.exporter import EXPORTING_KEY

from records import make_record
from servers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]
APP = Path(__file__).resolve().parent / "apps" / "traced_jobs.py"
SERVICE = ROOT / "examples" / "zero_code_service.py"
JOBS = 3
RUN_TIMEOUT_S = 60.0

# How opentelemetry-instrument gets a stdlib logging handler: the maintained one from
# opentelemetry-instrumentation-logging; the SDK's deprecated one (as without that package); and
# the SDK's one while the other package is installed too (which then stands aside).
HANDLER_ENV = {
    "instrumentation-logging": {},
    "sdk-handler": {
        "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "logging",
    },
    "both-installed": {"OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true"},
}


def _has_instrumentation_handler() -> bool:
    try:
        __import__("opentelemetry.instrumentation.logging.handler")
    except ImportError:
        return False
    return True


def instrument_command() -> list[str]:
    """``opentelemetry-instrument`` of this interpreter's environment."""
    found = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    found = found or shutil.which("opentelemetry-instrument")
    assert found, "opentelemetry-instrument not found: install the test dependency group"
    return [found, sys.executable]


def child_env(**settings: str) -> dict[str, str]:
    """This process's environment without any OTEL_* variable, plus ``settings``.

    Traces and metrics exporters are off: the distro defaults them to OTLP, which is not installed.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_BLRP_SCHEDULE_DELAY="100",
        PYTHONUNBUFFERED="1",
    )
    env.update(settings)
    return env


def run_app(env: dict[str, str], cwd: Path) -> list[dict[str, str]]:
    """Run the traced app under opentelemetry-instrument; its spans' trace and span ids."""
    done = subprocess.run(
        [*instrument_command(), str(APP)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("TRACES ")]
    assert lines, f"no TRACES line; stdout={done.stdout!r} stderr={done.stderr!r}"
    spans: list[dict[str, str]] = json.loads(lines[-1].removeprefix("TRACES "))
    return spans


def read_stream(client: redis.Redis, key: str, at_least: int, timeout_s: float = 10.0) -> list[LogEntry]:
    """Poll ``key`` until it holds ``at_least`` entries (or the deadline passes); all of them, decoded."""
    deadline = time.monotonic() + timeout_s
    while True:
        raw = client.xrange(key)
        if len(raw) >= at_least or time.monotonic() > deadline:
            return [decode_fields(fields, entry_id=entry_id, stream=key) for entry_id, fields in raw]
        time.sleep(0.05)


def check_job_entries(entries: list[LogEntry], spans: list[dict[str, str]], service: str) -> None:
    """Each span's INFO and ERROR records carry its ids, the service, typed extras and the exception."""
    app_entries = [entry for entry in entries if entry.scope_name == "traced_jobs"]
    assert len(app_entries) == 2 * JOBS + 1, [entry.body for entry in entries]
    assert len(spans) == JOBS
    for n, span in enumerate(spans):
        assert span["trace_id"] != "0" * 32
        started, crashed = [entry for entry in app_entries if entry.trace_id == span["trace_id"]]
        for entry in (started, crashed):
            assert entry.span_id == span["span_id"]
            assert entry.service_name == service
        assert started.body == f"job {n} started"
        assert started.severity_text == "INFO"
        assert started.attributes["job.number"] == n
        assert started.attributes["job.ratio"] == n / 4
        assert type(started.attributes["job.ratio"]) is float
        assert started.attributes["job.ok"] is (n % 2 == 0)
        assert started.attributes["job.tags"] == ["a", str(n)]
        assert crashed.body == f"job {n} crashed"
        assert crashed.severity_text == "ERROR"
        assert crashed.attributes["exception.type"] == "ValueError"
        assert crashed.attributes["exception.message"] == f"job {n} failed"
        assert crashed.attributes["exception.stacktrace"].startswith("Traceback")
    (done,) = [entry for entry in app_entries if entry.body == "all jobs done"]
    assert done.trace_id is None
    assert not [entry for entry in entries if (entry.scope_name or "").startswith("otel_redis_exporter")]


@pytest.mark.parametrize("handler", list(HANDLER_ENV))
def test_instrument_sends_app_logs_with_service_and_trace_ids(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path, handler: str, mode: str
) -> None:
    """OTEL_LOGS_EXPORTER=redis: every setting from the environment, logs joined to their spans."""
    if handler != "sdk-handler" and not _has_instrumentation_handler():
        pytest.skip("opentelemetry-instrumentation-logging >= 0.61b0 is not installed")
    env = child_env(
        OTEL_LOGS_EXPORTER="redis",
        OTEL_SERVICE_NAME="billing-worker",
        OTEL_RESOURCE_ATTRIBUTES="service.name=overridden,deployment.environment=ci",
        OTEL_EXPORTER_REDIS_URL=redis_url,
        OTEL_EXPORTER_REDIS_LOGS_STREAM="jobs:{service.name}",
        OTEL_EXPORTER_REDIS_MODE=mode,
        **HANDLER_ENV[handler],
    )
    spans = run_app(env, tmp_path)

    entries = read_stream(redis_client, "jobs:billing-worker", 2 * JOBS + 1)
    check_job_entries(entries, spans, "billing-worker")
    stacks = [entry.attributes["exception.stacktrace"] for entry in entries if entry.severity_text == "ERROR"]
    assert len(stacks) == JOBS
    assert all('raise ValueError(f"job {n} failed")' in stack for stack in stacks)
    assert entries[0].resource["deployment.environment"] == "ci"
    assert entries[0].resource["telemetry.auto.version"]  # set by opentelemetry-instrument
    assert redis_client.keys("*") == ["jobs:billing-worker"]


def test_instrument_with_redis_down_says_so_on_stderr_and_exits_soon(tmp_path: Path, mode: str) -> None:
    """Nothing listens at the URL: the app runs, exits within seconds, and stderr says why."""
    if not _has_instrumentation_handler():
        pytest.skip("opentelemetry-instrumentation-logging >= 0.61b0 is not installed")
    env = child_env(
        OTEL_LOGS_EXPORTER="redis",
        OTEL_EXPORTER_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        OTEL_EXPORTER_REDIS_MODE=mode,
    )
    started = time.monotonic()
    done = subprocess.run(
        [*instrument_command(), str(APP)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "otel_redis_exporter: WARNING: Could not write log records" in done.stderr
    assert "cannot reach the server" in done.stderr
    assert "Shutdown gave up" in done.stderr
    assert elapsed < 10  # interpreter start and instrumentation included; the exporter gives up in ~1 s


def test_instrument_without_a_handler_exports_nothing_and_runs(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """With no logging handler enabled, the app still runs and nothing is written (no surprise)."""
    env = child_env(
        OTEL_LOGS_EXPORTER="redis",
        OTEL_EXPORTER_REDIS_URL=redis_url,
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="logging",
    )
    spans = run_app(env, tmp_path)
    assert len(spans) == JOBS
    assert redis_client.keys("*") == []


def test_config_file_passes_the_constructor_keywords(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path, mode: str
) -> None:
    """OTEL_CONFIG_FILE: a `redis:` exporter's keys are RedisLogExporter's keyword arguments."""
    pytest.importorskip("opentelemetry.configuration", reason="needs opentelemetry-configuration")
    if not _has_instrumentation_handler():
        pytest.skip("opentelemetry-instrumentation-logging >= 0.61b0 is not installed")
    config = tmp_path / "otel.yaml"
    config.write_text(
        f"""\
file_format: "1.0"
resource:
  attributes:
    - name: service.name
      value: declared-jobs
logger_provider:
  processors:
    - batch:
        schedule_delay: 100
        exporter:
          redis:
            url: ${{TEST_REDIS_URL}}
            stream: "declared:{{service.name}}"
            max_value_length: 16
            timeout: 5.0
            mode: {mode}
tracer_provider:
  processors:
    - simple:
        exporter:
          console:
""",
        encoding="utf-8",
    )
    env = child_env(OTEL_CONFIG_FILE=str(config), TEST_REDIS_URL=redis_url)
    spans = run_app(env, tmp_path)

    entries = read_stream(redis_client, "declared:declared-jobs", 2 * JOBS + 1)
    check_job_entries(entries, spans, "declared-jobs")
    crashed = [entry for entry in entries if entry.severity_text == "ERROR"]
    assert len(crashed) == JOBS
    for entry in crashed:
        assert "exception.stacktrace" in entry.truncated  # max_value_length reached the exporter
        assert len(entry.attributes["exception.stacktrace"]) == 16


def test_config_file_with_an_unknown_keyword_leaves_the_app_running(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """A misspelt exporter key fails the SDK setup (reported on stderr); the app itself still runs."""
    pytest.importorskip("opentelemetry.configuration", reason="needs opentelemetry-configuration")
    config = tmp_path / "otel.yaml"
    config.write_text(
        f"""\
file_format: "1.0"
logger_provider:
  processors:
    - batch:
        exporter:
          redis:
            url: {redis_url}
            max_len: 10
""",
        encoding="utf-8",
    )
    done = subprocess.run(
        [*instrument_command(), str(APP)],
        env=child_env(OTEL_CONFIG_FILE=str(config)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "max_len" in done.stderr
    assert "TRACES " in done.stdout
    assert redis_client.keys("*") == []


def test_records_logged_during_an_export_are_not_exported(redis_url: str, redis_client: redis.Redis) -> None:
    """Records created in an export's context are dropped by the exporter (the SDK handler has no filter)."""
    exporter = RedisLogExporter(url=redis_url)
    try:
        during = make_record("redis-py DEBUG line", context=set_value(EXPORTING_KEY, True))
        assert exporter.export([during, make_record("application record")]).name == "SUCCESS"
    finally:
        exporter.shutdown()
    assert [fields["body"] for _, fields in redis_client.xrange("otel:logs")] == ["application record"]


# --------------------------------------------------------------------------
# the example service
# --------------------------------------------------------------------------


def get_json(url: str) -> dict[str, Any]:
    """GET ``url``; the JSON body, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (a loopback http:// URL)
            body = response.read()
    except urllib.error.HTTPError as error:
        body = error.read()
    result: dict[str, Any] = json.loads(body)
    return result


def test_example_service_logs_each_request_under_its_trace_id(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """examples/zero_code_service.py, instrumented: each request's logs carry that request's trace id."""
    port = free_port()
    env = child_env(
        OTEL_SERVICE_NAME="shop",
        OTEL_LOGS_EXPORTER="redis",
        OTEL_EXPORTER_REDIS_URL=redis_url,
        SERVICE_HOST="127.0.0.1",
        SERVICE_PORT=str(port),
        # Older opentelemetry-instrumentation-logging releases have no handler: use the SDK's.
        **({} if _has_instrumentation_handler() else HANDLER_ENV["sdk-handler"]),
    )
    with (tmp_path / "out.txt").open("w") as out, (tmp_path / "err.txt").open("w") as err:
        process = subprocess.Popen(
            [*instrument_command(), str(SERVICE)], env=env, cwd=tmp_path, stdout=out, stderr=err
        )
    try:
        base = f"http://127.0.0.1:{port}"
        first = wait_until(
            lambda: get_json(f"{base}/order/1"), timeout=30, what="the example service to answer"
        )
        replies = [first] + [get_json(f"{base}/order/{n}") for n in (2, 3, 4)]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=RUN_TIMEOUT_S)
    assert process.returncode == 0, (tmp_path / "err.txt").read_text()

    entries = read_stream(redis_client, "otel:logs", 8)
    by_trace: dict[str | None, list[LogEntry]] = {}
    for entry in entries:
        by_trace.setdefault(entry.trace_id, []).append(entry)
    for order, reply in enumerate(replies, start=1):
        logs = by_trace[reply["trace_id"]]
        assert [entry.attributes["order.id"] for entry in logs] == [order, order]
        assert all(entry.service_name == "shop" for entry in logs)
        assert len({entry.span_id for entry in logs}) == 1
    (rejected,) = by_trace[replies[3]["trace_id"]][1:]
    assert rejected.attributes["exception.type"] == "ValueError"
    assert len(by_trace) == 4
