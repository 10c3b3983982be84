"""MkDocs hook: the parts of the pages made from the repository itself, so they cannot drift.

A page asks for one with an HTML comment on a line of its own, which this hook replaces:

- `<!-- generated: settings-table -->`: the configuration table, from the settings table
  (`otel_redis_exporter._config.settings`);
- `<!-- generated: cli-reference -->`: `otel-redis --help` and every command's help, from the
  argument parser (`otel_redis_exporter.cli.main.build_parser`);
- `<!-- generated: bench-run -->`, `<!-- generated: bench-targets -->` and
  `<!-- generated: chart NAME -->`: the newest benchmark figures in `docs/bench/` (a dated copy of
  `bench-results.json`): where they were measured, the targets, and the charts of `docs/charts.py`.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from otel_redis_exporter._config.settings import settings_table
from otel_redis_exporter.cli.main import build_parser

DOCS = Path(__file__).resolve().parent
# The dated copies of bench-results.json: YYYY-MM-DD-<machine>.json, the newest one is shown.
BENCH = DOCS / "bench"
PLACEHOLDER = re.compile(r"^<!-- generated: ([a-z-]+)(?: ([a-z-]+))? -->$", re.MULTILINE)
HELP_COLUMNS = "100"  # argparse wraps help to $COLUMNS
# The settings table names sections in words ("see ..."); here they become links to those sections.
SECTION_LINKS = {
    "(see below)": "(see [below](#templated-stream-keys))",
    '(see "Sync and async")': "(see [Sync and async](operations.md#sync-and-async))",
    '(see "Reading logs back")': "(see [OTLP encodings](schema.md#otlp-encodings))",
    '(see "Deployments")': "(see [Deployments](operations.md#deployments))",
    '(see "The stream entry schema")': "(see [Entry schema](schema.md))",
}


# A hook is loaded by file path, not as a module of a package: charts.py beside it is imported by name.
sys.path.insert(0, str(DOCS))
charts = importlib.import_module("charts")


def bench_file() -> Path:
    """The newest dated copy of the benchmark figures."""
    return max(BENCH.glob("*.json"))


def cli_reference() -> str:
    """Each parser's help as a text block under a heading, the top-level command first."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        parser = build_parser()
        commands = next(action for action in parser._actions if action.choices and action.dest == "command")
        sections = [("otel-redis", parser.format_help())]
        sections += [(f"otel-redis {name}", sub.format_help()) for name, sub in commands.choices.items()]
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    return "\n".join(f"#### `{title}`\n\n```text\n{text.rstrip()}\n```\n" for title, text in sections)


def bench_run(figures: dict[str, Any], source: Path) -> str:
    """One paragraph: when, where and how the figures shown were measured."""
    machine = figures["machine"]
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items())
    server = machine["server"].split(" sha=")[0]
    day = source.stem[:10]
    run = "`nox -s bench -- --quick`" if figures["profile"]["rounds"] < 7 else "`nox -s bench`"
    return (
        f"Measured on {day} with {run} ({figures['rounds']} counted rounds, "
        f"{figures['profile']['records']:,} records per case and round, entries of ~{figures['entry_bytes']} "
        f"bytes) on {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, {server}, "
        f"{packages}; compiled fast path {'on' if figures['fast_path'] else 'off'}. "
        f"The figures: [`{source.name}`](bench/{source.name})."
    )


def bench_targets(figures: dict[str, Any]) -> str:
    """The targets table: median, per-round range, goal, met."""
    lines = ["| target | median | rounds | pure path | goal | met |", "| --- | --- | --- | --- | --- | --- |"]
    for target in figures["targets"]:
        count = "dropped" in target["target"]
        shown = (lambda value: f"{value:,.0f}") if count else (lambda value: f"{value:.2f}x")
        rounds = f"{shown(min(target['per_round']))} to {shown(max(target['per_round']))}"
        pure = shown(target["pure_median"]) if "pure_median" in target else "—"
        relation = ">" if target.get("strict") else "≥"
        goal = f"{target['goal']:,}" if count else f"{relation} {target['goal']:g}x"
        median = f"max {shown(max(target['per_round']))}" if count else shown(target["median"])
        met = "yes" if target["met"] else "no"
        lines.append(f"| {target['target']} | {median} | {rounds} | {pure} | {goal} | {met} |")
    return "\n".join(lines)


def linked(table: str) -> str:
    """The settings table with its section references as links; a reference left in words fails."""
    for words, link in SECTION_LINKS.items():
        table = table.replace(words, link)
    if '(see "' in table:
        raise ValueError(f"a section reference of the settings table has no link: {table}")
    return table


def generated(kind: str, name: str | None) -> str:
    if kind == "settings-table":
        return linked("\n".join(settings_table()))
    if kind == "cli-reference":
        return cli_reference()
    source = bench_file()
    figures = json.loads(source.read_text(encoding="utf-8"))
    if kind == "bench-run":
        return bench_run(figures, source)
    if kind == "bench-targets":
        return bench_targets(figures)
    if kind == "chart" and name:
        # Raw HTML: one block with no blank line, so Markdown leaves it alone.
        return f'<div class="bench-chart" markdown="0">\n{charts.charts(figures)[name]}\n</div>'
    raise ValueError(f"unknown generated block: {kind} {name or ''}".strip())


def on_page_markdown(markdown: str, **_: Any) -> str:
    return PLACEHOLDER.sub(lambda match: generated(match.group(1), match.group(2)), markdown)
