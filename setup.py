"""Only the optional C extension; everything else about the package is in pyproject.toml.

``optional=True``: without a compiler or the Python headers the build goes on without it, and the
package uses its pure-Python path (the same bytes, only slower). ``OTEL_REDIS_EXPORTER_NO_EXTENSION=1``
leaves it out on purpose. ``CFLAGS``/``LDFLAGS`` reach the compiler as usual (the ``sanitize`` nox
session builds it with AddressSanitizer and UndefinedBehaviorSanitizer that way).
"""

import os

from setuptools import Extension, setup

extensions = (
    []
    if os.environ.get("OTEL_REDIS_EXPORTER_NO_EXTENSION") == "1"
    else [
        Extension(
            "otel_redis_exporter._speedups",
            ["src/otel_redis_exporter/_speedups.c"],
            optional=True,
        )
    ]
)

setup(ext_modules=extensions)
