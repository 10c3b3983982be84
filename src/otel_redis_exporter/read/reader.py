"""Reading log records back: ranges, following, consumer groups, lookup by trace, statistics.

``RedisLogReader`` is synchronous (redis-py) and decodes every entry the exporter wrote, in any
of its encodings, to a frozen ``LogEntry``. It reads one stream key, a list of keys, or every key
that matches a pattern (a templated ``stream`` such as ``logs:{service.name}`` is read as the
pattern ``logs:*``); entries of several keys are merged in entry-id order, which is the order
in which the server accepted them.

It connects as the exporter does: one server, Sentinel, or a Redis Cluster (where the shard keys
of ``shards=N`` are merged by entry id like any other keys), with the same settings and the same
``OTEL_EXPORTER_REDIS_*`` variables (see ``_connection``).

Errors from the server (unreachable, wrong password, ...) are raised as redis-py exceptions;
``otel_redis_exporter._errors.describe`` turns them into a sentence.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis import exceptions as rex

from .._config import ExporterConfig, resolve_config
from .._connection import close_client, one_slot, reader_client
from .._encode.entry import LogEntry, text
from .._index import index_base, index_key, parse_member
from .._keys import StreamKeyTemplate, shard_keys, shard_of
from .._redact import redact_url
from .._types import Address
from .groups import DEFAULT_CLAIM_IDLE_MS, ConsumerGroup, GroupInfo, group_info
from .replies import (
    DEAD_LETTER_SUFFIX,
    DEFAULT_BLOCK_MS,
    RawEntry,
    decode_entry,
    entries_of,
    fields_of,
    order_key,
    parse_id,
    streams_of,
)

# Entries fetched per XRANGE / XREVRANGE call while paging through a stream.
PAGE_SIZE = 1000
# How often (seconds) a pattern is scanned again for new stream keys while following.
KEY_REFRESH_S = 5.0
# How many record uids a read remembers to drop the second copy of a retried write.
DEDUPE_WINDOW = 100_000
# On a Cluster, keys in different slots cannot share one blocking XREAD: they are read one by
# one without blocking, and read again after this pause (seconds) while nothing arrives.
CLUSTER_POLL_S = 0.05
# A follower that lost its server tries again after this many seconds, doubling up to the cap.
RECONNECT_FIRST_S = 0.1
RECONNECT_MAX_S = 5.0

# Told about a lost connection while following: the error, the attempt (1, 2, ...) and the
# seconds until the next one.
OnDisconnect = Callable[[BaseException, int, float], object]


def _ms_bound(value: str | int) -> str:
    """An entry id bound: ``"-"``, ``"+"``, an id, or milliseconds since the epoch."""
    if isinstance(value, bool):
        raise TypeError(f"a range bound is an entry id or milliseconds since the epoch; got {value!r}")
    return str(value)


def _wait(stop: threading.Event | None, seconds: float) -> None:
    if stop is None:
        time.sleep(seconds)
    else:
        stop.wait(seconds)


def _is_trace_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


class _Seen:
    """The last ``window`` record uids (``log.record.uid``) one read has returned.

    A write whose reply was lost is sent again and can land twice; both copies carry the same
    uid, and the copies are close together in the stream, so a bounded window catches them.
    """

    def __init__(self, window: int = DEDUPE_WINDOW) -> None:
        self._window = window
        self._order: deque[str] = deque()
        self._uids: set[str] = set()

    def first(self, entry: LogEntry) -> bool:
        """True the first time a uid is seen (and for entries without one)."""
        uid = entry.uid
        if uid is None:
            return True
        if uid in self._uids:
            return False
        self._uids.add(uid)
        self._order.append(uid)
        if len(self._order) > self._window:
            self._uids.discard(self._order.popleft())
        return True


@dataclass(frozen=True, slots=True)
class StreamStats:
    """One stream key at a glance; times are milliseconds since the epoch (entry-id time)."""

    key: str
    length: int
    first_entry_id: str | None
    last_entry_id: str | None
    memory_bytes: int | None
    groups: tuple[GroupInfo, ...] = ()
    # Entries in the key's dead-letter stream (``key`` + ``DEAD_LETTER_SUFFIX``).
    dead_letters: int = 0

    @property
    def first_ms(self) -> int | None:
        return parse_id(self.first_entry_id)[0] if self.first_entry_id else None

    @property
    def last_ms(self) -> int | None:
        return parse_id(self.last_entry_id)[0] if self.last_entry_id else None


class RedisLogReader:
    """Reads the log records a ``RedisLogExporter`` wrote, with their types restored.

    ``url`` and ``stream`` fall back to the exporter's environment variables
    (``OTEL_EXPORTER_REDIS_LOGS_URL``, ``OTEL_EXPORTER_REDIS_LOGS_STREAM``, ...) and defaults, so
    a reader configured like the exporter reads what it wrote. ``stream`` is a key or a template
    (``logs:{service.name}`` reads every key the template can produce). ``keys`` (an explicit
    list) or ``pattern`` (a ``SCAN MATCH`` glob such as ``logs:*``) choose the keys instead; the
    trace index is still looked up next to ``stream``. ``timeout`` (seconds, default 10) bounds
    every call; blocking reads get their block time on top. ``username`` and ``password`` (or
    ``OTEL_EXPORTER_REDIS_USERNAME`` / ``..._PASSWORD``) are the ACL user, kept out of the URL.

    The deployment settings are the exporter's, with the same environment variables:
    ``cluster`` (a Redis Cluster; ``url`` names any node), ``shards`` (each stream key is read
    as its ``shards`` shard keys, merged by entry id), ``sentinels`` / ``sentinel_master`` /
    ``sentinel_username`` / ``sentinel_password`` (the master found through Sentinel), and the
    TLS files ``certificate``, ``client_key``, ``client_certificate`` for a ``rediss://`` URL, and
    ``username`` / ``password`` (the ACL user kept out of the URL; they win over the URL's).

    The constructor does no I/O. Use it as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        url: str | None = None,
        stream: str | None = None,
        *,
        keys: Sequence[str] | None = None,
        pattern: str | None = None,
        timeout: float | None = None,
        cluster: bool | None = None,
        shards: int | None = None,
        sentinels: str | Sequence[str | Address] | None = None,
        sentinel_master: str | None = None,
        sentinel_username: str | None = None,
        sentinel_password: str | None = None,
        certificate: str | None = None,
        client_key: str | None = None,
        client_certificate: str | None = None,
        username: str | None = None,
        password: str | None = None,
        _key_refresh_s: float = KEY_REFRESH_S,
    ) -> None:
        if keys is not None and pattern is not None:
            raise ValueError("keys and pattern are exclusive: give a list of keys or one pattern")
        if keys is not None and (isinstance(keys, str) or not all(isinstance(k, str) and k for k in keys)):
            raise ValueError(f"keys must be a list of non-empty stream keys; got {keys!r}")
        if pattern is not None and not pattern:
            raise ValueError("pattern must be a non-empty SCAN MATCH pattern")
        self._config = resolve_config(
            url=url,
            stream=stream,
            timeout=timeout,
            cluster=cluster,
            shards=shards,
            sentinels=sentinels,
            sentinel_master=sentinel_master,
            sentinel_username=sentinel_username,
            sentinel_password=sentinel_password,
            certificate=certificate,
            client_key=client_key,
            client_certificate=client_certificate,
            username=username,
            password=password,
        )
        if self._config.disabled is not None:
            raise ValueError(self._config.disabled)
        template = StreamKeyTemplate.parse(self._config.stream)
        # Stream keys as the exporter names them; each is written to ``shards`` shard keys.
        self._streams: list[str] | None = None
        self._pattern: str | None = None
        if keys is not None:
            self._streams = list(dict.fromkeys(keys))
        elif pattern is not None:
            self._pattern = pattern
        elif template.is_fixed:
            self._streams = [self._config.stream]
        else:
            self._pattern = template.pattern()
        self._fixed_keys = (
            None
            if self._streams is None
            else [key for stream in self._streams for key in shard_keys(stream, self._config.shards)]
        )
        self._index_base = index_base(self._config.stream)
        self._clients: dict[float, Any] = {}
        self._lock = threading.Lock()
        self.key_refresh_s = _key_refresh_s

    @property
    def config(self) -> ExporterConfig:
        """The resolved URL, stream, timeout and deployment (its repr hides the passwords)."""
        return self._config

    def __repr__(self) -> str:
        where = self._pattern if self._fixed_keys is None else ",".join(self._fixed_keys)
        return f"RedisLogReader(url={redact_url(self._config.url)!r}, keys={where!r})"

    def __enter__(self) -> RedisLogReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection; the reader can be used again afterwards (it reconnects)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            close_client(client)

    # ------------------------------------------------------------------ connections

    def client(self, block_ms: int = 0) -> Any:
        """The redis-py client the reader reads with; its socket timeout covers ``timeout`` plus
        ``block_ms`` (a blocking read). Shared by the reader's consumer groups; do not close it."""
        extra_s = block_ms / 1000
        with self._lock:
            client = self._clients.get(extra_s)
            if client is None:
                client = self._clients[extra_s] = reader_client(self._config, extra_s)
            return client

    def ping(self) -> None:
        """Check that the server answers (and the password is right); raises otherwise."""
        self.client().ping()

    # ------------------------------------------------------------------ keys and decoding

    @property
    def dynamic(self) -> bool:
        """Whether the keys come from a pattern (and so can change over time)."""
        return self._fixed_keys is None

    def keys(self) -> list[str]:
        """The stream keys read: the fixed ones, or the stream keys matching the pattern now."""
        if self._fixed_keys is not None:
            return list(self._fixed_keys)
        client = self.client()
        found = {text(key) for key in client.scan_iter(match=self._pattern, count=1000, _type="stream")}
        return sorted(key for key in found if not key.endswith(DEAD_LETTER_SUFFIX))

    # ------------------------------------------------------------------ ranges

    def _pages(
        self, key: str, start: str, end: str, reverse: bool
    ) -> Iterator[tuple[tuple[int, str, int], str, bytes, dict[bytes, bytes] | None]]:
        """Every entry of ``key`` between the bounds, fetched a page at a time."""
        client = self.client()
        low, high = start, end
        while True:
            if reverse:
                page = entries_of(client.execute_command("XREVRANGE", key, high, low, "COUNT", PAGE_SIZE))
            else:
                page = entries_of(client.execute_command("XRANGE", key, low, high, "COUNT", PAGE_SIZE))
            for entry_id, fields in page:
                yield order_key(key, entry_id), key, entry_id, fields
            if len(page) < PAGE_SIZE:
                return
            last = text(page[-1][0])
            if reverse:
                high = f"({last}"
            else:
                low = f"({last}"

    def _merged(
        self,
        keys: Iterable[str],
        start: str | Mapping[str, str],
        end: str | Mapping[str, str],
        reverse: bool,
    ) -> Iterator[tuple[tuple[int, str, int], str, bytes, dict[bytes, bytes] | None]]:
        def bound(value: str | Mapping[str, str], key: str) -> str:
            return value if isinstance(value, str) else value[key]

        sources = [self._pages(key, bound(start, key), bound(end, key), reverse) for key in keys]
        return heapq.merge(*sources, key=lambda item: item[0], reverse=reverse)

    def entries(
        self, start: str | int = "-", end: str | int = "+", *, reverse: bool = False
    ) -> Iterator[LogEntry]:
        """Every record between ``start`` and ``end`` (inclusive), lazily, a page at a time.

        Bounds are entry ids (``"1700000000000-0"``), ``"-"`` / ``"+"``, ``"(id"`` for an
        exclusive bound, or ints: milliseconds since the epoch. ``reverse=True`` goes newest
        first. Entries of several keys are merged by entry id.
        """
        low, high = _ms_bound(start), _ms_bound(end)
        seen = _Seen()
        for _, key, entry_id, fields in self._merged(self.keys(), low, high, reverse):
            entry = decode_entry(key, entry_id, fields)
            if entry is not None and seen.first(entry):
                yield entry

    def range(self, start: str | int = "-", end: str | int = "+", count: int | None = None) -> list[LogEntry]:
        """The records between ``start`` and ``end`` in entry-id order, at most ``count`` of them.

        Bounds as for ``entries``. Without ``count`` the whole range is read (a page at a time).
        """
        if count is not None and count < 0:
            raise ValueError(f"count must be >= 0; got {count!r}")
        return list(itertools.islice(self.entries(start, end), count))

    def _last_ids(self, keys: Sequence[str]) -> dict[str, str]:
        """The newest entry id of every key (``0-0`` for an empty key), in one round trip."""
        pipe = self.client().pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("XREVRANGE", key, "+", "-", "COUNT", 1)
        replies = pipe.execute()
        out: dict[str, str] = {}
        for key, reply in zip(keys, replies, strict=True):
            page = entries_of(reply)
            out[key] = text(page[0][0]) if page else "0-0"
        return out

    def tail(
        self,
        count: int = 10,
        *,
        follow: bool = True,
        block_ms: int = DEFAULT_BLOCK_MS,
        where: Callable[[LogEntry], bool] | None = None,
        stop: threading.Event | None = None,
        on_disconnect: OnDisconnect | None = None,
    ) -> Iterator[LogEntry]:
        """The newest ``count`` records (oldest first), then, with ``follow``, every new one.

        ``where`` keeps only the records it returns True for (the newest ``count`` matching
        ones are shown first). Following blocks in ``XREAD`` for up to ``block_ms``
        milliseconds at a time (> 0) and ends when ``stop`` is set or the caller stops iterating;
        keys that appear later under a pattern are picked up within ``KEY_REFRESH_S`` seconds.

        With ``on_disconnect``, following survives a restart or failover of the server: a lost
        connection is reported to it, and the reader connects again after a backoff
        (``RECONNECT_FIRST_S`` doubling up to ``RECONNECT_MAX_S``) and resumes after the last
        entry it read, so nothing is skipped or yielded twice. Without it the error is raised.
        """
        if count < 0:
            raise ValueError(f"count must be >= 0; got {count!r}")
        if block_ms <= 0:
            raise ValueError(f"block_ms must be a number of milliseconds > 0; got {block_ms!r}")
        keys = self.keys()
        last = self._last_ids(keys)
        seen = _Seen()
        if count:
            newest: list[LogEntry] = []
            for _, key, entry_id, fields in self._merged(keys, "-", last, reverse=True):
                entry = decode_entry(key, entry_id, fields)
                if entry is not None and seen.first(entry) and (where is None or where(entry)):
                    newest.append(entry)
                    if len(newest) >= count:
                        break
            yield from reversed(newest)
        if not follow:
            return
        yield from self._follow(last, block_ms, where, stop, seen=seen, on_disconnect=on_disconnect)

    def _follow(
        self,
        last: dict[str, str],
        block_ms: int,
        where: Callable[[LogEntry], bool] | None,
        stop: threading.Event | None,
        *,
        seen: _Seen,
        on_disconnect: OnDisconnect | None,
    ) -> Iterator[LogEntry]:
        refreshed = time.monotonic()
        failures = 0
        while stop is None or not stop.is_set():
            try:
                if self.dynamic and time.monotonic() - refreshed >= self.key_refresh_s:
                    for key in self.keys():
                        last.setdefault(key, "0-0")
                    refreshed = time.monotonic()
                if not last:  # no key matches the pattern yet
                    _wait(stop, block_ms / 1000)
                    refreshed -= self.key_refresh_s
                    continue
                replies = self.read_streams(["XREAD", "COUNT", PAGE_SIZE], last, block_ms, stop)
            except Exception as error:
                if on_disconnect is None or not _is_connection_error(error):
                    raise
                failures += 1
                delay = min(RECONNECT_FIRST_S * 2 ** (failures - 1), RECONNECT_MAX_S)
                on_disconnect(error, failures, delay)
                _wait(stop, delay)
                continue
            failures = 0
            batch: list[tuple[tuple[int, str, int], LogEntry]] = []
            for key, page in replies:
                for entry_id, fields in page:
                    last[key] = text(entry_id)
                    entry = decode_entry(key, entry_id, fields)
                    if entry is not None and seen.first(entry) and (where is None or where(entry)):
                        batch.append((order_key(key, entry_id), entry))
            batch.sort(key=lambda item: item[0])
            for _, entry in batch:
                yield entry

    def read_streams(
        self,
        command: Sequence[Any],
        ids: Mapping[str, str],
        block_ms: int | None,
        stop: threading.Event | None = None,
    ) -> list[tuple[str, list[RawEntry]]]:
        """``XREAD`` or ``XREADGROUP`` (``command`` up to ``STREAMS``) of ``ids``' keys after their ids.

        One command, blocking up to ``block_ms``, where the keys share a slot (always on one
        server). On a Cluster, keys in different slots are read in one pipeline without
        blocking, again every ``CLUSTER_POLL_S`` until something arrives or ``block_ms`` is over.
        """
        keys = list(ids)
        if one_slot(self._config, keys):
            args = [*command, *(("BLOCK", block_ms) if block_ms else ()), "STREAMS", *keys, *ids.values()]
            return streams_of(self.client(block_ms or 0).execute_command(*args))
        deadline = time.monotonic() + (block_ms or 0) / 1000
        while True:
            pipe = self.client().pipeline(transaction=False)
            for key, entry_id in ids.items():
                pipe.execute_command(*command, "STREAMS", key, entry_id)
            found = [pair for reply in pipe.execute() for pair in streams_of(reply) if pair[1]]
            left = deadline - time.monotonic()
            if found or left <= 0 or (stop is not None and stop.is_set()):
                return found
            _wait(stop, min(CLUSTER_POLL_S, left))

    # ------------------------------------------------------------------ by trace

    def by_trace(self, trace_id: str, *, use_index: bool | None = None) -> list[LogEntry]:
        """Every record of one trace (32 hex digits), in time order (record timestamp).

        With the exporter's trace index (``trace_index_ttl``) the cost is proportional to the
        trace's records: one ``LRANGE`` and one round trip of ``XRANGE id id``. When the index
        key does not exist (index off, expired, or no such trace) this falls back to a scan that
        reads every entry of every key: proportional to the stream's length.
        ``use_index=True`` never scans; ``use_index=False`` always scans.
        """
        trace = trace_id.strip().lower()
        if not _is_trace_id(trace):
            raise ValueError(f"trace_id must be 32 hex digits; got {trace_id!r}")
        if use_index is not False:
            members = self.client().lrange(index_key(self._index_base, trace), 0, -1)
            if members or use_index:
                return self._sorted(self._fetch_members(members))
        return self._sorted(self._scan_for_trace(trace))

    def _fetch_members(self, members: Sequence[bytes]) -> list[LogEntry]:
        wanted = list(dict.fromkeys(parse_member(member) for member in members))
        if not wanted:
            return []
        pipe = self.client().pipeline(transaction=False)
        for key, entry_id in wanted:
            pipe.execute_command("XRANGE", key, entry_id, entry_id)
        out: list[LogEntry] = []
        for (key, _), reply in zip(wanted, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, Exception):
                continue  # the key was deleted or replaced: its entries are gone
            for found_id, fields in entries_of(reply):
                entry = decode_entry(key, found_id, fields)
                if entry is not None:
                    out.append(entry)
        return out

    def _scan_for_trace(self, trace: str) -> list[LogEntry]:
        wanted = trace.encode("ascii")
        out: list[LogEntry] = []
        for _, key, entry_id, fields in self._merged(self._trace_keys(trace), "-", "+", reverse=False):
            if fields and fields.get(b"trace_id") == wanted:
                entry = decode_entry(key, entry_id, fields)
                if entry is not None:
                    out.append(entry)
        return out

    def _trace_keys(self, trace: str) -> list[str]:
        """The keys that can hold the records of ``trace``: with shards, only the trace's shard
        of each stream (found by pattern, the shards are not known apart: all keys)."""
        shards = self._config.shards
        if shards == 1 or self._streams is None:
            return self.keys()
        return [shard_keys(stream, shards)[shard_of(trace, shards, 0)] for stream in self._streams]

    @staticmethod
    def _sorted(entries: list[LogEntry]) -> list[LogEntry]:
        """Time order, each record once (a retried write's second copy is dropped)."""
        ordered = sorted(entries, key=lambda e: (e.timestamp, parse_id(e.entry_id or "0-0"), e.stream or ""))
        seen = _Seen()
        return [entry for entry in ordered if seen.first(entry)]

    # ------------------------------------------------------------------ groups and stats

    def group(
        self,
        name: str,
        consumer: str,
        *,
        claim_idle_ms: int = DEFAULT_CLAIM_IDLE_MS,
        start: str = "0",
    ) -> ConsumerGroup:
        """A consumer ``consumer`` of the consumer group ``name`` on the reader's keys.

        The group is created on first use where it is missing (``XGROUP CREATE ... MKSTREAM``),
        starting at ``start`` (``"0"``: every entry already in the stream, ``"$"``: only new
        ones; keys that appear later under a pattern always start at ``"0"``). Entries other
        consumers left pending for more than ``claim_idle_ms`` milliseconds are taken over.
        """
        return ConsumerGroup(self, name, consumer, claim_idle_ms=claim_idle_ms, start=start)

    def stats(self) -> list[StreamStats]:
        """Length, first and last entry, memory, consumer groups and dead letters of every key,
        in one round trip."""
        keys = self.keys()
        pipe = self.client().pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("XINFO STREAM", key)
            pipe.execute_command("MEMORY USAGE", key)
            pipe.xinfo_groups(key)
            pipe.xlen(key + DEAD_LETTER_SUFFIX)
        replies = pipe.execute(raise_on_error=False)
        out: list[StreamStats] = []
        for position, key in enumerate(keys):
            info, memory, groups, dead = replies[4 * position : 4 * position + 4]
            if isinstance(info, rex.NoPermissionError) or str(info).startswith("NOPERM"):
                raise info  # a missing right is not a missing key
            if isinstance(info, Exception):
                continue  # deleted between SCAN and XINFO
            info = fields_of(info) if not isinstance(info, dict) else info
            info = {text(k): v for k, v in (info or {}).items()}
            first, last = info.get("first-entry"), info.get("last-entry")
            out.append(
                StreamStats(
                    key=key,
                    length=int(info.get("length", 0)),
                    first_entry_id=text(first[0]) if first else None,
                    last_entry_id=text(last[0]) if last else None,
                    memory_bytes=None if isinstance(memory, Exception) or memory is None else int(memory),
                    groups=() if isinstance(groups, Exception) else tuple(group_info(g) for g in groups),
                    dead_letters=0 if isinstance(dead, Exception) else int(dead),
                )
            )
        return out


def _is_connection_error(error: BaseException) -> bool:
    """A lost or refused connection, a timeout, or a server that is loading or read-only (a
    failover under way): what waiting can heal. A wrong password cannot."""
    from redis import exceptions as rex  # noqa: PLC0415

    if isinstance(error, rex.AuthenticationError):
        return False
    return isinstance(
        error, rex.ConnectionError | rex.TimeoutError | rex.BusyLoadingError | rex.ReadOnlyError | OSError
    ) or (isinstance(error, rex.ResponseError) and str(error).startswith(("CLUSTERDOWN", "TRYAGAIN")))
