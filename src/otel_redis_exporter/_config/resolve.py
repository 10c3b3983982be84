"""One frozen configuration, resolved in one place: argument > environment variable > default.

A wrong constructor argument raises ``ValueError`` naming what is allowed; a wrong environment
value logs a warning and falls back to the default, so a typo in a deployment never stops an app.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import redis.connection

from .._keys import MAX_SHARDS, StreamKeyTemplate
from .._log import logger as _logger
from .._redact import URL_SCHEMES, is_secret_parameter, redact, redact_url, url_is_clean

T = TypeVar("T")
D = TypeVar("D")

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_STREAM = "otel:logs"
# Approximate cap on entries per stream key: about 100 MB at ~1 KB per entry, so a forgotten
# stream cannot fill a server's memory silently. 0 disables length trimming.
DEFAULT_MAXLEN = 100_000
DEFAULT_TIMEOUT_S = 10.0
# Longest str or bytes value kept in a body or attribute (characters or bytes), like
# OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT. Longer values are truncated and the entry says so.
DEFAULT_MAX_VALUE_LENGTH = 64 * 1024

# Bounds of the sender's queue: records waiting to be written, and their approximate size in bytes
# (50,000 records is 10 s of logging at 5,000 records/s).
DEFAULT_BUFFER_MAX_RECORDS = 50_000
DEFAULT_BUFFER_MAX_BYTES = 32 * 1024 * 1024
MODES = ("sync", "async")
DEFAULT_MODE = "sync"

ENV_URL = "OTEL_EXPORTER_REDIS_LOGS_URL"
ENV_URL_GENERIC = "OTEL_EXPORTER_REDIS_URL"
ENV_STREAM = "OTEL_EXPORTER_REDIS_LOGS_STREAM"
ENV_MAXLEN = "OTEL_EXPORTER_REDIS_LOGS_MAXLEN"
ENV_RETENTION = "OTEL_EXPORTER_REDIS_LOGS_RETENTION"
ENV_TIMEOUT = "OTEL_EXPORTER_REDIS_LOGS_TIMEOUT"
ENV_TIMEOUT_GENERIC = "OTEL_EXPORTER_REDIS_TIMEOUT"
ENV_MAX_VALUE_LENGTH = "OTEL_EXPORTER_REDIS_LOGS_MAX_VALUE_LENGTH"
ENV_MODE = "OTEL_EXPORTER_REDIS_MODE"
ENV_BUFFER_MAX_RECORDS = "OTEL_EXPORTER_REDIS_LOGS_BUFFER_MAX_RECORDS"
ENV_BUFFER_MAX_BYTES = "OTEL_EXPORTER_REDIS_LOGS_BUFFER_MAX_BYTES"
ENV_ENCODING = "OTEL_EXPORTER_REDIS_LOGS_ENCODING"
ENV_TRACE_INDEX_TTL = "OTEL_EXPORTER_REDIS_LOGS_TRACE_INDEX_TTL"
ENV_MAX_ENTRY_BYTES = "OTEL_EXPORTER_REDIS_LOGS_MAX_ENTRY_BYTES"
ENV_USERNAME = "OTEL_EXPORTER_REDIS_USERNAME"
ENV_PASSWORD = "OTEL_EXPORTER_REDIS_PASSWORD"  # noqa: S105 (a variable name)
# Approximate cap on one entry's encoded size, in bytes: collections in a body or attribute stop
# growing once an entry reaches it (the entry's `truncated` field says which), so one huge record
# can neither fill the server nor stall an export. Below redis-py's and the server's own limits.
DEFAULT_MAX_ENTRY_BYTES = 1024 * 1024
MIN_MAX_ENTRY_BYTES = 1024

# "flat": one stream field per record attribute (the schema in the README); the OTLP encodings
# put the record's standard OTLP ResourceLogs (JSON or protobuf bytes) in one `payload` field.
ENCODINGS = ("flat", "otlp_json", "otlp_proto")
DEFAULT_ENCODING = "flat"

# Deployments: Redis Cluster, Sentinel, durable writes, TLS.
DEFAULT_SHARDS = 1
DEFAULT_SENTINEL_PORT = 26379
DEFAULT_SENTINEL_MASTER = "mymaster"
DEFAULT_WAIT_REPLICAS = 0
ENV_CLUSTER = "OTEL_EXPORTER_REDIS_CLUSTER"
ENV_SHARDS = "OTEL_EXPORTER_REDIS_LOGS_SHARDS"
ENV_SENTINELS = "OTEL_EXPORTER_REDIS_SENTINELS"
ENV_SENTINEL_MASTER = "OTEL_EXPORTER_REDIS_SENTINEL_MASTER"
ENV_SENTINEL_USERNAME = "OTEL_EXPORTER_REDIS_SENTINEL_USERNAME"
ENV_SENTINEL_PASSWORD = "OTEL_EXPORTER_REDIS_SENTINEL_PASSWORD"  # noqa: S105 (a variable name)
ENV_WAIT_REPLICAS = "OTEL_EXPORTER_REDIS_WAIT_REPLICAS"
ENV_CERTIFICATE = "OTEL_EXPORTER_REDIS_CERTIFICATE"
ENV_CLIENT_KEY = "OTEL_EXPORTER_REDIS_CLIENT_KEY"
ENV_CLIENT_CERTIFICATE = "OTEL_EXPORTER_REDIS_CLIENT_CERTIFICATE"
# Settings whose values a repr must never show.
_SECRET_FIELDS = frozenset({"password", "sentinel_password"})
# Why a configuration is disabled when an environment variable says where to connect and is wrong.
ERROR_TYPE_INVALID_CONFIG = "invalid_config"

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ExporterConfig:
    """Everything the exporter needs to know, already validated."""

    url: str
    stream: str
    maxlen: int | None
    retention_s: float | None
    timeout_s: float
    max_value_length: int
    mode: str = DEFAULT_MODE
    buffer_max_records: int = DEFAULT_BUFFER_MAX_RECORDS
    buffer_max_bytes: int = DEFAULT_BUFFER_MAX_BYTES
    encoding: str = DEFAULT_ENCODING
    # Seconds a per-trace index key lives after the trace's last record; None: no index.
    trace_index_ttl_s: float | None = None

    cluster: bool = False
    # What set ``cluster`` (``cluster=True`` or ``OTEL_EXPORTER_REDIS_CLUSTER=...``), for hints.
    cluster_set_by: str | None = None
    shards: int = DEFAULT_SHARDS
    sentinels: tuple[Address, ...] = ()
    sentinel_master: str = DEFAULT_SENTINEL_MASTER
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    wait_replicas: int = DEFAULT_WAIT_REPLICAS
    certificate: str | None = None
    client_key: str | None = None
    client_certificate: str | None = None
    # The data nodes' ACL user and password when not in the URL (they win over the URL's).
    username: str | None = None
    password: str | None = None
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES
    # Set when an environment variable that says where to write is invalid: the reason. Nothing
    # is ever written with such a configuration (it must not go to some other server instead).
    disabled: str | None = None

    def __repr__(self) -> str:
        def shown(name: str) -> object:
            value = getattr(self, name)
            if name == "url":
                return redact_url(value) if value else value
            if name in _SECRET_FIELDS and value is not None:
                return "***"
            return value

        return f"ExporterConfig({', '.join(f'{f.name}={shown(f.name)!r}' for f in fields(self))})"


# Query parameters a URL may set, besides those redis-py parses itself (URL_QUERY_ARGUMENT_PARSERS):
# redis-py passes any other name on to the connection, which then fails on every connect.
_URL_TEXT_OPTIONS = frozenset({"username", "password", "client_name", "encoding", "encoding_errors"})
_URL_TLS_OPTIONS = frozenset(
    {
        "ssl_ca_certs",
        "ssl_ca_path",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_cert_reqs",
        "ssl_ciphers",
        "ssl_password",
    }
)
# Parsed by redis-py but not options of a plain connection pool: they would fail on connect.
_URL_POOL_ONLY = frozenset({"timeout", "retry_on_error"})
_MAX_PORT = 65535
_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _url_parsers() -> Mapping[str, Callable[[str], object]]:
    parsers: Mapping[str, Callable[[str], object]] = getattr(
        redis.connection, "URL_QUERY_ARGUMENT_PARSERS", {}
    )
    return {name: parser for name, parser in parsers.items() if name not in _URL_POOL_ONLY}


def _attempt(compute: Callable[[], T]) -> T | None:
    """``compute()``, or None when it raises ``ValueError`` or ``TypeError``."""
    try:
        return compute()
    except (TypeError, ValueError):
        return None


def _check_url(url: str) -> str:
    """The URL if redis-py will connect with it: scheme, host, port, db and query options are
    checked here, so a typo fails at construction. Messages never show the URL's secrets."""
    if not isinstance(url, str):
        raise ValueError(f"url must be a str; got {type(url).__name__}")
    allowed = ", ".join(f"{s}://" for s in URL_SCHEMES)
    # Errors are raised outside `except` blocks: a chained exception would carry urllib's
    # message, and that quotes pieces of the URL.
    parts = _attempt(lambda: urlsplit(url))
    if parts is None:
        raise ValueError("invalid URL: it cannot be split into its parts")
    if parts.scheme not in URL_SCHEMES or not url.startswith(f"{parts.scheme}://"):
        raise ValueError(f"invalid URL: it must start with one of {allowed}")
    encode_hint = (
        "a '/', '#', '?' or '@' in the user or password must be percent-encoded "
        "(urllib.parse.quote(password, safe='')), or the password passed as an argument"
    )
    port = _attempt(lambda: parts.port or 0)
    if port is None:
        raise ValueError(f"invalid URL: the port must be a number from 1 to {_MAX_PORT}; {encode_hint}")
    if not url_is_clean(url):
        raise ValueError(f"invalid URL: {encode_hint}")
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("invalid URL: unix:// needs the socket's path, e.g. unix:///run/redis.sock")
    else:
        if not parts.hostname:
            raise ValueError("invalid URL: it names no host, e.g. redis://localhost:6379/0")
        if parts.port is not None and not 0 < port <= _MAX_PORT:
            raise ValueError(f"invalid URL: the port must be a number from 1 to {_MAX_PORT}")
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ValueError("invalid URL: the path must be the database number, e.g. /0")
    _check_url_query(parts.query, tls=parts.scheme == "rediss")
    return url


def _check_url_query(query: str, *, tls: bool) -> None:
    parsers = _url_parsers()
    known = set(parsers) | _URL_TEXT_OPTIONS | (_URL_TLS_OPTIONS if tls else set())
    pairs = parse_qsl(query, keep_blank_values=True)
    # Next to a secret, an unknown "name" may be a piece of it (an unescaped '&'): not shown then.
    has_secret = any(is_secret_parameter(name) for name, _ in pairs)
    for name, value in pairs:
        safe = _PARAMETER_NAME.fullmatch(name) and not is_secret_parameter(name) and not has_secret
        shown = repr(name) if safe or name in known else "a name"
        if name not in known:
            hint = " (a TLS option needs rediss://)" if name in _URL_TLS_OPTIONS else ""
            raise ValueError(
                f"invalid URL: redis-py takes no query parameter {shown}{hint}; "
                f"known: {', '.join(sorted(known))}"
            )
        parser = parsers.get(name)
        parsed = value if parser is None else _attempt(functools.partial(parser, value))
        if parsed is None:
            raise ValueError(f"invalid URL: the query parameter {shown} has an invalid value")
        if name == "db" and (not isinstance(parsed, int) or parsed < 0):
            raise ValueError("invalid URL: the query parameter 'db' must be a number >= 0")


def _check_stream(stream: str) -> str:
    if not stream or stream != stream.strip():
        raise ValueError(f"stream must be a non-empty key without surrounding blanks; got {stream!r}")
    StreamKeyTemplate.parse(stream)
    return stream


def _check_maxlen(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"maxlen must be a whole number of entries >= 0 (0 disables); got {value!r}")
    return value


def _check_positive_seconds(name: str) -> Callable[[float], float]:
    def check(value: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number of seconds > 0; got {value!r}")
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a number of seconds > 0; got {value!r}")
        return float(value)

    return check


def _check_count(name: str) -> Callable[[int], int]:
    def check(value: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0 (0 disables buffering); got {value!r}")
        return value

    return check


def _check_mode(value: str) -> str:
    if value not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {value!r}")
    return value


def _check_encoding(value: str) -> str:
    if value not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}; got {value!r}")
    return value


def _check_index_ttl(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"trace_index_ttl must be a number of seconds >= 0 (0 disables); got {value!r}")
    return float(value)


def _parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected true or false; got {raw!r}")


def _check_bool(name: str) -> Callable[[bool], bool]:
    def check(value: bool) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False; got {value!r}")
        return value

    return check


def _check_shards(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SHARDS:
        raise ValueError(f"shards must be a whole number from 1 to {MAX_SHARDS}; got {value!r}")
    return value


def _check_wait_replicas(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"wait_replicas must be a whole number of replicas >= 0 (0 disables); got {value!r}")
    return value


def _check_name(name: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not isinstance(value, str) or not value or value != value.strip():
            raise ValueError(f"{name} must be a non-empty name without surrounding blanks; got {value!r}")
        return value

    return check


def _check_file(name: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        path = os.fspath(value)
        if not isinstance(path, str) or not os.path.isfile(path):
            raise ValueError(f"{name} must be the path of a readable PEM file; no such file: {value!r}")
        return path

    return check


def _address(text: str) -> Address:
    """``host:port``, ``[v6]:port`` or a bare host (the Sentinel port 26379)."""
    text = text.strip()
    host, port = text, str(DEFAULT_SENTINEL_PORT)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"not a host:port address: {text!r}")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"sentinels must be host:port addresses; got {text!r}")
    return host, int(port)


def _address_pair(item: object) -> Address:
    if not (isinstance(item, tuple | list) and len(item) == 2):
        raise ValueError(f"sentinels must be host:port addresses or (host, port) pairs; got {item!r}")
    host, port = item
    if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
        raise ValueError(f"sentinels must be host:port addresses or (host, port) pairs; got {item!r}")
    return _address(f"[{host}]:{port}")


def _parse_sentinels(raw: str) -> tuple[Address, ...]:
    return tuple(_address(part) for part in raw.split(",") if part.strip())


def _sentinels_argument(value: str | Sequence[str | Address]) -> tuple[Address, ...]:
    """The ``sentinels`` argument: ``"host:port,..."`` or a sequence of ``"host:port"`` / ``(host, port)``."""
    if isinstance(value, str):
        addresses = _parse_sentinels(value)
    else:
        addresses = tuple(_address(item) if isinstance(item, str) else _address_pair(item) for item in value)
    if not addresses:
        raise ValueError(f"sentinels must list at least one host:port address; got {value!r}")
    return addresses


def _check_sentinels(value: tuple[Address, ...]) -> tuple[Address, ...]:
    if not value:
        raise ValueError("sentinels must list at least one host:port address")
    return value


def _url_db(url: str) -> int:
    parts = urlsplit(url)
    for item in parts.query.split("&"):
        name, _, value = item.partition("=")
        if name == "db" and value.isdigit():
            return int(value)
    path = parts.path.strip("/")
    return int(path) if path.isdigit() else 0


def _conflict(message: str, from_environment: Sequence[str]) -> None:
    """Arguments that contradict each other raise; when an environment variable takes part,
    a warning names it and the caller drops that variable's setting."""
    if not from_environment:
        raise ValueError(message)
    _logger.warning("%s; ignoring %s.", message, " and ".join(from_environment))


def _check_entry_bytes(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_MAX_ENTRY_BYTES:
        raise ValueError(
            f"max_entry_bytes must be a whole number of bytes >= {MIN_MAX_ENTRY_BYTES}; got {value!r}"
        )
    return value


def _check_secret(name: str) -> Callable[[str], str]:
    """A user name or password: a non-empty str. The message never shows the value."""

    def check(value: str) -> str:
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty str")
        return value

    return check


def _check_length(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 16:
        raise ValueError(f"max_value_length must be a whole number >= 16; got {value!r}")
    return value


def _resolve(
    argument: T | None,
    env_names: tuple[str, ...],
    *,
    parse: Callable[[str], T],
    check: Callable[[T], T],
    default: D,
    environ: Mapping[str, str],
) -> T | D:
    """Argument (checked, raises) > first set environment variable (checked, warns) > default."""
    if argument is not None:
        return check(argument)
    for name in env_names:
        raw = environ.get(name, "").strip()
        if not raw:
            continue
        try:
            return check(parse(raw))
        except ValueError as error:
            _logger.warning("Ignoring %s: %s; using the default %r.", name, error, default)
            return default
    return default


def resolve_config(
    *,
    url: str | None = None,
    stream: str | None = None,
    maxlen: int | None = None,
    retention: float | None = None,
    timeout: float | None = None,
    max_value_length: int | None = None,
    mode: str | None = None,
    buffer_max_records: int | None = None,
    buffer_max_bytes: int | None = None,
    encoding: str | None = None,
    trace_index_ttl: float | None = None,
    cluster: bool | None = None,
    shards: int | None = None,
    sentinels: str | Sequence[str | Address] | None = None,
    sentinel_master: str | None = None,
    sentinel_username: str | None = None,
    sentinel_password: str | None = None,
    wait_replicas: int | None = None,
    certificate: str | None = None,
    client_key: str | None = None,
    client_certificate: str | None = None,
    username: str | None = None,
    password: str | None = None,
    max_entry_bytes: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> ExporterConfig:
    """Build the configuration from arguments, then ``OTEL_EXPORTER_REDIS_*`` variables, then defaults."""
    env = os.environ if environ is None else environ
    deployment = _resolve_deployment(
        url=url,
        cluster=cluster,
        shards=shards,
        sentinels=sentinels,
        sentinel_master=sentinel_master,
        sentinel_username=sentinel_username,
        sentinel_password=sentinel_password,
        wait_replicas=wait_replicas,
        certificate=certificate,
        client_key=client_key,
        client_certificate=client_certificate,
        environ=env,
    )
    if not deployment["cluster"]:  # an ignored or overruled setting turned nothing on
        deployment["cluster_set_by"] = None
    if maxlen is not None and retention is not None:
        raise ValueError("maxlen and retention are exclusive: XADD trims by MAXLEN or by MINID, not both")
    resolved_retention = _resolve(
        retention,
        (ENV_RETENTION,),
        parse=float,
        check=_check_positive_seconds("retention"),
        default=None,
        environ=env,
    )
    # Time-based retention replaces the default length cap; an explicit maxlen wins over both.
    maxlen_default = 0 if resolved_retention is not None and maxlen is None else DEFAULT_MAXLEN
    resolved_maxlen = _resolve(
        maxlen, (ENV_MAXLEN,), parse=int, check=_check_maxlen, default=maxlen_default, environ=env
    )
    if resolved_maxlen and resolved_retention is not None:
        _logger.warning(
            "Both %s and %s are set; trimming by length (MAXLEN ~ %d) and ignoring the retention.",
            ENV_MAXLEN,
            ENV_RETENTION,
            resolved_maxlen,
        )
        resolved_retention = None
    return ExporterConfig(
        **deployment,
        stream=_resolve(
            stream, (ENV_STREAM,), parse=str, check=_check_stream, default=DEFAULT_STREAM, environ=env
        ),
        maxlen=resolved_maxlen or None,
        retention_s=resolved_retention,
        timeout_s=_resolve(
            timeout,
            (ENV_TIMEOUT, ENV_TIMEOUT_GENERIC),
            parse=float,
            check=_check_positive_seconds("timeout"),
            default=DEFAULT_TIMEOUT_S,
            environ=env,
        ),
        max_value_length=_resolve(
            max_value_length,
            (ENV_MAX_VALUE_LENGTH,),
            parse=int,
            check=_check_length,
            default=DEFAULT_MAX_VALUE_LENGTH,
            environ=env,
        ),
        mode=_resolve(
            mode, (ENV_MODE,), parse=str.lower, check=_check_mode, default=DEFAULT_MODE, environ=env
        ),
        buffer_max_records=_resolve(
            buffer_max_records,
            (ENV_BUFFER_MAX_RECORDS,),
            parse=int,
            check=_check_count("buffer_max_records"),
            default=DEFAULT_BUFFER_MAX_RECORDS,
            environ=env,
        ),
        buffer_max_bytes=_resolve(
            buffer_max_bytes,
            (ENV_BUFFER_MAX_BYTES,),
            parse=int,
            check=_check_count("buffer_max_bytes"),
            default=DEFAULT_BUFFER_MAX_BYTES,
            environ=env,
        ),
        encoding=_available_encoding(
            encoding,
            _resolve(
                encoding,
                (ENV_ENCODING,),
                parse=str.lower,
                check=_check_encoding,
                default=DEFAULT_ENCODING,
                environ=env,
            ),
        ),
        trace_index_ttl_s=_resolve(
            trace_index_ttl,
            (ENV_TRACE_INDEX_TTL,),
            parse=float,
            check=_check_index_ttl,
            default=None,
            environ=env,
        )
        or None,
        username=_resolve(
            username, (ENV_USERNAME,), parse=str, check=_check_secret("username"), default=None, environ=env
        ),
        password=_resolve(
            password, (ENV_PASSWORD,), parse=str, check=_check_secret("password"), default=None, environ=env
        ),
        max_entry_bytes=_resolve(
            max_entry_bytes,
            (ENV_MAX_ENTRY_BYTES,),
            parse=int,
            check=_check_entry_bytes,
            default=DEFAULT_MAX_ENTRY_BYTES,
            environ=env,
        ),
    )


def _available_encoding(argument: str | None, resolved: str) -> str:
    """An OTLP encoding asked for by the environment without the ``otlp`` extra falls back to
    ``flat`` with a warning (an argument raises ``OtlpNotInstalledError`` in the exporter)."""
    if argument is not None or resolved == DEFAULT_ENCODING:
        return resolved
    from .._formats import import_otlp  # noqa: PLC0415 - _formats imports this module

    try:
        import_otlp()
    except ImportError as error:
        _logger.warning(
            "Ignoring %s=%s: %s; using the default %r.", ENV_ENCODING, resolved, error, DEFAULT_ENCODING
        )
        return DEFAULT_ENCODING
    return resolved


def _where_to(
    argument: T | None,
    env_names: tuple[str, ...],
    *,
    parse: Callable[[str], T],
    check: Callable[[T], T],
    default: T,
    environ: Mapping[str, str],
) -> tuple[T, str | None]:
    """Like ``_resolve`` for a setting that says where to write, where falling back to the default
    could send the logs to another server: a bad variable disables the exporter instead (the
    second item is why)."""
    if argument is not None:
        return check(argument), None
    for name in env_names:
        raw = environ.get(name, "").strip()
        if raw:
            try:
                return check(parse(raw)), None
            except ValueError as error:
                return default, f"{name}: {redact(str(error))}"
    return default, None


def _resolve_deployment(
    *,
    url: str | None,
    cluster: bool | None,
    shards: int | None,
    sentinels: str | Sequence[str | Address] | None,
    sentinel_master: str | None,
    sentinel_username: str | None,
    sentinel_password: str | None,
    wait_replicas: int | None,
    certificate: str | None,
    client_key: str | None,
    client_certificate: str | None,
    environ: Mapping[str, str],
) -> dict[str, Any]:
    """Where and how to connect: the URL, Cluster or Sentinel, TLS files, durable writes.

    Settings that only make sense together are checked together (see ``_conflict``).
    """
    env = environ
    sentinel_addresses = _sentinels_argument(sentinels) if sentinels is not None else None
    resolved_url, url_problem = _where_to(
        url, (ENV_URL, ENV_URL_GENERIC), parse=str, check=_check_url, default=DEFAULT_URL, environ=env
    )
    resolved_sentinels, sentinels_problem = _where_to(
        sentinel_addresses,
        (ENV_SENTINELS,),
        parse=_parse_sentinels,
        check=_check_sentinels,
        default=(),
        environ=env,
    )
    if url_problem is not None:
        resolved_url = ""
    resolved: dict[str, Any] = {
        "disabled": url_problem or sentinels_problem,
        "url": resolved_url,
        "cluster": _resolve(
            cluster,
            (ENV_CLUSTER,),
            parse=_parse_bool,
            check=_check_bool("cluster"),
            default=False,
            environ=env,
        ),
        "cluster_set_by": (
            f"cluster={cluster!r}"
            if cluster is not None
            else f"{ENV_CLUSTER}={env[ENV_CLUSTER].strip()}"
            if env.get(ENV_CLUSTER, "").strip()
            else None
        ),
        "shards": _resolve(
            shards, (ENV_SHARDS,), parse=int, check=_check_shards, default=DEFAULT_SHARDS, environ=env
        ),
        "sentinels": resolved_sentinels,
        "sentinel_master": _resolve(
            sentinel_master,
            (ENV_SENTINEL_MASTER,),
            parse=str,
            check=_check_name("sentinel_master"),
            default=DEFAULT_SENTINEL_MASTER,
            environ=env,
        ),
        "sentinel_username": _resolve(
            sentinel_username,
            (ENV_SENTINEL_USERNAME,),
            parse=str,
            check=_check_name("sentinel_username"),
            default=None,
            environ=env,
        ),
        # Never echo a password back: a bad one is refused by the server, not here.
        "sentinel_password": sentinel_password
        if sentinel_password is not None
        else (env.get(ENV_SENTINEL_PASSWORD) or None),
        "wait_replicas": _resolve(
            wait_replicas,
            (ENV_WAIT_REPLICAS,),
            parse=int,
            check=_check_wait_replicas,
            default=DEFAULT_WAIT_REPLICAS,
            environ=env,
        ),
    }
    for name, argument, variable in (
        ("certificate", certificate, ENV_CERTIFICATE),
        ("client_key", client_key, ENV_CLIENT_KEY),
        ("client_certificate", client_certificate, ENV_CLIENT_CERTIFICATE),
    ):
        resolved[name] = _resolve(
            argument, (variable,), parse=str, check=_check_file(name), default=None, environ=env
        )

    arguments = {
        "url": url,
        "cluster": cluster,
        "sentinels": sentinels,
        "certificate": certificate,
        "client_key": client_key,
        "client_certificate": client_certificate,
    }
    variables = {
        "url": ENV_URL if env.get(ENV_URL, "").strip() else ENV_URL_GENERIC,
        "cluster": ENV_CLUSTER,
        "sentinels": ENV_SENTINELS,
        "certificate": ENV_CERTIFICATE,
        "client_key": ENV_CLIENT_KEY,
        "client_certificate": ENV_CLIENT_CERTIFICATE,
    }
    defaults: dict[str, Any] = {"url": DEFAULT_URL, "cluster": False, "sentinels": ()}

    def settle(message: str, names: tuple[str, ...], drop: tuple[str, ...]) -> None:
        """A contradiction among ``names``: raise when all are arguments; otherwise warn and reset
        those of ``drop`` that came from the environment (all of ``drop`` if none did)."""
        from_env = [
            name for name in names if arguments[name] is None and env.get(variables[name], "").strip()
        ]
        _conflict(message, [variables[name] for name in from_env])
        for name in [name for name in drop if name in from_env] or drop:
            resolved[name] = defaults.get(name)
            if name == "url":
                # Another server than the one named would get the logs: write nowhere instead.
                resolved["disabled"] = f"{variables['url']}: {message}"

    if resolved["disabled"] is not None:
        return resolved

    def scheme() -> str:
        return str(urlsplit(resolved["url"]).scheme)

    if resolved["cluster"] and resolved["sentinels"]:
        message = "cluster and sentinels are exclusive: a deployment is a Cluster or uses Sentinel"
        settle(message, ("cluster", "sentinels"), drop=("cluster", "sentinels"))
    if resolved["cluster"] and (scheme() == "unix" or _url_db(resolved["url"])):
        message = "cluster needs a redis:// or rediss:// url to database 0"
        settle(message, ("cluster", "url"), drop=("cluster", "url"))
    if resolved["sentinels"] and scheme() == "unix":
        message = "sentinels need a redis:// or rediss:// url (for the user, password and db)"
        settle(message, ("sentinels", "url"), drop=("sentinels", "url"))
    if (resolved["client_key"] is None) != (resolved["client_certificate"] is None):
        message = "client_key and client_certificate go together (mutual TLS needs both)"
        pair = ("client_key", "client_certificate")
        settle(message, pair, drop=pair)
        resolved["client_key"] = resolved["client_certificate"] = None
    tls_files = tuple(name for name in ("certificate", "client_key", "client_certificate") if resolved[name])
    if tls_files and scheme() != "rediss":
        # Without TLS the files would go unused: they are what gets dropped.
        settle(f"{', '.join(tls_files)} need a rediss:// url (TLS)", ("url", *tls_files), drop=tls_files)
        for name in tls_files:
            resolved[name] = None
    return resolved
