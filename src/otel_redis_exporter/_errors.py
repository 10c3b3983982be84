"""Redis errors, mapped in one place to "retry" or "give up" and to a reason a person can act on."""

from __future__ import annotations

import asyncio
import enum
import re

from redis import exceptions as rex


class NotReplicatedError(rex.TimeoutError):
    """``WAIT``: fewer replicas than ``wait_replicas`` acknowledged a write in time."""

    def __init__(self, acknowledged: int, wanted: int, timeout_ms: int) -> None:
        super().__init__(
            f"WAIT: {acknowledged} of the {wanted} replicas wait_replicas asks for "
            f"acknowledged the write within {timeout_ms} ms"
        )


class SlotMovingError(rex.ConnectionError):
    """Cluster redirects (MOVED, ASK) kept coming for an entry: its slot is being moved."""


class Outcome(enum.Enum):
    """What a failed write means for the entries it carried."""

    TRANSIENT = "transient"
    """Retry within this export's deadline (connection lost, LOADING, BUSY...)."""
    PERMANENT = "permanent"
    """Do not retry now, but the entry is fine and may be written later (wrong password, NOPERM, OOM)."""
    REJECTED = "rejected"
    """The server refuses this entry and always will (WRONGTYPE, syntax errors): drop it."""


# Server replies that mean "not now": retried within the export deadline.
_TRANSIENT_PREFIXES = ("LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "READONLY", "CLUSTERDOWN")
# Server replies about the server's state or the user's rights, not about the entry.
_STATE_PREFIXES = ("OOM", "NOPERM", "NOAUTH", "WRONGPASS", "MISCONF")

# TLS failures that retrying cannot cure: the certificates or the host name do not match.
_TLS_REFUSALS = ("CERTIFICATE_VERIFY_FAILED", "ALERT_")


def _is_tls(text: str) -> bool:
    return "SSL" in text or "_ssl.c" in text


def _is_tls_refusal(error: BaseException) -> bool:
    text = str(error)
    return _is_tls(text) and any(marker in text for marker in _TLS_REFUSALS)


# redis-py lists each sentinel's failure after the repr of its client, which is long: keep the
# address and the failure.
_SENTINEL_REASON = re.compile(r"host=([^,>)\s]+),port=(\d+).*? - (.+?)(?=, <redis\.|, Redis<|$)", re.DOTALL)


def _sentinel_reasons(text: str) -> str:
    head, _, rest = text.partition(" : ")
    reasons = [f"{host}:{port} {reason}" for host, port, reason in _SENTINEL_REASON.findall(rest)]
    return f"{head}: {'; '.join(reasons)}" if reasons else head


# "... no permissions to run the 'xinfo|stream' command"; "... no permissions to access one of the keys".
_DENIED_COMMAND = re.compile(r"run the '([a-z|_-]+)' command", re.IGNORECASE)


_PIPELINE_PREFIX = re.compile(r"^Command # \d+ \(.*?\) of pipeline caused error: ", re.DOTALL)


def _grant(text: str) -> str:
    """What to grant for a NOPERM reply: the command it names, or access to the keys."""
    command = _DENIED_COMMAND.search(text)
    if command is not None:
        return f"grant it +{command.group(1).lower()}"
    if "key" in text.lower():
        return "grant it access to the stream keys (for example ~otel:*)"
    return "grant it the rights of its role"


def classify(error: BaseException) -> Outcome:
    """Whether retrying ``error`` can help, now or later."""
    # AuthenticationError is a ConnectionError in redis-py, but retrying a wrong password never helps.
    if isinstance(error, rex.AuthenticationError | rex.AuthenticationWrongNumberOfArgsError):
        return Outcome.PERMANENT
    if _is_tls_refusal(error):
        return Outcome.PERMANENT
    if isinstance(error, rex.ConnectionError | rex.TimeoutError | OSError | asyncio.TimeoutError):
        return Outcome.TRANSIENT
    if isinstance(error, rex.BusyLoadingError | rex.ReadOnlyError | rex.TryAgainError | rex.ClusterDownError):
        return Outcome.TRANSIENT
    text = str(error)
    if isinstance(error, rex.ResponseError) and text.startswith(_TRANSIENT_PREFIXES):
        return Outcome.TRANSIENT
    if isinstance(error, rex.NoPermissionError | rex.OutOfMemoryError) or text.startswith(_STATE_PREFIXES):
        return Outcome.PERMANENT
    return Outcome.REJECTED


# redis-py's words for a connection that never opened: nothing was sent on it.
_CONNECT_FAILURE = "connecting to"


def maybe_landed(error: BaseException) -> bool:
    """Whether a command that failed with ``error`` may still have been written by the server:
    it was sent, but its reply never came (a lost connection, a read timeout), or the master took
    it but too few replicas confirmed it (``WAIT``)."""
    if isinstance(error, NotReplicatedError):
        return True
    if isinstance(error, SlotMovingError | rex.AuthenticationError | rex.ResponseError):
        return False  # never sent, or answered with an error: not written
    if type(error).__name__ == "MasterNotFoundError":
        return False  # no master to send to
    if isinstance(error, rex.ConnectionError | rex.TimeoutError | OSError | asyncio.TimeoutError):
        return _CONNECT_FAILURE not in str(error)
    return isinstance(error, asyncio.CancelledError)


def error_type(error: BaseException) -> str:
    """A short, low-cardinality name for ``error`` (the ``error.type`` metric attribute)."""
    if isinstance(error, rex.ResponseError):
        word = str(error).split(" ", 1)[0]
        if word.isupper() and word.isalpha():
            return word
    return type(error).__name__


def describe(error: BaseException, *, cluster_set_by: str | None = None) -> str:
    """A one-line reason with what to do about it; never contains a password.

    ``cluster_set_by`` names the setting that turned cluster mode on, for the hint to undo it.
    """
    # redis-py puts "Command # 1 (XRANGE ...) of pipeline caused error: " before a pipeline's
    # replies; the server's own words are what says what to do.
    text = _PIPELINE_PREFIX.sub("", str(error).strip()) or type(error).__name__
    if isinstance(error, rex.AuthenticationError | rex.AuthenticationWrongNumberOfArgsError):
        return f"authentication failed ({text}); check the user name and password in the URL"
    if isinstance(error, rex.NoPermissionError) or text.startswith("NOPERM"):
        # redis-py drops the error code from the message; put it back, it is what people search for.
        code = "" if text.startswith("NOPERM") else "NOPERM "
        return (
            f"the ACL user lacks a permission ({code}{text}); {_grant(text)} "
            "(see 'ACL users: least privileges' on the documentation's Operations page)"
        )
    if text.startswith("WRONGTYPE"):
        return f"the stream key holds another data type ({text}); choose another stream name"
    if text.startswith("OOM") or isinstance(error, rex.OutOfMemoryError):
        return (
            f"the server is out of memory ({text}); lower maxlen or retention, "
            "or raise maxmemory / choose an eviction policy"
        )
    if text.startswith("READONLY") or isinstance(error, rex.ReadOnlyError):
        return f"the server is a read-only replica ({text}); point the URL at the master"
    if isinstance(error, NotReplicatedError):
        return f"the write is not on enough replicas yet ({text}); it is sent again while the deadline allows"
    if _is_tls(text):
        return (
            f"TLS failed ({text}); check the CA file (certificate), the client certificate and key "
            "(mutual TLS), and that the host name in the URL is in the server's certificate"
        )
    if isinstance(error, SlotMovingError):
        return f"the cluster is moving the stream's slot ({text})"
    if isinstance(error, rex.AskError) or text.startswith(("MOVED", "ASK")):
        return (
            f"the server is a Redis Cluster node (it redirects: {text}); turn cluster mode on "
            "(cluster=True or OTEL_EXPORTER_REDIS_CLUSTER=true)"
        )
    if "cluster support disabled" in text:
        turned_on = f"{cluster_set_by} turned it on" if cluster_set_by else "cluster=False"
        return f"the server is not a Redis Cluster node ({text}); turn cluster mode off ({turned_on})"
    if isinstance(error, rex.RedisClusterException):
        return f"the cluster cannot be used ({text})"
    if type(error).__name__ == "MasterNotFoundError":
        return (
            f"the sentinels know no usable master ({_sentinel_reasons(text)}); "
            "check sentinels, sentinel_master and the sentinels' user and password"
        )
    if isinstance(error, rex.TimeoutError | asyncio.TimeoutError):
        return f"the server did not answer in time ({text})"
    if isinstance(error, rex.ConnectionError | OSError):
        return f"cannot reach the server ({text}); is it running and reachable?"
    return f"{type(error).__name__}: {text}"
