"""Sending a batch for ``forward``, and what the endpoint's answer means for it.

The SDK's log exporters say only SUCCESS or FAILURE, and retry by themselves. A forwarder needs
more: a batch refused for good goes to the dead letters, a batch too large is split, and only an
answer that may change with time ("later": 429, 502, 503, 504, no answer at all) is retried,
after the endpoint's ``Retry-After`` when it gives one. ``OtlpHttpSender`` sends one OTLP/HTTP
request per call (the SDK's encoder builds it) and returns the answer as it is; ``ExporterSender``
wraps any SDK ``LogRecordExporter`` (gRPC, say), whose FAILURE can only mean "later".
"""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

# Answers that may change with time: retried, never dead-lettered.
RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
TOO_LARGE = 413
# The longest Retry-After honoured, in seconds; a longer one is cut to this.
MAX_RETRY_AFTER_S = 300.0
COMPRESSIONS = ("none", "gzip")
# Characters of a refusal's response body kept in the reason.
MAX_REASON_CHARS = 200


@dataclass(frozen=True, slots=True)
class Answer:
    """What the endpoint said to one request. ``status`` is None when no HTTP answer came."""

    status: int | None
    reason: str
    retry_after_s: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def too_large(self) -> bool:
        return self.status == TOO_LARGE

    @property
    def refused(self) -> bool:
        """Refused for good: a 4xx other than those that may change with time (413 included:
        a record that alone is too large does not shrink)."""
        return self.status is not None and 400 <= self.status < 500 and self.status not in RETRY_STATUSES


class Sender(Protocol):
    """Sends one batch and says what came back."""

    def send(self, records: Sequence[ReadableLogRecord]) -> Answer: ...

    def shutdown(self) -> None: ...


def retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """A ``Retry-After`` header in seconds (delta-seconds or an HTTP date), at most
    ``MAX_RETRY_AFTER_S``; None when missing or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    seconds = (moment - (now or dt.datetime.now(dt.timezone.utc))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _reason(response: Any) -> str:
    reason = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
    kind = response.headers.get("Content-Type", "")
    if kind.startswith(("text/", "application/json")) and response.text:
        text = " ".join(response.text.split())[:MAX_REASON_CHARS]
        reason = f"{reason}: {text}"
    return reason


class OtlpHttpSender:
    """One OTLP/HTTP protobuf POST per batch on a kept-alive session (``requests``, which the
    ``otlp`` extra brings). ``timeout_s`` bounds each request; ``headers`` are added to each."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_s: float = 10.0,
        compression: str = "none",
        headers: Mapping[str, str] | None = None,
        session: Any = None,
    ) -> None:
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}; got {compression!r}")
        import requests  # noqa: PLC0415 - the otlp extra brings it

        self._requests = requests
        self.endpoint = endpoint
        self._timeout_s = timeout_s
        self._gzip = compression == "gzip"
        self._headers = {"Content-Type": "application/x-protobuf", **(headers or {})}
        if self._gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._session = session or requests.Session()

    def send(self, records: Sequence[ReadableLogRecord]) -> Answer:
        from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs  # noqa: PLC0415

        body = encode_logs(records).SerializeToString()
        if self._gzip:
            body = gzip.compress(body)
        try:
            response = self._session.post(
                self.endpoint, data=body, headers=self._headers, timeout=self._timeout_s
            )
        except self._requests.RequestException as error:
            return Answer(None, f"no answer from {self.endpoint}: {type(error).__name__}")
        if 200 <= response.status_code < 300:
            return Answer(response.status_code, "OK")
        return Answer(
            response.status_code, _reason(response), retry_after(response.headers.get("Retry-After"))
        )

    def shutdown(self) -> None:
        self._session.close()


class ExporterSender:
    """Any SDK ``LogRecordExporter`` as a ``Sender``: SUCCESS is delivered, anything else (the
    exporter says no more) is retried later."""

    def __init__(self, exporter: LogRecordExporter) -> None:
        self._exporter = exporter

    def send(self, records: Sequence[ReadableLogRecord]) -> Answer:
        try:
            result = self._exporter.export(records)
        except Exception as error:  # some exporter versions raise on connection errors
            return Answer(None, f"the exporter failed ({error})")
        if result is LogRecordExportResult.SUCCESS:
            return Answer(200, "OK")
        return Answer(None, "the exporter did not accept them")

    def shutdown(self) -> None:
        self._exporter.shutdown()  # type: ignore[no-untyped-call]
