"""The one place that checks redis-py is importable; imported first by the package."""

from __future__ import annotations


class RedisNotInstalledError(ImportError):
    """The ``redis`` package (redis-py) cannot be imported."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(
            "otel-redis-exporter needs the 'redis' package (redis-py), which cannot be imported "
            f"({cause}). Install it with: python -m pip install 'redis>=5.3' "
            "(or reinstall otel-redis-exporter, which depends on it)."
        )


try:
    import redis  # noqa: F401
except ImportError as error:
    raise RedisNotInstalledError(error) from error
