"""The package's own logger, rate limited so a failing Redis cannot flood the application's logs.

Its records are never exported (see ``_context``). Where OpenTelemetry's logging handler is the
only one that would see them, as under ``opentelemetry-instrument``, nobody would: then its
warnings go to stderr instead, as Python's last-resort handler would write them.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable

from ._redact import RedactingFilter

# One message (same template, level and arguments) at most once per window.
RATE_LIMIT_WINDOW_S = 60.0


class RateLimitFilter(logging.Filter):
    """Lets a repeated message through once per window; the next one says how many were held back."""

    def __init__(self, window_s: float = RATE_LIMIT_WINDOW_S, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[tuple[object, ...], tuple[float, int]] = {}

    def reset(self) -> None:
        """Forget every message seen so far."""
        with self._lock:
            self._last.clear()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            key: tuple[object, ...] = (record.levelno, record.msg, record.getMessage())
        except Exception:
            key = (record.levelno, record.msg)
        now = self._clock()
        with self._lock:
            seen_at, held = self._last.get(key, (None, 0))
            if seen_at is not None and now - seen_at < self._window_s:
                self._last[key] = (seen_at, held + 1)
                return False
            self._last[key] = (now, 0)
            if len(self._last) > 256:
                self._last = {k: v for k, v in self._last.items() if now - v[0] < self._window_s}
        if held:
            record.msg = f"{record.msg} (repeated {held} more times in the last {self._window_s:g} s)"
        return True


def _is_opentelemetry(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith("opentelemetry")


class StderrWhenUnseen(logging.Handler):
    """Writes a warning to stderr when no handler but OpenTelemetry's would show it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if self._shown_elsewhere(record):
            return
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)

    def _shown_elsewhere(self, record: logging.LogRecord) -> bool:
        current: logging.Logger | None = logging.getLogger(record.name)
        while current is not None:
            for handler in current.handlers:
                if handler is not self and not _is_opentelemetry(handler) and record.levelno >= handler.level:
                    return True
            current = current.parent if current.propagate else None
        return False


logger = logging.getLogger("otel_redis_exporter")
rate_limit = RateLimitFilter()
logger.addFilter(rate_limit)
logger.addHandler(StderrWhenUnseen())
# After the rate limit (which keys on the message template): no line shows a password.
logger.addFilter(RedactingFilter())
