"""The sender's queue and its books, without a server: what goes next, what is dropped and why."""

from __future__ import annotations

import threading
import time

from otel_redis_exporter._metrics import ExporterMetrics
from otel_redis_exporter._write.attempt import WriteResult
from otel_redis_exporter._write.delivery import (
    HANDOFF_TIMEOUT_S,
    MAX_TRIP_ENTRIES,
    SHUTDOWN_PATIENCE_S,
    Delivery,
)

INFO, WARN, ERROR = "9", "13", "17"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def delivery(
    max_records: int = 1_000,
    max_bytes: int = 10**9,
    clock: Clock | None = None,
    quiet_s: float = HANDOFF_TIMEOUT_S,
) -> Delivery:
    metrics = ExporterMetrics(None, server_address=None, server_port=None, buffered=lambda: (0, 0))
    return Delivery(max_records, max_bytes, metrics, clock or Clock(), quiet_s)


def entries(*bodies: str, severity: str = INFO, key: str = "otel:logs") -> dict[str, list[dict[str, str]]]:
    return {key: [{"body": body, "severity_number": severity} for body in bodies]}


def bodies(queue: Delivery) -> list[str]:
    """Everything the next round trips would carry, in order (taking them)."""
    out: list[str] = []
    while (trip := queue.take()) is not None:
        out += [str(fields["body"]) for group in trip.entries.values() for fields in group]
        queue.settle(trip, WriteResult(count=trip.count, entry_ids=dict.fromkeys(range(trip.count), "1-0")))
    return out


def test_one_round_trip_takes_every_parcel_waiting_in_order() -> None:
    """Three exports queued: one round trip carries all of them, oldest first."""
    queue = delivery()
    for name in "abc":
        queue.submit(entries(f"{name}1", f"{name}2"))
    trip = queue.take()
    assert trip is not None
    assert [fields["body"] for fields in trip.entries["otel:logs"]] == ["a1", "a2", "b1", "b2", "c1", "c2"]
    assert queue.take() is None


def test_a_round_trip_stops_at_its_entry_cap() -> None:
    """Parcels beyond MAX_TRIP_ENTRIES wait for the next round trip."""
    queue = delivery(max_records=10 * MAX_TRIP_ENTRIES)
    queue.submit(entries(*map(str, range(MAX_TRIP_ENTRIES - 1))))
    queue.submit(entries("next1", "next2"))
    first = queue.take()
    assert first is not None
    assert first.count == MAX_TRIP_ENTRIES - 1
    queue.settle(first, WriteResult(count=first.count, entry_ids=dict.fromkeys(range(first.count), "1-0")))
    second = queue.take()
    assert second is not None
    assert second.count == 2


def test_one_round_trip_at_a_time() -> None:
    """While a round trip is in flight nothing else is taken; its end wakes the sender for what came."""
    queue = delivery()
    woken: list[bool] = []
    queue.wake = lambda: woken.append(True)
    queue.submit(entries("first"), wake=False)
    trip = queue.take()
    assert trip is not None
    queue.submit(entries("second"), wake=False)
    assert queue.take() is None
    assert woken == []
    queue.settle(trip, WriteResult(count=1, entry_ids={0: "1-0"}))
    assert woken == [True]
    assert bodies(queue) == ["second"]


def test_export_takes_its_own_round_trip_only_while_all_is_well() -> None:
    """take_now (export()'s thread) declines after a failed attempt and while closing."""
    queue = delivery()
    queue.submit(entries("a"))
    trip = queue.take_now()
    assert trip is not None
    queue.settle(trip, WriteResult(count=1, reason="lost"))
    assert queue.take_now() is None  # a failure: the sender retries, with its backoff
    trip = queue.take()
    assert trip is not None
    queue.settle(trip, WriteResult(count=1, entry_ids={0: "1-0"}))
    queue.submit(entries("b"))
    queue.begin_close(deadline=float("inf"))
    assert queue.take_now() is None
    assert bodies(queue) == ["b"]


def test_a_round_trip_given_up_at_shutdown_is_not_booked_again() -> None:
    """Settling a round trip that shutdown already gave up changes nothing: every entry once."""
    queue = delivery()
    ticket = queue.submit(entries("a", "b"))
    trip = queue.take()
    assert trip is not None
    assert queue.give_up() == {"unconfirmed": 2}
    settled = queue.settle(trip, WriteResult(count=2, entry_ids={0: "1-0", 1: "1-1"}))
    assert settled.written == 0
    assert (ticket.open, ticket.dropped) == (0, 2)
    assert queue.queued == (0, 0)


def test_failed_entries_go_back_to_the_front_in_order() -> None:
    """What an attempt did not write is sent first next time, before newer entries."""
    queue = delivery()
    ticket = queue.submit(entries("old1", "old2", "old3"))
    trip = queue.take()
    assert trip is not None
    queue.submit(entries("new"))
    queue.settle(trip, WriteResult(count=3, entry_ids={1: "1-0"}, reason="lost"))
    assert ticket.open == 2
    assert bodies(queue) == ["old1", "old3", "new"]
    assert (ticket.open, ticket.dropped) == (0, 0)


def test_an_export_over_several_streams_is_settled_by_position() -> None:
    """Replies come key by key, entry by entry: position 1 is the second entry of the first
    stream, position 2 the first of the second. What was not written goes back alone."""
    queue = delivery()
    ticket = queue.submit({**entries("a1", "a2", key="otel:a"), **entries("b1", key="otel:b")})
    trip = queue.take()
    assert trip is not None
    assert {key: [fields["body"] for fields in group] for key, group in trip.entries.items()} == {
        "otel:a": ["a1", "a2"],
        "otel:b": ["b1"],
    }
    queue.settle(trip, WriteResult(count=3, entry_ids={0: "1-0", 2: "1-1"}, reason="lost"))
    assert ticket.open == 1
    assert bodies(queue) == ["a2"]
    assert (ticket.open, ticket.dropped) == (0, 0)


def test_refused_entries_are_dropped_and_counted_by_error_type() -> None:
    """A WRONGTYPE refusal settles the entry as dropped; the ticket is not ok."""
    queue = delivery()
    ticket = queue.submit(entries("a", "b"))
    trip = queue.take()
    assert trip is not None
    settled = queue.settle(trip, WriteResult(count=2, entry_ids={0: "1-0"}, rejected={1: "WRONGTYPE"}))
    assert settled.written == 1
    assert settled.dropped == {"WRONGTYPE": 1}
    assert (ticket.open, ticket.dropped) == (0, 1)
    assert queue.take() is None


def test_bounds_drop_the_lowest_severity_first_then_the_oldest() -> None:
    """Past max_records, INFO goes before ERROR, and older INFO before newer INFO."""
    queue = delivery(max_records=3)
    queue.submit(entries("info-old"))
    queue.submit(entries("error", severity=ERROR))
    queue.submit(entries("info-new"))
    queue.submit(entries("warn", severity=WARN))
    assert bodies(queue) == ["error", "info-new", "warn"]


def test_a_new_batch_never_pushes_itself_out() -> None:
    """With max_records=0 a batch still goes to the sender; older waiting ones are dropped."""
    queue = delivery(max_records=0)
    queue.submit(entries("older"))
    newest = queue.submit(entries("newest"))
    assert bodies(queue) == ["newest"]
    assert (newest.open, newest.dropped) == (0, 0)


def test_unconfirmed_entries_are_never_dropped_by_the_bounds() -> None:
    """An entry that may have reached the server stays; the bounds take others."""
    queue = delivery(max_records=1)
    queue.submit(entries("sent"))
    trip = queue.take()
    assert trip is not None
    queue.settle(trip, WriteResult(count=1, unconfirmed={0}, reason="no reply"))
    queue.submit(entries("later"))
    queue.submit(entries("latest"))
    assert bodies(queue) == ["sent", "latest"]


def test_give_up_counts_unsent_as_shutdown_and_sent_as_unconfirmed() -> None:
    """At shutdown what never reached the server and what may have are told apart."""
    queue = delivery()
    queue.submit(entries("sent"))
    trip = queue.take()
    assert trip is not None
    queue.settle(trip, WriteResult(count=1, unconfirmed={0}, reason="no reply"))
    ticket = queue.submit(entries("queued1", "queued2"))
    assert queue.give_up() == {"unconfirmed": 1, "shutdown": 2}
    assert queue.queued == (0, 0)
    assert (ticket.open, ticket.dropped) == (0, 2)


def test_handoff_is_true_once_the_batch_is_written() -> None:
    """export()'s wait ends with True when its whole batch was written."""
    queue = delivery()
    ticket = queue.submit(entries("a", "b"))
    assert bodies(queue) == ["a", "b"]
    assert queue.handoff(ticket) is True


def test_handoff_ends_at_once_while_the_sender_is_failing() -> None:
    """After a failed attempt export() does not wait: the batch stays queued."""
    queue = delivery()
    queue.submit(entries("a"))
    trip = queue.take()
    assert trip is not None
    queue.settle(trip, WriteResult(count=1, reason="no reply"))
    ticket = queue.submit(entries("b"))
    assert queue.handoff(ticket) is False
    assert queue.queued[0] == 2


def test_handoff_ends_when_the_round_trip_stalls() -> None:
    """A round trip far slower than the ones before it counts as stalled: export() stops waiting."""
    clock = Clock()
    queue = delivery(clock=clock)
    queue.submit(entries("warm-up"))
    assert bodies(queue) == ["warm-up"]  # settles in no time on this clock
    ticket = queue.submit(entries("stuck"))
    assert queue.take() is not None
    clock.now += HANDOFF_TIMEOUT_S  # the round trip has waited as long as the hand-off allows
    assert queue.handoff(ticket) is False


def test_handoff_of_a_refused_batch_is_false() -> None:
    """A batch with a record refused for good is not reported written."""
    queue = delivery()
    ticket = queue.submit(entries("a"))
    trip = queue.take()
    assert trip is not None
    queue.settle(trip, WriteResult(count=1, rejected={0: "WRONGTYPE"}))
    assert queue.handoff(ticket) is False


def test_closing_gives_up_after_the_patience_without_progress() -> None:
    """Once closing, the give-up moment moves with every write and ends at the close deadline."""
    clock = Clock()
    queue = delivery(clock=clock)
    queue.begin_close(deadline=clock.now + 30)
    assert queue.give_up_at() == clock.now + SHUTDOWN_PATIENCE_S
    queue.submit(entries("a"))
    trip = queue.take()
    assert trip is not None
    clock.now += 0.5
    queue.settle(trip, WriteResult(count=1, entry_ids={0: "1-0"}))
    assert queue.give_up_at() == clock.now + SHUTDOWN_PATIENCE_S
    queue.begin_close(deadline=clock.now + 0.1)
    assert queue.give_up_at() == clock.now + 0.1


def test_wait_idle_is_true_only_when_nothing_is_queued_or_in_flight() -> None:
    """force_flush's wait: False while an entry waits, True once it is written."""
    queue = delivery()
    assert queue.wait_idle(0)
    queue.submit(entries("a"))
    assert not queue.wait_idle(0)
    assert bodies(queue) == ["a"]
    assert queue.wait_idle(0)


def test_handoff_does_not_wait_behind_a_stalled_round_trip() -> None:
    """A batch queued behind a stalled round trip: export() returns at once, not after a wait."""
    clock = Clock()
    queue = delivery(clock=clock)
    queue.submit(entries("warm-up"))
    assert bodies(queue) == ["warm-up"]
    queue.submit(entries("stuck"))
    assert queue.take() is not None
    clock.now += HANDOFF_TIMEOUT_S
    queued = queue.submit(entries("behind"))
    assert queue.handoff(queued) is False


def test_closing_lets_a_round_trip_whose_replies_keep_coming_finish() -> None:
    """A large round trip still answering on a busy machine is progress: shutdown waits for it."""
    clock = Clock()
    queue = delivery(max_records=100_000, clock=clock)
    queue.submit(entries(*map(str, range(100))))
    assert queue.take() is not None
    queue.begin_close(deadline=clock.now + 60)
    assert queue.give_up_at() == clock.now + SHUTDOWN_PATIENCE_S
    clock.now += SHUTDOWN_PATIENCE_S - 0.01
    queue.heard()  # a reply: the server is alive, just slow
    assert queue.give_up_at() == clock.now + SHUTDOWN_PATIENCE_S


def test_export_stops_waiting_when_nothing_was_heard_for_the_handoff() -> None:
    """A round trip with no reply for HANDOFF_TIMEOUT_S: export() stops waiting for it."""
    clock = Clock()
    queue = delivery(clock=clock)
    ticket = queue.submit(entries("slow"))
    assert queue.take() is not None
    clock.now += HANDOFF_TIMEOUT_S
    assert queue.handoff(ticket) is False  # nothing heard since the round trip started


def test_with_wait_replicas_export_waits_out_a_quiet_wait() -> None:
    """WAIT answers only once replicas confirm: a round trip quiet for longer than the hand-off,
    but within ``quiet_s``, is still waited for, and its SUCCESS reported."""
    clock = Clock()
    queue = delivery(clock=clock, quiet_s=HANDOFF_TIMEOUT_S + 1.2)
    ticket = queue.submit(entries("replicated"))
    trip = queue.take()
    assert trip is not None
    clock.now += HANDOFF_TIMEOUT_S  # as quiet as a plain round trip may ever be
    replicas_confirm = threading.Timer(0.05, queue.settle, (trip, WriteResult(count=1, entry_ids={0: "1-0"})))
    replicas_confirm.start()
    assert queue.handoff(ticket) is True
    replicas_confirm.join()


def test_handoff_does_not_wait_behind_a_backlog() -> None:
    """A batch that cannot go out in the next round trip: export() returns at once."""
    queue = delivery(max_records=10 * MAX_TRIP_ENTRIES)
    queue.submit(entries(*map(str, range(MAX_TRIP_ENTRIES))))
    behind = queue.submit(entries("behind"))
    started = time.monotonic()
    assert queue.handoff(behind) is False
    assert time.monotonic() - started < HANDOFF_TIMEOUT_S


def test_give_up_counts_a_round_trip_its_sender_never_finished() -> None:
    """A sender stopped mid round trip: its entries are counted as unconfirmed, not lost."""
    queue = delivery()
    ticket = queue.submit(entries("in flight 1", "in flight 2"))
    assert queue.take() is not None
    queue.submit(entries("waiting"))
    assert queue.give_up() == {"unconfirmed": 2, "shutdown": 1}
    assert queue.queued == (0, 0)
    assert (ticket.open, ticket.dropped) == (0, 2)
