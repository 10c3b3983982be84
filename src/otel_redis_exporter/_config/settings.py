"""Every setting of the exporter, in one table: argument, environment variables, parse, check,
default (with its unit), and the row the documentation's configuration table shows for it.

Adding a setting: a row of ``SETTINGS``, a field of ``ExporterConfig``, a keyword of
``RedisLogExporter`` and of ``TuningOptions``. Tests prove that these agree with the table and
that the documentation's table is rendered from this table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from .._keys import MAX_SHARDS
from .._types import Address
from . import checks
from .checks import Check

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_STREAM = "otel:logs"
# Approximate cap on entries per stream key: about 100 MB at ~1 KB per entry, so a forgotten
# stream cannot fill a server's memory silently. 0 disables length trimming.
DEFAULT_MAXLEN = 100_000
DEFAULT_TIMEOUT_S = 10.0
# Longest str or bytes value kept in a body or attribute (characters or bytes), like
# OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT. Longer values are truncated and the entry says so.
DEFAULT_MAX_VALUE_LENGTH = 64 * 1024
MIN_MAX_VALUE_LENGTH = 16
# Bounds of the sender's queue: records waiting to be written, and their approximate size in bytes
# (50,000 records is 10 s of logging at 5,000 records/s).
DEFAULT_BUFFER_MAX_RECORDS = 50_000
DEFAULT_BUFFER_MAX_BYTES = 32 * 1024 * 1024
MODES = ("sync", "async")
DEFAULT_MODE = "sync"
# "flat": one stream field per record attribute (the documented entry schema); the OTLP encodings
# put the record's standard OTLP ResourceLogs (JSON or protobuf bytes) in one `payload` field.
ENCODINGS = ("flat", "otlp_json", "otlp_proto")
DEFAULT_ENCODING = "flat"
# Approximate cap on one entry's encoded size, in bytes: collections in a body or attribute stop
# growing once an entry reaches it (the entry's `truncated` field says which), so one huge record
# can neither fill the server nor stall an export. Below redis-py's and the server's own limits.
DEFAULT_MAX_ENTRY_BYTES = 1024 * 1024
MIN_MAX_ENTRY_BYTES = 1024
# Deployments: Redis Cluster, Sentinel, durable writes, TLS.
DEFAULT_SHARDS = 1
DEFAULT_SENTINEL_MASTER = "mymaster"
DEFAULT_WAIT_REPLICAS = 0


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: how an argument or environment variable becomes a checked value."""

    name: str  # the keyword argument
    env: tuple[str, ...]  # environment variables, the first one set wins
    parse: Callable[[str], Any]  # an environment variable's text to a value
    check: Check  # the value, checked (raises ValueError naming what is allowed)
    default: Any
    values: str  # the configuration table's "unit / values" column
    shown_default: str | None = None  # the table's default column when not the default itself
    field: str | None = None  # the ExporterConfig field, when not ``name``
    # How an argument is read before its check (an environment variable goes through ``parse``).
    argument: Callable[[Any], Any] | None = None
    # Settings that say where to write: a bad environment value disables the exporter rather
    # than fall back to the default, which could be another server.
    where: bool = False
    strip: bool = True  # an environment value loses its surrounding blanks (not a password's)

    @property
    def config_field(self) -> str:
        return self.field or self.name

    def table_row(self) -> str:
        env = ", then ".join(f"`{name}`" for name in self.env) or "—"
        return f"| `{self.name}` | {env} | {self.shown_default or _shown(self.default)} | {self.values} |"


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def _setting(  # noqa: PLR0917 - a row of the table reads left to right, like the documentation's
    name: str,
    env: str | tuple[str, ...],
    parse: Callable[[str], Any],
    check: Check,
    default: Any,
    values: str,
    **more: Any,
) -> Setting:
    return Setting(name, (env,) if isinstance(env, str) else env, parse, check, default, values, **more)


_PREFIX = "OTEL_EXPORTER_REDIS_"
_LOGS = "OTEL_EXPORTER_REDIS_LOGS_"

# The settings in the documentation's order. Arguments win over environment variables, which win over
# defaults (see ``resolve``). One row a setting, laid out by hand.
# fmt: off
SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        _setting(
            "url", (f"{_LOGS}URL", f"{_PREFIX}URL"), str, checks.redis_url, DEFAULT_URL,
            "`redis://[user:password@]host:port/db`, `rediss://…` (TLS), `unix:///path.sock?db=0`",
            where=True,
        ),
        _setting(
            "stream", f"{_LOGS}STREAM", str, checks.stream_key, DEFAULT_STREAM,
            "a key, or a template such as `logs:{service.name}` (see below)",
        ),
        _setting(
            "maxlen", f"{_LOGS}MAXLEN", int, checks.whole("entries", note=" (0 disables)"), DEFAULT_MAXLEN,
            "entries per stream key, approximate (`XADD MAXLEN ~`); `0` disables",
        ),
        _setting(
            "retention", f"{_LOGS}RETENTION", float, checks.seconds(), None,
            "seconds (`XADD MINID ~ now-retention`); exclusive with `maxlen`",
            shown_default="unset", field="retention_s",
        ),
        _setting(
            "timeout", (f"{_LOGS}TIMEOUT", f"{_PREFIX}TIMEOUT"), float, checks.seconds(), DEFAULT_TIMEOUT_S,
            "seconds one round trip waits for Redis (connect, write, replies) before its connection is "
            "dropped and the batch sent again",
            field="timeout_s",
        ),
        _setting(
            "max_value_length", f"{_LOGS}MAX_VALUE_LENGTH", int, checks.whole(low=MIN_MAX_VALUE_LENGTH),
            DEFAULT_MAX_VALUE_LENGTH, "characters (str) or bytes (bytes) kept per body or attribute value",
        ),
        _setting(
            "mode", f"{_PREFIX}MODE", str.lower, checks.choice(MODES), DEFAULT_MODE,
            '`sync` or `async` (see "Sync and async")',
        ),
        _setting(
            "buffer_max_records", f"{_LOGS}BUFFER_MAX_RECORDS", int,
            checks.whole(note=" (0 disables buffering)"), DEFAULT_BUFFER_MAX_RECORDS,
            "records the sender's queue holds while Redis does not take them (10 s at 5,000 records/s); "
            "`0` keeps nothing for another attempt",
        ),
        _setting(
            "buffer_max_bytes", f"{_LOGS}BUFFER_MAX_BYTES", int, checks.whole(note=" (0 disables buffering)"),
            DEFAULT_BUFFER_MAX_BYTES, "bytes (approximate encoded size) the queue holds",
        ),
        # Not part of the configuration: the exporter uses the object as it is given.
        _setting(
            "meter_provider", (), str, checks.as_given, None, "where the exporter's own metrics go",
            shown_default="the global provider",
        ),
        _setting(
            "encoding", f"{_LOGS}ENCODING", str.lower, checks.choice(ENCODINGS), DEFAULT_ENCODING,
            "`flat`, `otlp_json` or `otlp_proto` (the OTLP ones need the `otlp` extra; without it the "
            'variable falls back to `flat` with a warning; see "Reading logs back")',
        ),
        _setting(
            "trace_index_ttl", f"{_LOGS}TRACE_INDEX_TTL", float, checks.seconds(zero_disables=True), None,
            "seconds a per-trace index key lives after the trace's last record; `0` disables",
            shown_default="unset (no index)", field="trace_index_ttl_s",
        ),
        _setting(
            "cluster", f"{_PREFIX}CLUSTER", checks.parse_bool, checks.boolean, False,
            '`true`: a Redis Cluster, `url` names any node (see "Deployments")',
        ),
        _setting(
            "shards", f"{_LOGS}SHARDS", int, checks.whole(low=1, high=MAX_SHARDS), DEFAULT_SHARDS,
            f"stream keys each stream is spread over, 1 to {MAX_SHARDS}",
        ),
        _setting(
            "sentinels", f"{_PREFIX}SENTINELS", checks.parse_sentinels, checks.addresses, (),
            f"`host:port,host:port` of the sentinels (port defaults to {checks.DEFAULT_SENTINEL_PORT})",
            shown_default="unset", argument=checks.sentinels_argument, where=True,
        ),
        _setting(
            "sentinel_master", f"{_PREFIX}SENTINEL_MASTER", str, checks.plain_name, DEFAULT_SENTINEL_MASTER,
            "the master's name in the sentinels' configuration",
        ),
        _setting(
            "sentinel_username", f"{_PREFIX}SENTINEL_USERNAME", str, checks.plain_name, None,
            "ACL user on the sentinels (the data nodes' user is in `url`)", shown_default="unset",
        ),
        _setting(
            "sentinel_password", f"{_PREFIX}SENTINEL_PASSWORD", str, checks.as_given, None,
            "password on the sentinels", shown_default="unset", strip=False,
        ),
        _setting(
            "wait_replicas", f"{_PREFIX}WAIT_REPLICAS", int, checks.whole("replicas", note=" (0 disables)"),
            DEFAULT_WAIT_REPLICAS,
            "replicas that must have a batch (`WAIT`) before it counts as exported; `0` disables",
        ),
        _setting(
            "certificate", f"{_PREFIX}CERTIFICATE", str, checks.pem_file, None,
            "PEM file of the CA(s) that signed the server certificate (`rediss://` only)",
            shown_default="unset: the system's CAs",
        ),
        _setting(
            "client_certificate", f"{_PREFIX}CLIENT_CERTIFICATE", str, checks.pem_file, None,
            "PEM client certificate for mutual TLS, with `client_key`", shown_default="unset",
        ),
        _setting(
            "client_key", f"{_PREFIX}CLIENT_KEY", str, checks.pem_file, None,
            "PEM private key of `client_certificate`", shown_default="unset",
        ),
        _setting(
            "username", f"{_PREFIX}USERNAME", str, checks.secret, None,
            "ACL user on the data nodes; wins over the URL's", shown_default="the URL's user",
        ),
        _setting(
            "password", f"{_PREFIX}PASSWORD", str, checks.secret, None,
            "password on the data nodes; wins over the URL's", shown_default="the URL's password",
        ),
        _setting(
            "max_entry_bytes", f"{_LOGS}MAX_ENTRY_BYTES", int, checks.whole("bytes", low=MIN_MAX_ENTRY_BYTES),
            DEFAULT_MAX_ENTRY_BYTES,
            f"bytes, approximate, of one entry (at least {MIN_MAX_ENTRY_BYTES}); past it, values are cut "
            'and collections stop growing (see "The stream entry schema")',
        ),
    )
}
# fmt: on
# The settings the configuration holds (all but ``meter_provider``).
CONFIG_SETTINGS = {name: setting for name, setting in SETTINGS.items() if name != "meter_provider"}


class TuningOptions(TypedDict, total=False):
    """The configuration's keywords besides ``url`` and ``stream`` (see ``SETTINGS``)."""

    maxlen: int | None
    retention: float | None
    timeout: float | None
    max_value_length: int | None
    mode: str | None
    buffer_max_records: int | None
    buffer_max_bytes: int | None
    encoding: str | None
    trace_index_ttl: float | None
    cluster: bool | None
    shards: int | None
    sentinels: str | Sequence[str | Address] | None
    sentinel_master: str | None
    sentinel_username: str | None
    sentinel_password: str | None
    wait_replicas: int | None
    certificate: str | None
    client_key: str | None
    client_certificate: str | None
    username: str | None
    password: str | None
    max_entry_bytes: int | None


class ExporterOptions(TuningOptions, total=False):
    """``RedisLogExporter``'s keywords besides ``url`` and ``stream``, for ``**options``."""

    meter_provider: MeterProvider | None


class ConfigArguments(TuningOptions, total=False):
    """Every keyword of ``resolve_config``."""

    url: str | None
    stream: str | None


def settings_table() -> list[str]:
    """The configuration table of the documentation (Markdown), header included."""
    header = ["| option | environment variable | default | unit / values |", "| --- | --- | --- | --- |"]
    return header + [setting.table_row() for setting in SETTINGS.values()]
