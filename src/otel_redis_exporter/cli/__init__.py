"""The ``otel-redis`` command: tail, trace, stats, and forward to an OTLP endpoint."""

from .main import run

__all__ = ["run"]
