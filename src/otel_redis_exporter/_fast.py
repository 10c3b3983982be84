"""Which path encoding and writing take: the compiled ``_speedups`` extension, or pure Python.

The extension is optional (it is built when a compiler is at hand, see ``setup.py``) and writes
the same bytes as the pure path; ``OTEL_REDIS_EXPORTER_PURE_PYTHON=1`` turns it off. The choice is
made once, at import: ``FAST_PATH`` says which path is active.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ._log import logger

PURE_PYTHON_ENV = "OTEL_REDIS_EXPORTER_PURE_PYTHON"


class Speedups(Protocol):
    """The extension's functions (``_speedups.c`` documents them)."""

    def pack_commands(self, commands: Sequence[tuple[str | bytes, ...]], /) -> bytes: ...

    def pack_xadds(
        self, entries: Mapping[str, Sequence[Mapping[str, str | bytes]]], trim: tuple[str, ...], /
    ) -> bytes: ...

    def entry_sizes(
        self, entries: Mapping[str, Sequence[Mapping[str, str | bytes]]], overhead: int, /
    ) -> list[int]: ...

    def parse_replies(self, data: bytes, offset: int, limit: int, /) -> tuple[list[object], int]: ...

    def send_held(self, fd: int, data: bytes, offset: int, budget: float, /) -> int: ...

    def recv_held(self, fd: int, size: int, budget: float, /) -> bytes | None: ...

    # The arguments after ``types`` are ``flat.CompiledEncode``'s (``_speedups.pyi`` has them all).
    def encode_flat(self, types: tuple[type, type], /, *rest: Any) -> None: ...


def load_speedups() -> Speedups | None:
    """The extension, or None: turned off by ``OTEL_REDIS_EXPORTER_PURE_PYTHON=1``, or not built."""
    if os.environ.get(PURE_PYTHON_ENV, "").strip() == "1":
        return None
    try:
        from . import _speedups  # noqa: PLC0415 - optional: absent where no compiler built it
    except ImportError as error:
        logger.debug("The compiled fast path is not available, using pure Python: %s", error)
        return None
    return _speedups


speedups = load_speedups()
FAST_PATH: bool = speedups is not None
"""True when the compiled fast path is active, False on the pure-Python path."""
