"""What the CLI's human output may put on a terminal: text with every control character visible.

A log record's body, attributes or stream key is data from whoever could write to the stream. On a
terminal, an escape sequence in it could erase lines, forge new ones or retitle the window; a
bidirectional override could reorder what is shown. ``visible`` writes each such character as an
escape (``\\x1b``, ``\\n``, ``\\u202e``) instead: C0 controls, DEL, C1 controls (which include
ESC's 8-bit forms) and the Unicode bidirectional controls. ``--json`` output needs none of this:
JSON escapes control characters itself, and ``ensure_ascii`` the rest.
"""

from __future__ import annotations

import re

_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# C0, DEL and C1 controls; the bidirectional embeddings, overrides, isolates and marks; the line
# and paragraph separators. (A backslash stays as it is: it cannot move the cursor, and paths
# keep their look.)
_UNSAFE = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200e\\u200f\\u2028-\\u202e\\u2066-\\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every control character written as a visible escape (``\\x1b``)."""
    return _UNSAFE.sub(_escape, text)
