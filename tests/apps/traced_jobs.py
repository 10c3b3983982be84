"""An application with no OpenTelemetry setup: run under opentelemetry-instrument by the tests.

Logs inside spans with stdlib logging, one exception per span, then prints one line
``TRACES <json>`` with each span's trace and span ids (other lines may come from exporters).
"""

from __future__ import annotations

import json
import logging

from opentelemetry import trace

JOBS = 3

log = logging.getLogger("traced_jobs")
log.setLevel(logging.INFO)
tracer = trace.get_tracer("traced_jobs")


def main() -> None:
    """Run JOBS spans, each logging one INFO record with typed extras and one exception."""
    spans = []
    for n in range(JOBS):
        with tracer.start_as_current_span(f"job {n}") as span:
            extra = {"job.number": n, "job.ratio": n / 4, "job.ok": n % 2 == 0, "job.tags": ["a", str(n)]}
            log.info("job %d started", n, extra=extra)
            try:
                raise ValueError(f"job {n} failed")
            except ValueError:
                log.exception("job %d crashed", n)
            context = span.get_span_context()
            spans.append(
                {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}
            )
    log.warning("all jobs done")
    print("TRACES " + json.dumps(spans), flush=True)


if __name__ == "__main__":
    main()
