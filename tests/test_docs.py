"""The documentation's code runs as shown: every Python and shell block of the pages and the README
is run here (or by test_correlation_docs.py) or marked as an illustration, and the generated parts
of the site (configuration table, CLI reference, charts) come out of the code."""

from __future__ import annotations

import importlib.util
import logging
import logging.config
import re
import sys
import types
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from otel_redis_exporter import decode_fields
from otel_redis_exporter._config.settings import SETTINGS
from otel_redis_exporter._setup import _unconfigure

from docs_blocks import ILLUSTRATION, ROOT, RUNNABLE, TEST, block, blocks, marked_names

DOCS = ROOT / "docs"
# Every block a test runs, by the name its marker gives it.
RUN = (
    "readme-quick-start",
    "quick-start",
    "xrange-sample",
    "read-back",
    "configure-logging",
    "django-factory",
    "django-logging",
    "lambda",
    "asyncio",
    "trace-lua",  # test_correlation_docs.py
    "trace-python",  # test_correlation_docs.py
)
DEFAULT_URL = "redis://localhost:6379/0"
MAINTAINED_HANDLER = "opentelemetry.instrumentation.logging.handler"


def run_block(name: str, url: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run a documented block as a script, against ``url`` instead of the documented server."""
    code = block(name).replace(DEFAULT_URL, url)
    namespace = {"__name__": f"docs_{name.replace('-', '_')}", **(namespace or {})}
    exec(compile(code, f"<docs block {name}>", "exec"), namespace)  # noqa: S102 (our own documentation)
    return namespace


def entries(client: redis.Redis, stream: str = "otel:logs") -> list[tuple[str, dict[str, str]]]:
    return [(entry_id, fields) for entry_id, fields in client.xrange(stream)]


def load_hooks() -> types.ModuleType:
    """The site's MkDocs hook, loaded by path as MkDocs does."""
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, given back with its handlers and level as they were, our setup undone."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    _unconfigure()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            provider = getattr(handler, "_logger_provider", None)
            if provider is not None:
                provider.shutdown()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture
def maintained_handler() -> None:
    """The blocks that import the maintained handler need opentelemetry-instrumentation-logging."""
    pytest.importorskip(MAINTAINED_HANDLER, reason="opentelemetry-instrumentation-logging is not installed")


def test_every_python_and_shell_block_is_run_or_an_illustration() -> None:
    """No Python or shell block of the docs is left without a test or an illustration marker."""
    unmarked = [
        found.where
        for found in blocks()
        if found.language in RUNNABLE
        and not (found.marker == ILLUSTRATION or (found.marker or "").startswith(TEST))
    ]
    assert not unmarked, f"blocks neither run by a test nor marked <!-- illustration -->: {unmarked}"


def test_every_block_marked_for_a_test_is_run_by_one() -> None:
    """The blocks marked `test: NAME` are exactly the ones these tests run, each name once."""
    names = marked_names()
    assert len(names) == len(set(names)), f"a test name marks two blocks: {names}"
    assert sorted(names) == sorted(RUN)


@pytest.mark.usefixtures("maintained_handler")
@pytest.mark.parametrize("name", ["readme-quick-start", "quick-start"])
def test_quick_start_writes_its_record(
    name: str, redis_url: str, redis_client: redis.Redis, root_logger: logging.Logger
) -> None:
    """The quick start, run as shown, leaves its one record in otel:logs, decodable with its types."""
    run_block(name, redis_url)
    [(entry_id, fields)] = entries(redis_client)
    entry = decode_fields(fields, entry_id=entry_id)
    assert (entry.severity_text, entry.body, entry.service_name) == ("INFO", "order placed", "checkout")
    assert dict(entry.attributes) == {"order.id": 42}


@pytest.mark.usefixtures("maintained_handler")
def test_xrange_sample_shows_a_real_entry_in_its_field_order(
    redis_url: str, redis_client: redis.Redis, root_logger: logging.Logger
) -> None:
    """The sample XRANGE output lists the fields of the quick start's entry, in the order Redis returns."""
    run_block("quick-start", redis_url)
    [(_, fields)] = entries(redis_client)
    lines = block("xrange-sample").splitlines()
    assert lines[0] == "$ redis-cli XRANGE otel:logs - + COUNT 1"
    shown = [re.findall(r'"((?:[^"\\]|\\.)*)"', line)[-1] for line in lines[2:]]
    names, values = shown[0::2], shown[1::2]
    assert names == list(fields), "the sample's fields are not a real entry's, in its order"
    for field in ("v", "severity_number", "severity_text", "body", "scope.name", "service.name"):
        assert values[names.index(field)] == fields[field], field
    assert values[names.index("attributes")].replace('\\"', '"') == fields["attributes"]


@pytest.mark.usefixtures("maintained_handler")
def test_read_back_prints_the_record(
    redis_url: str, root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reader block prints the quick start's record: severity, body, attributes."""
    run_block("quick-start", redis_url)
    capsys.readouterr()
    run_block("read-back", redis_url)
    assert capsys.readouterr().out.splitlines() == ["INFO order placed {'order.id': 42}"]


def test_configure_logging_block_exports_through_the_root_logger(
    redis_url: str, redis_client: redis.Redis, root_logger: logging.Logger
) -> None:
    """configure_logging as shown sends the record to otel:logs with the service name."""
    namespace = run_block("configure-logging", redis_url)
    namespace["provider"].force_flush()
    [(entry_id, fields)] = entries(redis_client)
    entry = decode_fields(fields, entry_id=entry_id)
    assert (entry.body, entry.service_name, dict(entry.attributes).get("order.id")) == (
        "order placed",
        "checkout",
        42,
    )


@pytest.mark.usefixtures("maintained_handler")
def test_django_logging_setting_exports_through_the_factory(
    redis_url: str,
    redis_client: redis.Redis,
    root_logger: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dictConfig(LOGGING) as shown puts the factory's handler on the root logger, and it exports."""
    monkeypatch.setenv("OTEL_EXPORTER_REDIS_URL", redis_url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "shop")
    package, module = types.ModuleType("myproject"), types.ModuleType("myproject.otel_logging")
    package.__path__ = []
    exec(compile(block("django-factory"), "<docs block django-factory>", "exec"), module.__dict__)  # noqa: S102
    package.otel_logging = module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "myproject", package)
    monkeypatch.setitem(sys.modules, "myproject.otel_logging", module)
    settings = run_block("django-logging", redis_url)

    logging.config.dictConfig(settings["LOGGING"])
    logging.getLogger("shop.orders").info("order shipped")
    [otel] = [handler for handler in root_logger.handlers if hasattr(handler, "_logger_provider")]
    otel._logger_provider.force_flush()  # handler.flush() would flush on a thread of its own

    [(entry_id, fields)] = entries(redis_client)
    entry = decode_fields(fields, entry_id=entry_id)
    assert (entry.body, entry.service_name, entry.scope_name) == ("order shipped", "shop", "shop.orders")


def test_lambda_handler_leaves_its_record_in_redis_on_return(
    redis_url: str, redis_client: redis.Redis, root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Lambda handler's flush puts the invocation's record in Redis before it returns."""
    monkeypatch.setenv("OTEL_EXPORTER_REDIS_URL", redis_url)
    namespace = run_block("lambda", redis_url)
    assert namespace["handler"]({"order_id": 7}, None) == {"status": "accepted"}
    [(entry_id, fields)] = entries(redis_client)  # no shutdown, no wait: flushed on return
    entry = decode_fields(fields, entry_id=entry_id)
    assert (entry.body, entry.service_name) == ("order received", "orders")
    assert dict(entry.attributes)["order.id"] == 7


def test_asyncio_block_flushes_every_record_at_the_end(
    redis_url: str, redis_client: redis.Redis, root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The asyncio application as shown writes the records of all its coroutines before it ends."""
    monkeypatch.setenv("OTEL_EXPORTER_REDIS_URL", redis_url)
    run_block("asyncio", redis_url)
    bodies = sorted(fields["body"] for _, fields in entries(redis_client))
    assert bodies == ["fetched page 0", "fetched page 1", "fetched page 2"]


def test_configuration_page_table_is_the_settings_table() -> None:
    """The configuration page asks for the generated table, which has a row per setting, in order."""
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert page.count("<!-- generated: settings-table -->") == 1
    rendered = load_hooks().on_page_markdown(page)
    rows = [line for line in rendered.splitlines() if line.startswith("| `")]
    assert [re.match(r"\| `(\w+)`", row)[1] for row in rows] == list(SETTINGS)  # type: ignore[index]
    assert '(see "' not in rendered, "a section reference of the table was not made a link"


def test_reading_page_has_the_help_of_every_command() -> None:
    """The CLI reference is the parser's help: every command, with its options."""
    page = (DOCS / "reading.md").read_text(encoding="utf-8")
    rendered = load_hooks().on_page_markdown(page)
    for command in ("tail", "trace", "stats", "forward"):
        assert f"#### `otel-redis {command}`\n\n```text\nusage: otel-redis {command}" in rendered
    assert "--dead-letter KEY" in rendered


def test_performance_charts_are_svg_of_the_committed_figures() -> None:
    """Each chart the performance page asks for is well-formed SVG drawn from the dated figures."""
    hooks = load_hooks()
    page = (DOCS / "performance.md").read_text(encoding="utf-8")
    asked = re.findall(r"<!-- generated: chart ([a-z-]+) -->", page)
    assert sorted(asked) == ["end-to-end", "ratio-spread", "records-per-case"]
    rendered = hooks.on_page_markdown(page)
    svgs = re.findall(r"<svg .*?</svg>", rendered, re.DOTALL)
    assert len(svgs) == len(asked)
    for svg in svgs:
        ET.fromstring(svg)  # noqa: S314 (our own charts) - raises on malformed SVG
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-[a-z0-9-]+\.json", hooks.bench_file().name)
    assert hooks.bench_file().stem[:10] in rendered, "the figures are not dated on the page"
