"""Configuration: argument > environment variable > default, validated in one place."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from typing import Any

import pytest
from redis.exceptions import ResponseError

from otel_redis_exporter._client import make_pool, url_options
from otel_redis_exporter._config import (
    DEFAULT_MAX_VALUE_LENGTH,
    DEFAULT_MAXLEN,
    DEFAULT_STREAM,
    DEFAULT_TIMEOUT_S,
    DEFAULT_URL,
    resolve_config,
)
from otel_redis_exporter._errors import describe
from otel_redis_exporter._redact import redact_url


def test_defaults_without_arguments_or_environment() -> None:
    """With nothing set, every setting takes its documented default."""
    config = resolve_config(environ={})
    assert config.url == DEFAULT_URL
    assert config.stream == DEFAULT_STREAM
    assert config.maxlen == DEFAULT_MAXLEN
    assert config.retention_s is None
    assert config.timeout_s == DEFAULT_TIMEOUT_S
    assert config.max_value_length == DEFAULT_MAX_VALUE_LENGTH


def test_environment_overrides_defaults() -> None:
    """Each OTEL_EXPORTER_REDIS_* variable sets its option."""
    config = resolve_config(
        environ={
            "OTEL_EXPORTER_REDIS_LOGS_URL": "redis://db:6380/2",
            "OTEL_EXPORTER_REDIS_LOGS_STREAM": "logs:{service.name}",
            "OTEL_EXPORTER_REDIS_LOGS_MAXLEN": "5000",
            "OTEL_EXPORTER_REDIS_TIMEOUT": "2.5",
            "OTEL_EXPORTER_REDIS_LOGS_MAX_VALUE_LENGTH": "1024",
        }
    )
    assert config.url == "redis://db:6380/2"
    assert config.stream == "logs:{service.name}"
    assert config.maxlen == 5000
    assert config.timeout_s == 2.5
    assert config.max_value_length == 1024


def test_arguments_override_environment() -> None:
    """A constructor argument wins over its environment variable."""
    config = resolve_config(
        url="rediss://cache:6379/0",
        timeout=1,
        environ={"OTEL_EXPORTER_REDIS_LOGS_URL": "redis://db:6380/2", "OTEL_EXPORTER_REDIS_TIMEOUT": "3"},
    )
    assert config.url == "rediss://cache:6379/0"
    assert config.timeout_s == 1.0


def test_signal_specific_url_wins_over_generic_url() -> None:
    """OTEL_EXPORTER_REDIS_LOGS_URL is preferred to OTEL_EXPORTER_REDIS_URL."""
    env = {"OTEL_EXPORTER_REDIS_URL": "redis://generic/0", "OTEL_EXPORTER_REDIS_LOGS_URL": "redis://logs/0"}
    assert resolve_config(environ=env).url == "redis://logs/0"
    assert resolve_config(environ={"OTEL_EXPORTER_REDIS_URL": "unix:///run/redis.sock"}).url == (
        "unix:///run/redis.sock"
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_REDIS_LOGS_MAXLEN", "lots"),
        ("OTEL_EXPORTER_REDIS_LOGS_MAXLEN", "-1"),
        ("OTEL_EXPORTER_REDIS_TIMEOUT", "0"),
        ("OTEL_EXPORTER_REDIS_TIMEOUT", "nan"),
        ("OTEL_EXPORTER_REDIS_LOGS_STREAM", "logs:{service.name"),
        ("OTEL_EXPORTER_REDIS_LOGS_MAX_VALUE_LENGTH", "3"),
        ("OTEL_EXPORTER_REDIS_CLUSTER", "maybe"),
        ("OTEL_EXPORTER_REDIS_LOGS_SHARDS", "0"),
        ("OTEL_EXPORTER_REDIS_LOGS_SHARDS", "100000"),
        ("OTEL_EXPORTER_REDIS_WAIT_REPLICAS", "-1"),
        ("OTEL_EXPORTER_REDIS_CERTIFICATE", "/no/such/ca.pem"),
    ],
)
def test_invalid_environment_value_warns_and_uses_default(
    variable: str, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad environment value is logged as a warning and the default is used instead."""
    with caplog.at_level(logging.WARNING, logger="otel_redis_exporter"):
        config = resolve_config(environ={variable: value})
    assert config == resolve_config(environ={})
    assert variable in caplog.text


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_REDIS_LOGS_URL", "http://example/"),
        ("OTEL_EXPORTER_REDIS_URL", "redis://:pw@host:abc/0"),
        ("OTEL_EXPORTER_REDIS_URL", "redis://host/0?foo=bar"),
        ("OTEL_EXPORTER_REDIS_SENTINELS", "host:port"),
        ("OTEL_EXPORTER_REDIS_SENTINELS", " , "),
    ],
)
def test_invalid_environment_address_disables_instead_of_using_the_default(variable: str, value: str) -> None:
    """A bad variable saying where to write disables the configuration; it never falls back to localhost."""
    config = resolve_config(environ={variable: value})
    assert config.disabled is not None
    assert variable in config.disabled


@pytest.mark.parametrize(
    ("argument", "value", "allowed"),
    [
        ("url", "http://example/", "redis://, rediss://, unix://"),
        ("maxlen", -5, ">= 0"),
        ("maxlen", True, ">= 0"),
        ("timeout", 0, "> 0"),
        ("timeout", float("inf"), "> 0"),
        ("stream", "", "non-empty"),
        ("stream", "logs:{}", "empty placeholder"),
        ("max_value_length", 2, ">= 16"),
    ],
)
def test_invalid_argument_raises_value_error_naming_what_is_allowed(
    argument: str, value: object, allowed: str
) -> None:
    """A bad constructor argument fails early with a ValueError that says what is allowed."""
    with pytest.raises(ValueError, match=re.escape(allowed)):
        resolve_config(**{argument: value}, environ={})  # type: ignore[arg-type]


def test_retention_replaces_the_default_length_cap() -> None:
    """With retention set and no maxlen, trimming is by age only."""
    config = resolve_config(retention=3600, environ={})
    assert config.retention_s == 3600.0
    assert config.maxlen is None


def test_maxlen_and_retention_together_are_refused() -> None:
    """XADD trims by MAXLEN or MINID, so asking for both is an error."""
    with pytest.raises(ValueError, match="exclusive"):
        resolve_config(maxlen=10, retention=60, environ={})


def test_maxlen_zero_disables_length_trimming() -> None:
    """maxlen=0 means no MAXLEN on XADD."""
    assert resolve_config(maxlen=0, environ={}).maxlen is None


def test_password_never_appears_in_repr() -> None:
    """The config's repr and redact_url hide the password but keep the rest of the URL."""
    config = resolve_config(url="redis://app:s3cret-pw@db:6379/1", environ={})
    assert "s3cret-pw" not in repr(config)
    assert redact_url(config.url) == "redis://app:***@db:6379/1"
    assert redact_url("redis://:only-pw@db/0") == "redis://:***@db/0"
    assert redact_url("redis://db:6379/0") == "redis://db:6379/0"


def test_missing_redis_package_raises_a_clear_import_error() -> None:
    """Without redis-py, importing the package raises an ImportError subclass saying how to install it."""
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "try:\n"
        "    import otel_redis_exporter\n"
        "except ImportError as error:\n"
        "    print(type(error).__name__, '|', error)\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.startswith("RedisNotInstalledError |")
    assert "pip install" in output
    assert "'redis'" in output


def test_an_unavailable_encoding_from_the_environment_falls_back_to_flat(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """OTEL_EXPORTER_REDIS_LOGS_ENCODING=otlp_json without the otlp extra: flat, and one warning naming it."""
    import otel_redis_exporter._encode  # noqa: PLC0415

    monkeypatch.delattr(otel_redis_exporter._encode, "otlp", raising=False)
    # What a missing extra looks like:
    monkeypatch.setitem(sys.modules, "otel_redis_exporter._encode.otlp", None)
    with caplog.at_level(logging.WARNING, logger="otel_redis_exporter"):
        config = resolve_config(environ={"OTEL_EXPORTER_REDIS_LOGS_ENCODING": "otlp_json"})
    assert config.encoding == "flat"
    assert "OTEL_EXPORTER_REDIS_LOGS_ENCODING" in caplog.text
    assert "otlp" in caplog.text


def test_username_and_password_reach_every_pool() -> None:
    """username= and password= (or their variables) win over the URL's on the pool's connections."""
    env = {"OTEL_EXPORTER_REDIS_USERNAME": "env-user", "OTEL_EXPORTER_REDIS_PASSWORD": "env-pw"}
    config = resolve_config(url="redis://url-user:url-pw@h/0", environ=env)
    pool = make_pool(config)
    assert (pool.connection_kwargs["username"], pool.connection_kwargs["password"]) == ("env-user", "env-pw")
    arguments = {"username": "arg-user", "password": "arg-pw"}
    config = resolve_config(url="redis://h/0", **arguments, environ=env)
    assert url_options(config)["username"] == "arg-user"
    assert make_pool(config).connection_kwargs["password"] == arguments["password"]


@pytest.mark.parametrize(
    ("reply", "advice"),
    [
        ("NOPERM User r has no permissions to run the 'xinfo|stream' command", "grant it +xinfo|stream"),
        ("NOPERM No permissions to access a key", "access to the stream keys"),
    ],
)
def test_reasons_name_what_to_change(reply: str, advice: str) -> None:
    """NOPERM names the command to grant."""
    assert advice in describe(ResponseError(reply))


@pytest.mark.parametrize(
    ("settings", "hint"),
    [
        ({"cluster": True}, "cluster=True turned it on"),
        ({"environ": {"OTEL_EXPORTER_REDIS_CLUSTER": "yes"}}, "OTEL_EXPORTER_REDIS_CLUSTER=yes turned it on"),
    ],
)
def test_the_cluster_hint_names_what_turned_cluster_mode_on(settings: dict[str, Any], hint: str) -> None:
    """Against a server without cluster support, the reason names the argument or variable that was set."""
    config = resolve_config(url="redis://h/0", **{"environ": {}, **settings})
    reason = describe(
        ResponseError("ERR This instance has cluster support disabled"), cluster_set_by=config.cluster_set_by
    )
    assert hint in reason
    assert ("OTEL_EXPORTER_REDIS_CLUSTER" in reason) == ("environ" in settings and bool(settings["environ"]))
