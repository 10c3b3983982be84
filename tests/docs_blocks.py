"""The code blocks of the documentation: the pages under docs/ and the README.

A Python or shell block is preceded by an HTML comment saying what becomes of it:
``<!-- test: NAME -->`` (a test runs it, finding it by NAME) or ``<!-- illustration -->``
(shown, not run: it needs a framework, a cloud or a server the suite does not have).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
# The languages a reader would copy into an interpreter or a shell.
RUNNABLE = frozenset({"python", "py", "pycon", "console", "bash", "sh", "shell"})
FENCE = re.compile(
    r"^(?:<!-- (?P<marker>[^>]*?) -->\n)?```(?P<language>[\w-]*)[^\n]*\n(?P<code>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)
ILLUSTRATION = "illustration"
TEST = "test: "


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced block: where it is, its language, the marker before it, its text."""

    page: Path
    line: int
    language: str
    marker: str | None
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks() -> list[Block]:
    """Every fenced block of every page, in page order."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start("language")) + 1
            found.append(Block(page, line, match["language"], match["marker"], match["code"]))
    return found


def marked_names() -> list[str]:
    """The NAMEs of the blocks marked ``<!-- test: NAME -->``, in page order."""
    return [block.marker[len(TEST) :] for block in blocks() if block.marker and block.marker.startswith(TEST)]


def block(name: str) -> str:
    """The code of the one block marked ``<!-- test: name -->``."""
    found = [found.code for found in blocks() if found.marker == f"{TEST}{name}"]
    assert len(found) == 1, f"{len(found)} blocks are marked 'test: {name}'"
    return found[0]
