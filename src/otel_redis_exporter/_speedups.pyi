"""Types of the optional C extension (``_speedups.c``)."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

def pack_commands(commands: Sequence[tuple[str | bytes, ...]], /) -> bytes: ...
def pack_xadds(
    entries: Mapping[str, Sequence[Mapping[str, str | bytes]]], trim: tuple[str, ...], /
) -> bytes: ...
def entry_sizes(
    entries: Mapping[str, Sequence[Mapping[str, str | bytes]]], overhead: int, /
) -> list[int]: ...
def parse_replies(data: bytes, offset: int, limit: int, /) -> tuple[list[object], int]: ...
def send_held(fd: int, data: bytes, offset: int, budget: float, /) -> int: ...
def recv_held(fd: int, size: int, budget: float, /) -> bytes | None: ...
def encode_flat(
    types: tuple[type, type],
    records: Iterable[Any],
    now_ns: int,
    uid_prefix: str | None,
    limit: int,
    budget: int,
    out: dict[str, list[dict[str, str]]],
    tails: dict[tuple[int, int], tuple[dict[str, str], list[dict[str, str]]]],
    tail: Callable[[Any, dict[str, list[dict[str, str]]]], tuple[dict[str, str], list[dict[str, str]]]],
    fallback: Callable[[int, Any], None],
    /,
) -> None: ...
