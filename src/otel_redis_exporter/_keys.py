"""Stream keys: a fixed key, or a template filled from resource attributes.

``logs:{service.name}`` becomes ``logs:checkout`` for a resource with ``service.name=checkout``.
A filled-in value is confined to ``[A-Za-z0-9._-]`` (anything else becomes ``_``) and to
``MAX_FIELD_LENGTH`` characters, so attribute values cannot reach keys outside the template:
no ``:``, ``{``, ``}``, ``*`` or spaces ever come from a value. A missing or empty attribute is
written as ``MISSING_VALUE``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MISSING_VALUE = "unknown"
MAX_FIELD_LENGTH = 64

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _safe(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    text = _UNSAFE.sub("_", text[:MAX_FIELD_LENGTH])
    return text or MISSING_VALUE


@dataclass(frozen=True, slots=True)
class StreamKeyTemplate:
    """A parsed stream key; ``fields`` is empty for a fixed key."""

    template: str
    fields: tuple[str, ...]

    @classmethod
    def parse(cls, template: str) -> StreamKeyTemplate:
        """Parse ``template``; raises ``ValueError`` for unbalanced braces or an empty placeholder."""
        fields = tuple(_PLACEHOLDER.findall(template))
        rest = _PLACEHOLDER.sub("", template)
        if "{" in rest or "}" in rest:
            raise ValueError(f"stream template has an unbalanced brace: {template!r}")
        if any(not name.strip() for name in fields):
            raise ValueError(f"stream template has an empty placeholder: {template!r}")
        return cls(template, fields)

    @property
    def is_fixed(self) -> bool:
        return not self.fields

    def render(self, attributes: Mapping[str, Any]) -> str:
        """The key for a resource with these attributes."""
        if not self.fields:
            return self.template

        def fill(match: re.Match[str]) -> str:
            value = attributes.get(match.group(1))
            return MISSING_VALUE if value is None or value == "" else _safe(value)

        return _PLACEHOLDER.sub(fill, self.template)

    def pattern(self) -> str:
        """A ``SCAN MATCH`` pattern that covers every key this template can produce."""
        escaped = re.sub(r"([*?\[\]\\])", r"\\\1", _PLACEHOLDER.sub("\0", self.template))
        return escaped.replace("\0", "*")
