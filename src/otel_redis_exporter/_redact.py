"""Redaction, in one place: what any repr, log line, error or CLI message shows of a secret.

``redact(text, secrets)`` is the one function every message goes through. It hides

* the password of every Redis URL in ``text`` (``user:password@``, and ``?password=`` or any
  other query parameter whose name looks secret, percent-encoded or not);
* every URL that cannot be split cleanly (a ``/``, ``#`` or ``?`` left unescaped in a password
  moves part of it into the path, query or fragment): it becomes ``<invalid URL>``;
* ``user:password@`` even without a known scheme (a mistyped ``redis//``);
* each string of ``secrets`` (passwords given outside the URL), as given and percent-encoded;
* secrets registered with ``remember`` (the package logger's filter scrubs those).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

HIDDEN = "***"
INVALID_URL = "<invalid URL>"
URL_SCHEMES = ("redis", "rediss", "unix")

# Query parameter names whose values are never shown (compared in lower case, percent-decoded).
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|auth|credential|key", re.IGNORECASE)
# A URL inside a longer text: up to the next blank, quote or bracket.
_URL_IN_TEXT = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*:)?//[^\s'\"<>`]+")
# user:password@ anywhere, even where the scheme is mistyped or missing.
_USERINFO = re.compile(r"([\w.~%+-]*):([^\s'\"]+)@")
_SECRET_PARAMETER = re.compile(
    r"((?:%[0-9A-Fa-f]{2}|[A-Za-z0-9_.-])*(?:pass|pwd|secret|token|auth|credential|key)"
    r"(?:%[0-9A-Fa-f]{2}|[A-Za-z0-9_.-])*=)([^\s'\"]*)",
    re.IGNORECASE,
)
# redis-py's URL options, whose names are safe to show.
_OPTION_NAMES = frozenset(
    {
        "db", "username", "client_name", "encoding", "encoding_errors", "protocol", "max_connections",
        "socket_timeout", "socket_connect_timeout", "socket_read_size", "socket_keepalive",
        "retry_on_timeout", "health_check_interval", "legacy_responses", "ssl_check_hostname",
        "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_ciphers",
        "ssl_min_version", "ssl_include_verify_flags", "ssl_exclude_verify_flags",
    }
)  # fmt: skip
# Secrets shorter than this are not scrubbed from free text: they would mangle every message.
_MIN_REMEMBERED = 3

_remembered: set[str] = set()
_lock = threading.Lock()


def is_secret_parameter(name: str) -> bool:
    """Whether a URL query parameter named ``name`` holds a secret (``password``, ``token``...)."""
    return bool(_SECRET_NAME.search(unquote(name)))


def url_is_clean(url: str) -> bool:
    """Whether ``url`` splits into parts without a piece of its user or password landing in
    the path, query or fragment, and with a readable port."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return False
    if parts.scheme not in URL_SCHEMES or parts.fragment or "#" in url:
        return False
    return "@" not in url[url.index(parts.netloc) + len(parts.netloc) :] if parts.netloc else "@" not in url


def redact_url(url: str) -> str:
    """``url`` with its password and secret query values replaced by ``***``; a URL that cannot
    be split cleanly is ``<invalid URL>`` (its parts would show pieces of the password)."""
    if not url_is_clean(url):
        return INVALID_URL
    parts = urlsplit(url)
    if parts.password is None and not any(
        is_secret_parameter(name) for name, _ in parse_qsl(parts.query, keep_blank_values=True)
    ):
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, address = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{HIDDEN}@{address}" if has_password else f"{user}@{address}"
    query = parts.query
    if query:
        # An unescaped '&' in a secret value starts another "parameter": only the names of
        # redis-py's options are shown, next to a secret.
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(
            urlencode([(name, HIDDEN if is_secret_parameter(name) else value)], safe="*")
            if name in _OPTION_NAMES or is_secret_parameter(name)
            else HIDDEN
            for name, value in pairs
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def secrets_of_url(url: str) -> list[str]:
    """The password of ``url`` and its secret query values, as written and decoded."""
    found: list[str] = []
    try:
        parts = urlsplit(url)
    except ValueError:
        return found
    userinfo = parts.netloc.rpartition("@")[0]
    if ":" in userinfo:
        found.append(userinfo.partition(":")[2])
    found.extend(value for name, value in parse_qsl(parts.query) if is_secret_parameter(name))
    return [secret for secret in found if secret]


def _forms(secret: str) -> set[str]:
    return {secret, unquote(secret), quote(secret, safe=""), repr(secret)[1:-1]} - {""}


def remember(secrets: Iterable[str | None]) -> None:
    """Register secrets the package logger's filter scrubs from every line it lets through."""
    with _lock:
        for secret in secrets:
            if secret and len(secret) >= _MIN_REMEMBERED:
                _remembered.update(form for form in _forms(secret) if len(form) >= _MIN_REMEMBERED)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` safe to show: URLs redacted (see the module docstring), each secret hidden."""
    text = _URL_IN_TEXT.sub(lambda match: _redact_found_url(match.group(0)), text)
    text = _SECRET_PARAMETER.sub(_hide_parameter, text)
    text = _USERINFO.sub(_hide_userinfo, text)
    with _lock:
        known = set(_remembered)
    for secret in secrets:
        if secret:
            known.update(_forms(secret))
    # Longest first, so a secret that contains another is hidden whole.
    for secret in sorted(known, key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text


def _hide_parameter(match: re.Match[str]) -> str:
    value = match.group(2)
    if value == HIDDEN or value.startswith(f"{HIDDEN}&"):  # a URL redact_url already took care of
        return match.group(0)
    # The value may hold an unescaped '&': hide the rest of the word, not only up to the '&'.
    return f"{match.group(1)}{HIDDEN}"


def _hide_userinfo(match: re.Match[str]) -> str:
    if match.group(2).endswith(HIDDEN):  # a URL redact_url already took care of
        return match.group(0)
    return f"{match.group(1)}:{HIDDEN}@"


def _redact_found_url(found: str) -> str:
    scheme = found.partition(":")[0].lower()
    if scheme in URL_SCHEMES:
        # A repr or message may end the URL with punctuation: keep it out of the URL.
        stripped = found.rstrip(".,;)]")
        return redact_url(stripped) + found[len(stripped) :]
    return found


class RedactingFilter(logging.Filter):
    """Puts every record's final message through ``redact`` (a logger-level filter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, ()
        if record.exc_info and record.exc_info[1] is not None:
            # The traceback's text is formatted later, by the handler: render it now, redacted.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.msg = f"{record.msg}\n{record.exc_text}"
            record.exc_info, record.exc_text = None, None
        return True
