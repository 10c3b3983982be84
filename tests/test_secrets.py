"""Passwords stay secret and URLs are checked before use: every URL form, in every output.

A distinctive password is put into each URL form the documentation accepts or a user might mistype;
whatever the exporter, the reader or the CLI then shows (exceptions, reprs, log lines at DEBUG,
the CLI's stdout and stderr) must not contain it, nor any long piece of it.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk._logs.export import LogRecordExportResult

from otel_redis_exporter import RedisLogExporter, RedisLogReader
from otel_redis_exporter._config import resolve_config
from otel_redis_exporter._redact import redact, redact_url
from test_cli import clean_env, run

from records import make_record
from servers import free_port

SECRET = "Qz7Kx9Wv"  # noqa: S105 (a distinctive test value, not a credential)
HALF_A, HALF_B = "Qz7Kx", "Wv3Jp"


def _pieces(password: str) -> list[str]:
    """The password and every piece of it of 5 characters or more between special characters."""
    pieces = [password]
    for separator in "/#?@:%":
        pieces += [part for part in password.split(separator) if len(part) >= 5]
    return list(dict.fromkeys(pieces))


def _url_forms(port: int) -> list[tuple[str, str]]:
    """(url, password) pairs: valid forms with a wrong password, and broken forms."""
    host = f"127.0.0.1:{port}"
    return [
        (f"redis://user:{SECRET}@{host}/0", SECRET),
        (f"redis://:{SECRET}@{host}/0", SECRET),
        (f"redis://{host}/0?password={SECRET}", SECRET),
        (f"redis://{host}/0?socket_timeout=2&password={SECRET}", SECRET),
        (f"redis://:{quote(f'{HALF_A}/#?@{HALF_B}', safe='')}@{host}/0", f"{HALF_A}/#?@{HALF_B}"),
        (f"redis://{host}/0?password={quote(f'{HALF_A}&={HALF_B}', safe='')}", f"{HALF_A}&={HALF_B}"),
        (f"redis://:{HALF_A}/{HALF_B}@{host}/0", f"{HALF_A}/{HALF_B}"),
        (f"redis://:{HALF_A}#{HALF_B}@{host}/0", f"{HALF_A}#{HALF_B}"),
        (f"redis://:{HALF_A}?{HALF_B}@{host}/0", f"{HALF_A}?{HALF_B}"),
        (f"redis://u:12#{HALF_A}{HALF_B}@{host}/0", f"12#{HALF_A}{HALF_B}"),
        (f"redis//:{SECRET}@{host}/0", SECRET),
        (f"redis://:{SECRET}@127.0.0.1:99999/0", SECRET),
        (f"redis://:{SECRET}@127.0.0.1:abc/0", SECRET),
        (f"redis://:{SECRET}@{host}/0?socket_timeout=x", SECRET),
        (f"redis://:{SECRET}@{host}/0?foo=bar", SECRET),
        (f"redis://:{SECRET}@{host}/zero", SECRET),
    ]


class _Everything(logging.Handler):
    """Every log record of every logger, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self._lock_lines = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_lines:
            self.lines.append(self.format(record))


@pytest.fixture
def every_log_line() -> Iterator[list[str]]:
    """Every log line of the test, at DEBUG, from every logger (redis-py's included)."""
    handler = _Everything()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _assert_hidden(password: str, where: str, text: str) -> None:
    for piece in _pieces(password):
        assert piece not in text, f"{piece!r} of the password shows in {where}: {text[:300]!r}"


@pytest.mark.parametrize("form", range(len(_url_forms(1))))
def test_no_url_form_shows_its_password_anywhere(form: int, every_log_line: list[str]) -> None:
    """Construct, repr, export to a closed port and read: the password shows in no output."""
    url, password = _url_forms(free_port())[form]
    shown: list[tuple[str, str]] = []
    try:
        exporter = RedisLogExporter(url=url, timeout=0.5, buffer_max_records=0)
    except ValueError as error:
        shown += [("the ValueError", f"{error!s} {error!r} {error.__cause__!r} {error.__context__!r}")]
    else:
        shown += [("repr(exporter)", repr(exporter)), ("repr(config)", repr(exporter.config))]
        try:
            assert exporter.export([make_record("x")]) is LogRecordExportResult.FAILURE
        finally:
            exporter.shutdown()
    try:
        reader = RedisLogReader(url=url, timeout=0.5)
    except ValueError as error:
        shown.append(("the reader's ValueError", f"{error!s} {error!r}"))
    else:
        shown.append(("repr(reader)", repr(reader)))
    shown.append(("the log", "\n".join(every_log_line)))
    for where, text in shown:
        _assert_hidden(password, where, text)


@pytest.mark.parametrize("form", range(len(_url_forms(1))))
def test_cli_never_shows_a_url_password(form: int) -> None:
    """The CLI with each URL form: one line, no traceback, no piece of the password."""
    url, password = _url_forms(free_port())[form]
    result = run("stats", "--url", url, "--timeout", "1")
    output = result.stdout + result.stderr
    assert result.returncode in (1, 2), output
    assert "Traceback" not in output
    assert len(result.stderr.strip().splitlines()) == 1, output
    _assert_hidden(password, "the CLI output", output)


def test_password_from_the_environment_never_shows_in_the_cli() -> None:
    """OTEL_EXPORTER_REDIS_PASSWORD against a closed port: the error names the problem, not the password."""
    env = clean_env(
        OTEL_EXPORTER_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", OTEL_EXPORTER_REDIS_PASSWORD=SECRET
    )
    result = run("tail", "--timeout", "1", env=env)
    assert result.returncode == 1
    assert "cannot reach the server" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_password_argument_is_hidden_and_wins_over_the_url() -> None:
    """password= stays out of the reprs and replaces the URL's own password."""
    config = resolve_config(url="redis://u:in-url@h/0", password=SECRET, environ={})
    assert config.password == SECRET
    assert SECRET not in repr(config)
    assert "in-url" not in repr(config)
    assert SECRET not in repr(RedisLogExporter(url="redis://h/0", password=SECRET))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://app:pw@db:6379/1", "redis://app:***@db:6379/1"),
        ("redis://db/0?password=pw&db=1", "redis://db/0?password=***&db=1"),
        ("redis://db/0?pass%77ord=pw", "redis://db/0?password=***"),
        ("redis://db/0?auth_token=pw", "redis://db/0?auth_token=***"),
        ("redis://:p/w@db/0", "<invalid URL>"),
        ("redis://u:1#pw@db/0", "<invalid URL>"),
        ("http://u:pw@db/0", "<invalid URL>"),
        ("redis://db:6379/0", "redis://db:6379/0"),
    ],
)
def test_redact_url_hides_every_secret_form(url: str, shown: str) -> None:
    """redact_url masks user:password@ and secret query values, and refuses to split broken URLs."""
    assert redact_url(url) == shown


def test_redact_finds_urls_and_secrets_inside_free_text() -> None:
    """Inside a message: URLs are redacted, a mistyped scheme's user:password@ too, and given secrets."""
    text = f"failed for redis://u:{SECRET}@h/0, redis//:{SECRET}@h/0 and token={SECRET} ({SECRET})"
    cleaned = redact(text, [SECRET])
    assert SECRET not in cleaned
    assert "redis://u:***@h/0," in cleaned


# A secret of capitals only; every other part of the URL has none, so finding it is a leak.
_SECRET_TEXT = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=8, max_size=16)
_NOISE = st.text(alphabet="abcdefgh0123456789/#?@:%&=.-_[]", max_size=6)
_WORD = st.text(alphabet="abcdefgh0123456789", min_size=1, max_size=8)


@st.composite
def _urls_around_a_secret(draw: st.DrawFn) -> tuple[str, str]:
    secret = draw(_SECRET_TEXT)
    scheme = draw(st.sampled_from(["redis://", "rediss://", "unix://", "redis//", "redis:/", "http://", ""]))
    user = draw(st.sampled_from(["", "app"]))
    password = draw(_NOISE) + draw(st.sampled_from([secret, quote(secret, safe="")])) + draw(_NOISE)
    host = draw(st.sampled_from(["h", "127.0.0.1", "[::1]", "", "h:6379", "h:99999", "h:x"]))
    path = draw(st.sampled_from(["", "/0", "/1", "/x", "/0/extra"]))
    where = draw(st.sampled_from(["userinfo", "query", "both"]))
    query_name = draw(st.sampled_from(["password", "pass%77ord", "token", "auth"]))
    query = draw(st.sampled_from(["", f"&socket_timeout={draw(_WORD)}", f"&{draw(_WORD)}=1"]))
    userinfo = f"{user}:{password}@" if where in ("userinfo", "both") else ""
    tail = (
        f"?{query_name}={quote(password, safe='') if draw(st.booleans()) else password}"
        if where != "userinfo"
        else ""
    )
    return f"{scheme}{userinfo}{host}{path}{tail}{query}", secret


@settings(max_examples=400, deadline=None)
@given(_urls_around_a_secret())
def test_generated_urls_never_show_their_secret(case: tuple[str, str]) -> None:
    """Whatever the URL around a secret, construction's error, the reprs and redact() never show it."""
    url, secret = case
    outputs = [redact_url(url), redact(f"using {url}!")]
    try:
        config = resolve_config(url=url, environ={})
    except ValueError as error:
        outputs.append(str(error))
    else:
        outputs.append(repr(config))
    env_config = resolve_config(environ={"OTEL_EXPORTER_REDIS_URL": url})
    outputs.append(repr(env_config))
    for output in outputs:
        assert secret not in output, output


# --------------------------------------------------------------------------
# an invalid environment URL connects nowhere
# --------------------------------------------------------------------------

_connects: list[object] = []
_watching = threading.Event()


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.connect" and _watching.is_set():
        _connects.append(args[1])


sys.addaudithook(_audit)  # audit hooks cannot be removed: this one only records while watched


@pytest.fixture
def connection_attempts() -> Iterator[list[object]]:
    """Every socket.connect address of the process during the test (a Python audit hook)."""
    _connects.clear()
    _watching.set()
    try:
        yield _connects
    finally:
        _watching.clear()


@pytest.mark.parametrize(
    "variables",
    [
        {"OTEL_EXPORTER_REDIS_URL": f"redis://:{SECRET}@127.0.0.1:abc/0"},
        {"OTEL_EXPORTER_REDIS_LOGS_URL": "redis://127.0.0.1:6379/0?foo=bar"},
        {"OTEL_EXPORTER_REDIS_URL": "http://127.0.0.1:6379/0"},
        {"OTEL_EXPORTER_REDIS_SENTINELS": "127.0.0.1:notaport"},
        {"OTEL_EXPORTER_REDIS_URL": "redis://127.0.0.1:6379/3", "OTEL_EXPORTER_REDIS_CLUSTER": "true"},
    ],
)
def test_an_invalid_environment_address_never_connects(
    mode: str,
    variables: dict[str, str],
    connection_attempts: list[object],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bad address variable disables the exporter: FAILURE, counted as invalid_config, no connect."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.ERROR, logger="otel_redis_exporter"):
        exporter = RedisLogExporter(mode=mode, timeout=1)
    try:
        assert "disabled" in caplog.text
        assert exporter.export([make_record(str(n)) for n in range(3)]) is LogRecordExportResult.FAILURE
        assert exporter.stats().dropped == {"invalid_config": 3}
        assert "disabled=True" in repr(exporter)
    finally:
        exporter.shutdown()
    assert connection_attempts == []
    assert SECRET not in caplog.text


def test_the_connection_watch_sees_a_valid_address(connection_attempts: list[object]) -> None:
    """The audit hook does see connects: a valid URL to a closed port is attempted at that port."""
    port = free_port()
    exporter = RedisLogExporter(url=f"redis://127.0.0.1:{port}/0", timeout=0.5, buffer_max_records=0)
    try:
        assert exporter.export([make_record()]) is LogRecordExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert ("127.0.0.1", port) in connection_attempts
