"""Record uids: ULID-like ids, one prefix a batch and 4 base32 characters a record.

A write that is sent again after a lost reply lands twice with the same uid; readers drop the copy.
"""

from __future__ import annotations

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every 2-character base32 pair, so a record's 4-character suffix is two lookups.
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
UID_FIELD = "log.record.uid"
MAX_RECORDS_PER_UID_PREFIX = 1 << 20


def _base32(value: int, length: int) -> str:
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(length)))


def record_uid(prefix: str, index: int) -> str:
    """The uid of record ``index`` of a batch whose ids start with ``prefix``."""
    return prefix + _PAIRS[(index >> 10) & 1023] + _PAIRS[index & 1023]


def uid_prefix(time_ms: int, randomness: int) -> str:
    """The first 22 characters of a batch's ULIDs: 48-bit time, then 60 of the 80 random bits.

    Record ``i`` of the batch gets this prefix plus ``i`` as 4 base32 characters, so the ids of a
    batch are distinct, sortable and monotonic like ULIDs made within one millisecond.
    """
    return _base32(time_ms & ((1 << 48) - 1), 10) + _base32(randomness >> 20, 12)
