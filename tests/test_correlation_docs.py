"""The documented recipes for the logs of one trace (redis-cli Lua and Python) on real servers."""

from __future__ import annotations

import re

import pytest
import redis

from otel_redis_exporter import RedisLogExporter

from docs_blocks import block
from records import make_record, span_context

WANTED = 0x4BF92F3577B34DA6A3CE929D0E0E4736  # the trace id the documented recipes search for
OTHER = 0x0AF7651916CD43DD8448EB211C80319C
RECORDS = 1500  # more than one page (1000) of the Python recipe


def lua_script() -> str:
    """The Lua text of the documented ``redis-cli EVAL "..."`` command."""
    found = re.search(r'redis-cli EVAL "(.*?)" 1 otel:logs', block("trace-lua"), re.S)
    assert found, "no redis-cli EVAL recipe in the block marked trace-lua"
    return found.group(1)


@pytest.fixture
def mixed_stream(redis_url: str) -> list[int]:
    """RECORDS entries alternating between two traces, every third one outside any trace."""
    exporter = RedisLogExporter(url=redis_url)
    records = []
    for n in range(RECORDS):
        context = None if n % 3 == 2 else span_context(WANTED if n % 3 == 0 else OTHER, n + 1)
        records.append(make_record(f"record {n}", context=context))
    try:
        assert exporter.export(records).name == "SUCCESS"
    finally:
        exporter.shutdown()
    return [n for n in range(RECORDS) if n % 3 == 0]


def test_lua_recipe_returns_exactly_the_entries_of_the_trace(
    redis_client: redis.Redis, mixed_stream: list[int]
) -> None:
    """The documented EVAL script returns every entry of the wanted trace, in order, and nothing else."""
    found = redis_client.eval(lua_script(), 1, "otel:logs", format(WANTED, "032x"))
    bodies = [dict(zip(fields[::2], fields[1::2], strict=True))["body"] for _, fields in found]
    assert bodies == [f"record {n}" for n in mixed_stream]


def test_lua_recipe_honours_the_window(redis_client: redis.Redis, mixed_stream: list[int]) -> None:
    """With start and end entry ids, only the wanted entries inside the window come back."""
    ids = [entry_id for entry_id, _ in redis_client.xrange("otel:logs")]
    found = redis_client.eval(lua_script(), 1, "otel:logs", format(WANTED, "032x"), ids[3], ids[9])
    assert [entry_id for entry_id, _ in found] == [ids[3], ids[6], ids[9]]


def test_python_recipe_pages_through_the_stream(
    redis_url: str, mixed_stream: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    """The documented logs_of_trace finds the trace's entries across pages and prints one line each."""
    code = block("trace-python").replace("redis://localhost:6379/0", redis_url)
    exec(compile(code, "docs/reading.md", "exec"), {"__name__": "docs"})  # noqa: S102 (our own docs)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(mixed_stream)
    for line, n in zip(lines, mixed_stream, strict=True):
        assert f" INFO record {n} " in line
        assert format(n + 1, "016x") in line
