"""The Performance page's charts and tables, made from one run's `bench-results.json` (`nox -s bench`).

Plain SVG written here, no plotting library: the figures are few and the site stays light.
The MkDocs hook (`docs/hooks.py`) inlines them at build time from the newest dated copy in
`docs/bench/`; `python docs/charts.py docs/bench/FILE.json OUT_DIR` writes them as files.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

WIDTH = 870
LABEL_WIDTH = 330  # room for the row labels, left of the plot
NOTE_WIDTH = 200  # room for the figure written after each row
ROW_HEIGHT = 26
TOP = 44  # title and legend
BOTTOM = 34  # axis labels
PLOT = WIDTH - LABEL_WIDTH - NOTE_WIDTH
FAST = "#c62828"  # the site's primary red: this exporter, compiled fast path
PURE = "#757575"  # the pure-Python path, and every other grey mark
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12"'
# Ratio targets are drawn on a log scale: 0.1x to 10x holds every goal from 0.4x to 8x.
RATIO_LOW, RATIO_HIGH = 0.1, 10.0
RATIO_TICKS = (0.1, 0.25, 0.5, 1, 2, 4, 8)


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a chart: a bar or a median mark, the figure of every round, a note after it."""

    label: str
    value: float
    rounds: tuple[float, ...]
    note: str = ""
    other: float | None = None  # the pure-Python median, a grey mark
    goal: float | None = None  # a ratio target's goal


def _svg(title: str, rows: int, legend: str, body: list[str]) -> str:
    height = TOP + rows * ROW_HEIGHT + BOTTOM
    return "\n".join(
        [
            f'<svg class="bench-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
            f'width="100%" role="img" aria-label="{escape(title)}" {FONT}>',
            f"<title>{escape(title)}</title>",
            f'<rect width="{WIDTH}" height="{height}" fill="#fff"/>',
            f'<text x="0" y="16" font-size="14" font-weight="bold" fill="#212121">{escape(title)}</text>',
            f'<g transform="translate(0 32)">{legend}</g>',
            *body,
            "</svg>",
        ]
    )


def _legend(*items: tuple[str, str]) -> str:
    parts, x = [], 0
    for shape, text in items:
        parts.append(
            f'<g transform="translate({x} 0)">{shape}<text x="16" y="4" fill="#424242">{text}</text></g>'
        )
        x += 24 + 7 * len(text)
    return "".join(parts)


BAR_KEY = f'<rect x="0" y="-5" width="12" height="9" fill="{FAST}"/>'
ROUND_KEY = '<circle cx="6" cy="0" r="3" fill="#212121"/>'
PURE_KEY = f'<path d="M6 -6 L11 0 L6 6 L1 0 Z" fill="{PURE}"/>'
GOAL_KEY = f'<line x1="6" y1="-7" x2="6" y2="7" stroke="{PURE}" stroke-width="2" stroke-dasharray="3 2"/>'


def _row_label(index: int, label: str) -> str:
    y = TOP + index * ROW_HEIGHT + ROW_HEIGHT / 2 + 4
    return f'<text x="{LABEL_WIDTH - 8}" y="{y}" text-anchor="end" fill="#212121">{escape(label)}</text>'


def _note(index: int, text: str) -> str:
    y = TOP + index * ROW_HEIGHT + ROW_HEIGHT / 2 + 4
    return f'<text x="{LABEL_WIDTH + PLOT + 8}" y="{y}" fill="#424242">{escape(text)}</text>'


def _axis(rows: int, ticks: Sequence[tuple[float, str]]) -> list[str]:
    bottom = TOP + rows * ROW_HEIGHT
    parts = [f'<line x1="{LABEL_WIDTH}" y1="{TOP}" x2="{LABEL_WIDTH}" y2="{bottom}" stroke="#9e9e9e"/>']
    for x, text in ticks:
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" stroke="#eeeeee"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" fill="#616161">{escape(text)}</text>'
        )
    return parts


def _nice_step(top: float) -> float:
    """A step of 1, 2 or 5 times a power of ten that cuts 0..top into about five parts."""
    rough = top / 5
    power = 10 ** math.floor(math.log10(rough))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= rough)


def _thousands(value: float) -> str:
    return f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"


def bar_chart(title: str, rows: Sequence[Row], each: str = "each round", pure_legend: bool = False) -> str:
    """Horizontal bars (medians) from zero, with a dot for every round and an optional grey mark."""
    top = max(max((*row.rounds, row.value, row.other or 0.0)) for row in rows) * 1.05
    step = _nice_step(top)
    ticks = [step * n for n in range(int(top // step) + 1)]
    scale = PLOT / (ticks[-1] + step if ticks[-1] < top else ticks[-1])

    def x(value: float) -> float:
        return LABEL_WIDTH + value * scale

    body = _axis(len(rows), [(x(tick), _thousands(tick)) for tick in ticks])
    for index, row in enumerate(rows):
        y = TOP + index * ROW_HEIGHT
        body.append(_row_label(index, row.label))
        body.append(
            f'<rect x="{LABEL_WIDTH}" y="{y + 6}" width="{x(row.value) - LABEL_WIDTH:.1f}" '
            f'height="{ROW_HEIGHT - 12}" fill="{FAST}" fill-opacity="0.85"/>'
        )
        body.extend(
            f'<circle cx="{x(value):.1f}" cy="{y + ROW_HEIGHT / 2}" r="3" fill="#212121"/>'
            for value in row.rounds
        )
        if row.other is not None:
            cx, cy = x(row.other), y + ROW_HEIGHT / 2
            body.append(
                f'<path d="M{cx:.1f} {cy - 6} L{cx + 5:.1f} {cy} L{cx:.1f} {cy + 6} L{cx - 5:.1f} {cy} Z" '
                f'fill="{PURE}"/>'
            )
        body.append(_note(index, row.note))
    keys = [(BAR_KEY, "median"), (ROUND_KEY, each)]
    if pure_legend:
        keys.append((PURE_KEY, "pure-Python path, median"))
    return _svg(title, len(rows), _legend(*keys), body)


def ratio_chart(title: str, rows: Sequence[Row]) -> str:
    """Ratios on a log scale: a dot per round, a bar mark at the median, a dashed mark at the goal."""
    span = math.log10(RATIO_HIGH) - math.log10(RATIO_LOW)

    def x(value: float) -> float:
        clamped = min(max(value, RATIO_LOW), RATIO_HIGH)
        return LABEL_WIDTH + (math.log10(clamped) - math.log10(RATIO_LOW)) / span * PLOT

    body = _axis(len(rows), [(x(tick), f"{tick:g}x") for tick in RATIO_TICKS])
    for index, row in enumerate(rows):
        y = TOP + index * ROW_HEIGHT
        mid = y + ROW_HEIGHT / 2
        body.append(_row_label(index, row.label))
        low, high = min(row.rounds), max(row.rounds)
        body.append(
            f'<line x1="{x(low):.1f}" y1="{mid}" x2="{x(high):.1f}" y2="{mid}" stroke="{FAST}" '
            'stroke-opacity="0.4" stroke-width="6" stroke-linecap="round"/>'
        )
        body.extend(f'<circle cx="{x(value):.1f}" cy="{mid}" r="3" fill="#212121"/>' for value in row.rounds)
        body.append(
            f'<rect x="{x(row.value) - 2:.1f}" y="{y + 5}" width="4" height="{ROW_HEIGHT - 10}" '
            f'fill="{FAST}"/>'
        )
        if row.goal is not None:
            body.append(
                f'<line x1="{x(row.goal):.1f}" y1="{y + 3}" x2="{x(row.goal):.1f}" y2="{y + ROW_HEIGHT - 3}" '
                f'stroke="{PURE}" stroke-width="2" stroke-dasharray="3 2"/>'
            )
        body.append(_note(index, row.note))
    keys = ((BAR_KEY, "median"), (ROUND_KEY, "each round"), (GOAL_KEY, "goal"))
    return _svg(title, len(rows), _legend(*keys), body)


def case_rows(figures: dict[str, Any]) -> list[Row]:
    """Records/s of every exporter case, compiled fast path, with the pure path's median beside it."""
    pure = figures.get("pure_cases", {})
    return [
        Row(
            case["label"],
            case["median"],
            tuple(case["rates"]),
            note=f"{case['median']:,.0f} /s",
            other=pure[name]["median"] if name in pure else None,
        )
        for name, case in figures["cases"].items()
    ]


def target_rows(figures: dict[str, Any]) -> list[Row]:
    """The ratio targets (not the drop counts): per-round ratios, their median and the goal."""
    return [
        Row(
            target["target"],
            target["median"],
            tuple(target["per_round"]),
            note=f"{target['median']:.2f}x, goal {target['goal']:g}x",
            goal=target["goal"],
        )
        for target in figures["targets"]
        if "dropped" not in target["target"]
    ]


def end_to_end_rows(figures: dict[str, Any]) -> list[Row]:
    """The application's logging rate through each exporter, against the do-nothing one."""
    runs = figures["end_to_end"]
    # The benchmark's own ratio (the median of the runs' ratios) where it reports one.
    ratios = {
        target["target"]: target["median"]
        for target in figures["targets"]
        if "dropped" not in target["target"]
    }
    null = statistics.median(run["rate"] for run in runs["null"])
    rows = []
    for name, results in runs.items():
        rate = statistics.median(run["rate"] for run in results)
        ratio = ratios.get(f"end to end: logging rate {name} / null", rate / null)
        dropped = max(run["dropped"] for run in results)
        note = f"{ratio:.2f}x null, dropped ≤ {dropped:,}" if name != "null" else "1.00x"
        rows.append(Row(name, rate, tuple(run["rate"] for run in results), note=note))
    return rows


def charts(figures: dict[str, Any]) -> dict[str, str]:
    """Every chart of the Performance page, by the name its placeholder uses."""
    end_to_end = figures["end_to_end"]
    return {
        "records-per-case": bar_chart(
            "Records per second, per case (higher is better)", case_rows(figures), pure_legend=True
        ),
        "ratio-spread": ratio_chart("Targets: the ratio in each round, log scale", target_rows(figures)),
        "end-to-end": bar_chart(
            f"End to end: records/s an application logs ({len(end_to_end['null'])} runs per exporter)",
            end_to_end_rows(figures),
            each="each run",
        ),
    }


def main(argv: Sequence[str]) -> None:
    source, target = Path(argv[0]), Path(argv[1])
    target.mkdir(parents=True, exist_ok=True)
    for name, svg in charts(json.loads(source.read_text(encoding="utf-8"))).items():
        (target / f"{name}.svg").write_text(svg + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
