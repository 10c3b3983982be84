"""One frozen configuration, resolved in one place: argument > environment variable > default.

What each setting is, parses and allows is in ``settings.SETTINGS``; here are the rules that
span settings. A wrong constructor argument raises ``ValueError`` naming what is allowed; a wrong
environment value logs a warning and falls back to the default, so a typo in a deployment never
stops an app. Only a bad value that says where to write (``url``, ``sentinels``) disables the
exporter instead: the default could be another server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._encode.select import import_otlp
from .._log import logger as _logger
from .._redact import redact, redact_url
from .._types import Address
from .checks import url_db
from .settings import (
    CONFIG_SETTINGS,
    DEFAULT_BUFFER_MAX_BYTES,
    DEFAULT_BUFFER_MAX_RECORDS,
    DEFAULT_ENCODING,
    DEFAULT_MAX_ENTRY_BYTES,
    DEFAULT_MODE,
    DEFAULT_SENTINEL_MASTER,
    DEFAULT_SHARDS,
    DEFAULT_WAIT_REPLICAS,
    ConfigArguments,
    Setting,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

# Settings whose values a repr must never show.
_SECRET_FIELDS = frozenset({"password", "sentinel_password"})
# Why a configuration is disabled when an environment variable says where to connect and is wrong.
ERROR_TYPE_INVALID_CONFIG = "invalid_config"


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


def resolve_config(
    *, environ: Mapping[str, str] | None = None, **arguments: Unpack[ConfigArguments]
) -> ExporterConfig:
    """Build the configuration from arguments, then ``OTEL_EXPORTER_REDIS_*`` variables, then defaults."""
    return resolve(arguments, environ)


def _value(
    setting: Setting, argument: Any, environ: Mapping[str, str], default: Any
) -> tuple[Any, str | None]:
    """Argument (checked, raises) > first set environment variable (checked) > default.

    The second item is why the configuration is disabled: a bad variable of a ``where`` setting.
    Any other bad variable logs a warning and gives the default.
    """
    if argument is not None:
        read = setting.argument(argument) if setting.argument else argument
        return setting.check(setting.name, read), None
    for name in setting.env:
        raw = environ.get(name, "")
        raw = raw.strip() if setting.strip else raw
        if not raw:
            continue
        try:
            return setting.check(setting.name, setting.parse(raw)), None
        except ValueError as error:
            if setting.where:
                return default, f"{name}: {redact(str(error))}"
            _logger.warning("Ignoring %s: %s; using the default %r.", name, error, default)
            return default, None
    return default, None


def _from_environment(setting: Setting, argument: Any, environ: Mapping[str, str]) -> str | None:
    """The environment variable that gave ``setting`` its value, if one did."""
    if argument is not None:
        return None
    return next((name for name in setting.env if environ.get(name, "").strip()), None)


def resolve(arguments: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> ExporterConfig:
    """The configuration for ``arguments`` (keywords of ``SETTINGS``; None or absent: not given)."""
    unknown = sorted(set(arguments) - set(CONFIG_SETTINGS))
    if unknown:
        raise TypeError(f"unknown configuration arguments: {', '.join(unknown)}")
    env = os.environ if environ is None else environ
    given = {name: arguments.get(name) for name in CONFIG_SETTINGS}
    if given["maxlen"] is not None and given["retention"] is not None:
        raise ValueError("maxlen and retention are exclusive: XADD trims by MAXLEN or by MINID, not both")
    resolved: dict[str, Any] = {}
    problems: dict[str, str] = {}
    # Retention first: time-based retention replaces the default length cap.
    for name in ("retention", *(name for name in CONFIG_SETTINGS if name != "retention")):
        setting = CONFIG_SETTINGS[name]
        default = setting.default
        if name == "maxlen" and given["maxlen"] is None and resolved["retention"] is not None:
            default = 0
        resolved[name], problem = _value(setting, given[name], env, default)
        if problem is not None:
            problems[name] = problem
    if "url" in problems:
        resolved["url"] = ""
    resolved["disabled"] = problems.get("url") or problems.get("sentinels")
    cluster_from = _from_environment(CONFIG_SETTINGS["cluster"], given["cluster"], env)
    resolved["cluster_set_by"] = (
        f"cluster={given['cluster']!r}"
        if given["cluster"] is not None
        else f"{cluster_from}={env[cluster_from].strip()}"
        if cluster_from
        else None
    )
    if resolved["disabled"] is None:
        _settle_deployment(resolved, given, env)
    if not resolved["cluster"]:  # an ignored or overruled setting turned nothing on
        resolved["cluster_set_by"] = None
    if resolved["maxlen"] and resolved["retention"] is not None:
        _logger.warning(
            "Both %s and %s are set; trimming by length (MAXLEN ~ %d) and ignoring the retention.",
            CONFIG_SETTINGS["maxlen"].env[0],
            CONFIG_SETTINGS["retention"].env[0],
            resolved["maxlen"],
        )
        resolved["retention"] = None
    resolved["maxlen"] = resolved["maxlen"] or None
    resolved["trace_index_ttl"] = resolved["trace_index_ttl"] or None
    resolved["encoding"] = _available_encoding(given["encoding"], resolved["encoding"])
    return ExporterConfig(
        **{setting.config_field: resolved[name] for name, setting in CONFIG_SETTINGS.items()},
        cluster_set_by=resolved["cluster_set_by"],
        disabled=resolved["disabled"],
    )


def _available_encoding(argument: str | None, resolved: str) -> str:
    """An OTLP encoding asked for by the environment without the ``otlp`` extra falls back to
    ``flat`` with a warning (an argument raises ``OtlpNotInstalledError`` in the exporter)."""
    if argument is not None or resolved == DEFAULT_ENCODING:
        return resolved
    try:
        import_otlp()
    except ImportError as error:
        _logger.warning(
            "Ignoring %s=%s: %s; using the default %r.",
            CONFIG_SETTINGS["encoding"].env[0],
            resolved,
            error,
            DEFAULT_ENCODING,
        )
        return DEFAULT_ENCODING
    return resolved


def _conflict(message: str, from_environment: Sequence[str]) -> None:
    """Arguments that contradict each other raise; when an environment variable takes part,
    a warning names it and the caller drops that variable's setting."""
    if not from_environment:
        raise ValueError(message)
    _logger.warning("%s; ignoring %s.", message, " and ".join(from_environment))


def _settle_deployment(resolved: dict[str, Any], given: Mapping[str, Any], env: Mapping[str, str]) -> None:
    """Where and how to connect, checked together: the URL, Cluster or Sentinel, TLS files.

    Settings that only make sense together are checked together (see ``_conflict``).
    """

    def settle(message: str, names: tuple[str, ...], drop: tuple[str, ...]) -> None:
        """A contradiction among ``names``: raise when all are arguments; otherwise warn and reset
        those of ``drop`` that came from the environment (all of ``drop`` if none did)."""
        variables = {name: _from_environment(CONFIG_SETTINGS[name], given[name], env) for name in names}
        from_env = [name for name in names if variables[name]]
        _conflict(message, [str(variables[name]) for name in from_env])
        for name in [name for name in drop if name in from_env] or drop:
            resolved[name] = CONFIG_SETTINGS[name].default
            if name == "url":
                # Another server than the one named would get the logs: write nowhere instead.
                url_variables = CONFIG_SETTINGS["url"].env
                resolved["disabled"] = f"{variables.get('url') or url_variables[-1]}: {message}"

    def scheme() -> str:
        return str(urlsplit(resolved["url"]).scheme)

    if resolved["cluster"] and resolved["sentinels"]:
        message = "cluster and sentinels are exclusive: a deployment is a Cluster or uses Sentinel"
        settle(message, ("cluster", "sentinels"), drop=("cluster", "sentinels"))
    if resolved["cluster"] and (scheme() == "unix" or url_db(resolved["url"])):
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
