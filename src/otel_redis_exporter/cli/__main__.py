"""``python -m otel_redis_exporter.cli``: the ``otel-redis`` command."""

from .main import run

run()
