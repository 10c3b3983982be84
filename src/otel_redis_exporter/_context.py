"""The exporter's own work, marked in the OpenTelemetry context so it never exports itself.

While the exporter encodes or writes, the context carries ``EXPORTING_KEY`` and the SDK's
suppress-instrumentation flag: Redis instrumentation does not trace the writes, and whatever is
logged meanwhile (by this package, or by redis-py on the sender's connections) is recognised as
the exporter's own and not fed back into the failing pipeline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry.context import (
    _SUPPRESS_INSTRUMENTATION_KEY,
    Context,
    attach,
    create_key,
    detach,
    get_value,
    set_value,
)
from opentelemetry.sdk._logs import ReadableLogRecord

from ._log import logger

EXPORTING_KEY = create_key("otel_redis_exporter.exporting")

# Records logged by this package itself are never exported: when Redis fails, the failure
# report must not become another record to write to the failing Redis.
_OWN_LOGGER = logger.name


def logged_while_exporting(context: Context | None = None) -> bool:
    """True when ``context`` (default: the current one) belongs to the exporter's own work."""
    return bool(get_value(EXPORTING_KEY, context))


def is_own(record: ReadableLogRecord) -> bool:
    """True for a record this package logged, or one logged during its own work."""
    scope = record.instrumentation_scope
    name = scope.name if scope is not None else ""
    if name == _OWN_LOGGER or name.startswith(_OWN_LOGGER + "."):
        return True
    context = getattr(record.log_record, "context", None)
    return context is not None and logged_while_exporting(context)


@contextlib.contextmanager
def instrumentation_suppressed() -> Iterator[None]:
    """Mark the current context as the exporter's own work for the duration of the block."""
    token = attach(set_value(EXPORTING_KEY, True, set_value(_SUPPRESS_INSTRUMENTATION_KEY, True)))
    try:
        yield
    finally:
        detach(token)
