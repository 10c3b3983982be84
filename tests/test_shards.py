"""Shard keys: pure functions, no server."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot as redis_key_slot

from otel_redis_exporter._keys import (
    CLUSTER_SLOTS,
    MAX_SHARDS,
    ShardRouter,
    key_slot,
    shard_keys,
    shard_of,
    shard_tags,
)


@given(st.text(max_size=40))
def test_key_slot_is_the_slot_redis_computes(key: str) -> None:
    """key_slot agrees with redis-py's CRC16 slot, hash tags included."""
    assert key_slot(key) == redis_key_slot(key.encode())


def test_one_shard_is_the_key_itself() -> None:
    """shards=1 writes the stream key unchanged."""
    assert shard_keys("otel:logs", 1) == ["otel:logs"]


def test_shard_keys_carry_a_hash_tag_each() -> None:
    """Every shard key is the stream key plus one {tag}, and all keys differ."""
    keys = shard_keys("otel:logs", 3)
    assert len(set(keys)) == 3
    for index, key in enumerate(keys):
        assert key.startswith("otel:logs:{")
        assert key.endswith("}")
        assert key[len("otel:logs:{") : -1].split(".")[0] == str(index)


def test_shard_keys_are_stable() -> None:
    """The shard keys of a stream never change: readers compute the same ones."""
    assert shard_keys("otel:logs", 3) == ["otel:logs:{0.1}", "otel:logs:{1.4}", "otel:logs:{2.4}"]


@pytest.mark.parametrize("shards", [2, 3, 4, 6, 16, 100, MAX_SHARDS])
def test_shards_fall_in_their_own_part_of_the_slot_space(shards: int) -> None:
    """Shard i's slot lies in the i-th of `shards` equal slot ranges, away from its edges."""
    for index, key in enumerate(shard_keys("any:stream", shards)):
        low, high = index * CLUSTER_SLOTS // shards, (index + 1) * CLUSTER_SLOTS // shards
        assert low <= key_slot(key) < high


@pytest.mark.parametrize("masters", [3, 4, 5])
def test_as_many_shards_as_masters_use_every_master(masters: int) -> None:
    """With slots split evenly over N masters, N shards land on N different masters."""
    owner = [slot * masters // CLUSTER_SLOTS for slot in range(CLUSTER_SLOTS)]
    assert {owner[key_slot(key)] for key in shard_keys("otel:logs", masters)} == set(range(masters))


def test_shard_count_is_bounded() -> None:
    """More than MAX_SHARDS shards is refused."""
    with pytest.raises(ValueError, match=str(MAX_SHARDS)):
        shard_tags(MAX_SHARDS + 1)


@given(st.integers(min_value=1, max_value=2**128 - 1), st.integers(min_value=0, max_value=10**6))
def test_one_trace_one_shard(trace_id: int, sequence: int) -> None:
    """A trace id picks the shard, whatever the running count says."""
    hex_id = f"{trace_id:032x}"
    assert shard_of(hex_id, 5, sequence) == shard_of(hex_id, 5, 0)


def test_records_without_a_trace_spread_evenly() -> None:
    """Without a trace id, consecutive records go round the shards."""
    assert [shard_of(None, 3, n) for n in range(6)] == [0, 1, 2, 0, 1, 2]
    assert shard_of("not-hex-" * 4, 3, 4) == 1


def test_router_keeps_positions_of_the_callers_layout() -> None:
    """split regroups entries by shard key and says where each came from."""
    traced = {"trace_id": "0" * 31 + "7", "body": "traced"}
    entries = {
        "a": [{"body": "a0"}, traced, {"body": "a2"}],
        "b": [{"body": "b0"}],
    }
    regrouped, positions = ShardRouter(2).split(entries)
    flat_in = [fields for key_entries in entries.values() for fields in key_entries]
    flat_out = [fields for key_entries in regrouped.values() for fields in key_entries]
    assert [flat_in[position] for position in positions] == flat_out
    assert sorted(positions) == [0, 1, 2, 3]
    assert set(regrouped) <= {*shard_keys("a", 2), *shard_keys("b", 2)}
    assert traced in regrouped[shard_keys("a", 2)[7 % 2]]


def test_router_spreads_untraced_records_evenly_over_batches() -> None:
    """Untraced records keep going round the shards from one batch to the next."""
    router = ShardRouter(3)
    counts: Counter[str] = Counter()
    for _ in range(10):
        regrouped, _ = router.split({"s": [{"body": str(n)} for n in range(5)]})
        counts.update({key: len(items) for key, items in regrouped.items()})
    assert sorted(counts.values()) == [16, 17, 17]
