"""An application that exits while Redis is down: run by the fault tests in a subprocess.

``exit_while_down.py URL MODE``: sets up the pipeline at its defaults (stdlib logging, the
OpenTelemetry handler, the batch processor, the exporter), logs 100 records and waits for them to
be written, prints ``logged``, then waits for a line on stdin (the test takes Redis down meanwhile),
logs 100 more, prints ``exiting`` and returns: the interpreter's exit shuts the pipeline down.
After that, a last line gives the exporter's counts as JSON.
"""

from __future__ import annotations

import atexit
import json
import logging
import sys

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

from otel_redis_exporter import RedisLogExporter
from otel_redis_exporter._setup import make_handler


def main(url: str, mode: str) -> None:
    exporter = RedisLogExporter(url=url, mode=mode)
    # Registered before the provider's own exit hook, so it runs after the pipeline shut down.
    atexit.register(lambda: print(json.dumps({"dropped": dict(exporter.stats().dropped)}), flush=True))
    provider = LoggerProvider()
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    log = logging.getLogger("exit_while_down")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(make_handler(provider, logging.INFO))
    for n in range(100):
        log.info("before %d", n)
    provider.force_flush()
    print("logged", flush=True)
    sys.stdin.readline()
    for n in range(100):
        log.info("after %d", n)
    print("exiting", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
