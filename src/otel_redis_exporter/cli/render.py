"""How the command line shows entries and stream statistics: aligned, colored text or JSON lines."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from .._encode.entry import LogEntry
from .._encode.flat import Sanitizer, dumps
from .._terminal import visible
from ..read import StreamStats

# Lowest severity number of each OpenTelemetry severity range.
SEVERITIES = {
    "TRACE": 1,
    "DEBUG": 5,
    "INFO": 9,
    "WARN": 13,
    "WARNING": 13,
    "ERROR": 17,
    "FATAL": 21,
    "CRITICAL": 21,
}
# Attribute values longer than this are cut in the text output (not with --json).
MAX_SHOWN_VALUE = 120

_RESET = "\033[0m"
_DIM = "\033[2m"
_CYAN = "\033[36m"
_SEVERITY_COLORS = ((21, "\033[1;31m"), (17, "\033[31m"), (13, "\033[33m"), (9, "\033[32m"), (1, _DIM))


def severity_number(entry: LogEntry) -> int | None:
    """The entry's severity number, from its text when only that is set."""
    if entry.severity_number:
        return entry.severity_number
    if entry.severity_text:
        return SEVERITIES.get(entry.severity_text.upper())
    return None


def iso_time(ns: int) -> str:
    """Nanoseconds since the epoch -> ``2024-05-01T12:00:00.123Z`` (UTC, milliseconds)."""
    moment = dt.datetime.fromtimestamp(ns // 1_000_000 / 1000, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def jsonable(value: Any) -> Any:
    """``value`` as JSON data, with the entry schema's tags for bytes and non-finite floats."""
    return Sanitizer(1 << 30).value(value)


def entry_json(entry: LogEntry) -> str:
    """One line of ``--json`` output."""
    document = {
        "time": iso_time(entry.timestamp),
        "timestamp": entry.timestamp,
        "observed_timestamp": entry.observed_timestamp,
        "severity_number": entry.severity_number,
        "severity_text": entry.severity_text,
        "body": entry.body,
        "attributes": dict(entry.attributes),
        "trace_id": entry.trace_id,
        "span_id": entry.span_id,
        "trace_flags": entry.trace_flags,
        "event_name": entry.event_name,
        "service_name": entry.service_name,
        "scope": {
            "name": entry.scope_name,
            "version": entry.scope_version,
            "attributes": dict(entry.scope_attributes),
        },
        "resource": dict(entry.resource),
        "dropped_attributes_count": entry.dropped_attributes_count,
        "truncated": list(entry.truncated),
        "stream": entry.stream,
        "entry_id": entry.entry_id,
        "encoding": entry.encoding,
    }
    return dumps(jsonable(document))


def _shown(value: Any) -> str:
    text = visible(value if isinstance(value, str) else dumps(jsonable(value)))
    return text if len(text) <= MAX_SHOWN_VALUE else text[: MAX_SHOWN_VALUE - 1] + "…"


# Attributes that hold a stack trace (OpenTelemetry semantic conventions): with --full they are
# printed whole, one line per line, under the record.
STACK_TRACE_ATTRIBUTES = ("exception.stacktrace",)


class TextFormatter:
    """Aligned lines: time, severity, service, body, attributes, trace id; colored when asked.

    With ``full``, stack traces are not cut and flattened into the line but follow it whole,
    indented."""

    def __init__(self, color: bool, service_width: int = 8, *, full: bool = False) -> None:
        self._color = color
        self.service_width = service_width
        self._full = full

    def _paint(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self._color and text else text

    def line(self, entry: LogEntry) -> str:
        number = severity_number(entry)
        severity = visible(entry.severity_text or (str(number) if number else "-"))[:5]
        color = next((code for floor, code in _SEVERITY_COLORS if number and number >= floor), "")
        service = visible(entry.service_name or "-")
        self.service_width = max(self.service_width, len(service))
        body = "" if entry.body is None else _shown(entry.body)
        parts = [
            self._paint(_DIM, iso_time(entry.timestamp)),
            self._paint(color, f"{severity:<5}"),
            self._paint(_CYAN, f"{service:<{self.service_width}}"),
            body,
        ]
        whole = {
            key: value
            for key, value in entry.attributes.items()
            if self._full and key in STACK_TRACE_ATTRIBUTES and isinstance(value, str)
        }
        attributes = " ".join(
            f"{self._paint(_DIM, visible(key) + '=')}{_shown(value)}"
            for key, value in entry.attributes.items()
            if key not in whole
        )
        if attributes:
            parts.append(attributes)
        if entry.trace_id:
            parts.append(self._paint(_DIM, f"trace={visible(entry.trace_id)}"))
        below = [f"    {visible(line)}" for value in whole.values() for line in value.splitlines()]
        return "\n".join(["  ".join(parts), *below])


def _ms_time(ms: int | None) -> str:
    return "-" if ms is None else iso_time(ms * 1_000_000)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def stats_text(stats: Sequence[StreamStats], color: bool) -> list[str]:
    """An aligned table of the keys, then one line per consumer group."""
    header = ("stream", "length", "first entry", "last entry", "memory", "dead letters")
    rows = [
        (
            visible(s.key),
            str(s.length),
            _ms_time(s.first_ms),
            _ms_time(s.last_ms),
            _size(s.memory_bytes),
            str(s.dead_letters),
        )
        for s in stats
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def fmt(row: Sequence[str]) -> str:
        cells = [
            row[0].ljust(widths[0]),
            *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)),
        ]
        return "  ".join(cells).rstrip()

    head = fmt(header)
    lines = [f"\033[1m{head}{_RESET}" if color else head, *(fmt(row) for row in rows)]
    groups = [(s.key, g) for s in stats for g in s.groups]
    if groups:
        lines.append("")
        group_header = ("stream", "group", "consumers", "pending", "lag", "last delivered")
        group_rows = [
            (
                visible(key),
                visible(g.name),
                str(g.consumers),
                str(g.pending),
                "-" if g.lag is None else str(g.lag),
                g.last_delivered_id,
            )
            for key, g in groups
        ]
        gw = [max(len(row[i]) for row in [group_header, *group_rows]) for i in range(len(group_header))]
        for row in [group_header, *group_rows]:
            cells = [
                row[0].ljust(gw[0]),
                row[1].ljust(gw[1]),
                *(c.rjust(w) for c, w in zip(row[2:5], gw[2:5], strict=True)),
                row[5],
            ]
            text = "  ".join(cells)
            lines.append(f"\033[1m{text}{_RESET}" if color and row is group_header else text)
    return lines


def stats_json(stats: Sequence[StreamStats]) -> str:
    return json.dumps(
        [
            {
                "stream": s.key,
                "length": s.length,
                "first_entry_id": s.first_entry_id,
                "last_entry_id": s.last_entry_id,
                "first_time": None if s.first_ms is None else _ms_time(s.first_ms),
                "last_time": None if s.last_ms is None else _ms_time(s.last_ms),
                "memory_bytes": s.memory_bytes,
                "dead_letters": s.dead_letters,
                "groups": [
                    {
                        "name": g.name,
                        "consumers": g.consumers,
                        "pending": g.pending,
                        "lag": g.lag,
                        "last_delivered_id": g.last_delivered_id,
                    }
                    for g in s.groups
                ],
            }
            for s in stats
        ]
    )
