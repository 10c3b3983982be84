"""The errors a user meets when a dependency is missing, together and importable without redis-py."""

from __future__ import annotations


class RedisNotInstalledError(ImportError):
    """The ``redis`` package (redis-py) cannot be imported."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(
            "otel-redis-exporter needs the 'redis' package (redis-py), which cannot be imported "
            f"({cause}). Install it with: python -m pip install 'redis>=5.3' "
            "(or reinstall otel-redis-exporter, which depends on it)."
        )


class OtlpNotInstalledError(ImportError):
    """An OTLP encoding or the forwarder is used without the ``otlp`` extra installed."""

    def __init__(self, cause: BaseException, extra: str = "otlp") -> None:
        what = (
            "forward --protocol grpc needs"
            if extra == "grpc"
            else "the OTLP encodings and the forwarder need"
        )
        super().__init__(
            f"{what} the {extra!r} extra, which cannot be imported "
            f"({cause}). Install it with: python -m pip install 'otel-redis-exporter[{extra}]'"
        )
