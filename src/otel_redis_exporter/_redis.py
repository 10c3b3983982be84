"""The one place that checks redis-py is importable; imported first by the package."""

from __future__ import annotations

from ._missing import RedisNotInstalledError

try:
    import redis  # noqa: F401
except ImportError as error:
    raise RedisNotInstalledError(error) from error
