"""The checks and parsers the settings table uses: a few generic ones and the URL's.

A check takes the setting's name and a value, and returns the value (normalised) or raises
``ValueError`` saying what is allowed. Messages never show a secret.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import redis.connection

from .._keys import StreamKeyTemplate
from .._redact import URL_SCHEMES, is_secret_parameter, url_is_clean
from .._types import Address

T = TypeVar("T")

# Checks a value of the setting it is named for: returns it (normalised) or raises ValueError.
Check = Callable[[str, Any], Any]

DEFAULT_SENTINEL_PORT = 26379

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


def whole(unit: str = "", *, low: int = 0, high: int | None = None, note: str = "") -> Check:
    """A whole number (never a bool) from ``low`` to ``high`` (no upper bound when None)."""
    of_unit = f" of {unit}" if unit else ""
    bounds = f">= {low}" if high is None else f"from {low} to {high}"

    def check(name: str, value: Any) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < low
            or (high is not None and value > high)
        ):
            raise ValueError(f"{name} must be a whole number{of_unit} {bounds}{note}; got {value!r}")
        return value

    return check


def seconds(*, zero_disables: bool = False) -> Check:
    """A finite number of seconds, > 0 (or >= 0, where 0 turns the feature off), as a float."""
    bounds = ">= 0 (0 disables)" if zero_disables else "> 0"

    def check(name: str, value: Any) -> float:
        number = not isinstance(value, bool) and isinstance(value, int | float)
        if not (number and math.isfinite(value) and (value >= 0 if zero_disables else value > 0)):
            raise ValueError(f"{name} must be a number of seconds {bounds}; got {value!r}")
        return float(value)

    return check


def choice(values: Sequence[str]) -> Check:
    """One of ``values``."""

    def check(name: str, value: Any) -> str:
        if value not in values:
            raise ValueError(f"{name} must be one of {', '.join(values)}; got {value!r}")
        return str(value)

    return check


def boolean(name: str, value: Any) -> bool:
    """True or False (an environment variable goes through ``parse_bool``)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


def plain_name(name: str, value: Any) -> str:
    """A non-empty name without surrounding blanks."""
    if not isinstance(value, str) or not value or value != value.strip():
        raise ValueError(f"{name} must be a non-empty name without surrounding blanks; got {value!r}")
    return value


def secret(name: str, value: Any) -> str:
    """A user name or password: a non-empty str. The message never shows the value."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty str")
    return value


def as_given(name: str, value: Any) -> Any:
    """Taken as it is: never echo a password back; a bad one is refused by the server, not here."""
    return value


def pem_file(name: str, value: Any) -> str:
    """The path of an existing file."""
    path = os.fspath(value)
    if not isinstance(path, str) or not os.path.isfile(path):
        raise ValueError(f"{name} must be the path of a readable PEM file; no such file: {value!r}")
    return path


def stream_key(name: str, value: Any) -> str:
    """A stream key or key template (``logs:{service.name}``)."""
    if not value or value != value.strip():
        raise ValueError(f"{name} must be a non-empty key without surrounding blanks; got {value!r}")
    StreamKeyTemplate.parse(value)
    return str(value)


def parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected true or false; got {raw!r}")


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


def redis_url(name: str, url: Any) -> str:
    """The URL if redis-py will connect with it: scheme, host, port, db and query options are
    checked here, so a typo fails at construction. Messages never show the URL's secrets."""
    if not isinstance(url, str):
        raise ValueError(f"{name} must be a str; got {type(url).__name__}")
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


def url_db(url: str) -> int:
    """The database number a checked URL names (its path or ``?db=``), 0 when none."""
    parts = urlsplit(url)
    for item in parts.query.split("&"):
        name, _, value = item.partition("=")
        if name == "db" and value.isdigit():
            return int(value)
    path = parts.path.strip("/")
    return int(path) if path.isdigit() else 0


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


def parse_sentinels(raw: str) -> tuple[Address, ...]:
    """``host:port,host:port`` (the port defaults to 26379)."""
    return tuple(_address(part) for part in raw.split(",") if part.strip())


def sentinels_argument(value: str | Sequence[str | Address]) -> tuple[Address, ...]:
    """The ``sentinels`` argument: ``"host:port,..."`` or a sequence of ``"host:port"`` / ``(host, port)``."""
    if isinstance(value, str):
        addresses = parse_sentinels(value)
    else:
        addresses = tuple(_address(item) if isinstance(item, str) else _address_pair(item) for item in value)
    if not addresses:
        raise ValueError(f"sentinels must list at least one host:port address; got {value!r}")
    return addresses


def addresses(name: str, value: Any) -> tuple[Address, ...]:
    """At least one address."""
    if not value:
        raise ValueError(f"{name} must list at least one host:port address")
    return tuple(value)
