"""The history checker on hand-made histories: it passes sound ones and fails each kind of bug."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.event import Event, Replace, idempotency_event_id, new_event

from .history import History, StreamEvent, check_history

SVC = "svc"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def doc(marker: str) -> dict[str, Any]:
    return {"w": marker, "payload": marker * 2}


def stream_of(*markers: str, service: str = SVC, keys: dict[str, str] | None = None) -> list[StreamEvent]:
    """Events 1..n of ``service`` carrying ``markers`` (repeats allowed), chained properly."""
    out: list[StreamEvent] = []
    prev: Event | None = None
    for i, m in enumerate(markers):
        key = (keys or {}).get(m)
        event_id = idempotency_event_id(service, key) if key else f"00000000-0000-4000-8000-{i:012d}"
        prev = new_event(prev, service, Replace(doc(m)), actor="t", reason="", event_id=event_id,
                         occurred_at=datetime(2026, 1, 1, tzinfo=UTC))
        out.append(StreamEvent.from_event(i + 1, prev))
    return out


def write(h: History, marker: str, outcome: str, version: int | None = None, *,
          key: str | None = None, visible: bool = True) -> None:
    op = h.invoke_write(SVC, "w0", marker, key)
    if outcome == "ok":
        assert version is not None
        h.ok(op, version, visible=visible)
    elif outcome == "fail":
        h.fail(op, "409")
    else:
        h.unknown(op, "timeout")


def read(h: History, version: int, config: Any) -> None:
    op = h.invoke_read(SVC, "r0")
    h.read_ok(op, version, config)


def problems(h: History, stream: list[StreamEvent], **kw: Any) -> list[str]:
    return check_history(h, stream, **kw).problems


def test_sound_history_passes_and_counts() -> None:
    h = History(Clock())
    write(h, "a", "ok", 1, key="ka")
    write(h, "b", "unknown")  # landed
    write(h, "c", "unknown")  # did not land
    write(h, "d", "fail")
    write(h, "e", "ok", 3)
    read(h, 3, doc("e"))
    h.observe(SVC, "client-1", 1, h.clock(), doc("a"))
    h.observe(SVC, "client-1", 3, h.clock(), doc("e"))
    result = check_history(h, stream_of("a", "b", "e", keys={"a": "ka"}))
    assert result.ok, result.problems
    t = result.totals()
    assert (t["attempted"], t["acknowledged"], t["lost"], t["unknown"], t["unknown_landed"],
            t["failed"], t["duplicates"]) == (5, 2, 0, 2, 1, 1, 0)


def test_retries_of_one_write_with_the_same_key_are_one_logical_write() -> None:
    h = History(Clock())
    write(h, "a", "unknown", key="k")
    write(h, "a", "unknown", key="k")
    write(h, "a", "ok", 1, key="k")
    result = check_history(h, stream_of("a", keys={"a": "k"}))
    assert result.ok, result.problems
    assert result.totals()["attempted"] == 1 and result.totals()["attempts"] == 3


def test_lost_acknowledged_write_fails() -> None:
    h = History(Clock())
    write(h, "a", "ok", 1)
    write(h, "b", "ok", 2)
    found = problems(h, stream_of("a"))
    assert any("'b'" in p and "lost" in p for p in found), found
    assert check_history(h, stream_of("a")).totals()["lost"] == 1


def test_duplicate_effect_fails() -> None:
    h = History(Clock())
    write(h, "a", "unknown", key="k")
    write(h, "a", "ok", 2, key="k")
    found = problems(h, stream_of("a", "a", keys={"a": "k"}))
    assert any("duplicate" in p for p in found), found


def test_failed_write_in_stream_fails() -> None:
    h = History(Clock())
    write(h, "a", "fail")
    assert any("reported failed" in p for p in problems(h, stream_of("a")))


def test_reorder_fails() -> None:
    h = History(Clock())
    write(h, "a", "ok", 2)  # acknowledged first ...
    write(h, "b", "ok", 1)  # ... yet b, started afterwards, comes first
    found = problems(h, stream_of("b", "a"))
    assert any("reorder" in p for p in found), found


def test_reorder_across_services_fails() -> None:
    h = History(Clock())
    op = h.invoke_write("other", "w0", "x")
    h.ok(op, 1)  # acknowledged first, on another service ...
    write(h, "a", "ok", 1)  # ... yet this one, started later, has the smaller stream sequence
    events = stream_of("a") + [
        StreamEvent(2, "other", e.version, e.event_id, e.config, e.event) for e in stream_of("x", service="other")
    ]
    found = problems(h, events)
    assert any("across services" in p for p in found), found
    in_order = [StreamEvent(1, "other", *vars_of(stream_of("x", service="other")[0]))] + [
        StreamEvent(2, SVC, *vars_of(stream_of("a")[0]))]
    assert problems(h, in_order) == []


def vars_of(e: StreamEvent) -> tuple[Any, ...]:
    return (e.version, e.event_id, e.config, e.event)


def test_concurrent_writes_may_land_in_either_order() -> None:
    h = History(Clock())
    a = h.invoke_write(SVC, "w0", "a")
    b = h.invoke_write(SVC, "w1", "b")
    h.ok(a, 2)
    h.ok(b, 1)
    assert problems(h, stream_of("b", "a")) == []


def test_stale_read_fails() -> None:
    h = History(Clock())
    write(h, "a", "ok", 1)
    write(h, "b", "ok", 2)  # acknowledged as readable ...
    read(h, 1, doc("a"))  # ... then a read that started later still returns version 1
    found = problems(h, stream_of("a", "b"))
    assert any("stale read" in p for p in found), found


def test_stale_read_is_found_when_the_next_version_was_not_ours() -> None:
    h = History(Clock())
    write(h, "a", "ok", 1)
    # version 2 was written by someone we did not record; version 3 is ours and acknowledged
    write(h, "c", "ok", 3)
    read(h, 1, doc("a"))
    found = problems(h, stream_of("a", "b", "c"))
    assert any("stale read" in p for p in found), found


def test_read_of_nothing_after_an_acked_create_is_stale() -> None:
    h = History(Clock())
    write(h, "a", "ok", 1)
    read(h, 0, None)
    assert any("stale read" in p for p in problems(h, stream_of("a")))


def test_lagging_read_after_an_ack_without_read_your_writes_is_allowed() -> None:
    h = History(Clock())
    write(h, "a", "ok", 1)
    write(h, "b", "ok", 2, visible=False)  # HTTP 202: the projection may lag
    read(h, 1, doc("a"))
    assert problems(h, stream_of("a", "b")) == []


def test_lagging_read_after_a_202_fails_when_reads_must_see_every_ack() -> None:
    h = History(Clock())
    write(h, "a", "ok", 1)
    write(h, "b", "ok", 2, visible=False)
    read(h, 1, doc("a"))
    found = problems(h, stream_of("a", "b"), reads_see_every_ack=True)
    assert any("stale read" in p for p in found), found


def test_read_concurrent_with_a_write_may_return_either_state() -> None:
    h = History(Clock())
    write(h, "a", "ok", 1)
    w = h.invoke_write(SVC, "w0", "b")
    r1 = h.invoke_read(SVC, "r0")
    r2 = h.invoke_read(SVC, "r1")
    h.read_ok(r1, 1, doc("a"))
    h.read_ok(r2, 2, doc("b"))
    h.ok(w, 2)
    assert problems(h, stream_of("a", "b")) == []


def test_read_from_the_future_fails() -> None:
    h = History(Clock())
    write(h, "a", "ok", 1)
    read(h, 2, doc("b"))  # returned before b's write was invoked
    write(h, "b", "ok", 2)
    found = problems(h, stream_of("a", "b"))
    assert any("future" in p for p in found), found


def test_read_with_wrong_content_fails() -> None:
    h = History(Clock())
    write(h, "a", "ok", 1)
    read(h, 1, {"w": "something else"})
    assert any("differs" in p for p in problems(h, stream_of("a")))


def test_read_of_a_version_not_in_the_stream_fails() -> None:
    h = History(Clock())
    write(h, "a", "ok", 1)
    read(h, 5, doc("x"))
    assert any("not in the stream" in p for p in problems(h, stream_of("a")))


def test_acked_version_must_match_stored_version() -> None:
    h = History(Clock())
    write(h, "a", "ok", 1)
    write(h, "b", "ok", 7)
    assert any("acked as version" in p for p in problems(h, stream_of("a", "b")))


def test_acked_stream_sequence_must_match_stored_sequence() -> None:
    h = History(Clock())
    h.ok(h.invoke_write(SVC, "w0", "a"), 1, seq=1)
    h.ok(h.invoke_write(SVC, "w0", "b"), 2, seq=9)
    found = problems(h, stream_of("a", "b"))
    assert any("stream sequence(s) [9]" in p for p in found), found


def test_idempotency_key_must_map_to_event_id() -> None:
    h = History(Clock())
    write(h, "a", "ok", 1, key="k")
    found = problems(h, stream_of("a"))  # stored with a random event_id
    assert any("Idempotency-Key" in p for p in found), found


def test_version_gap_and_broken_chain_fail() -> None:
    events = stream_of("a", "b", "c")
    gap = [events[0], events[2]]
    found = problems(History(Clock()), gap, services=[SVC])
    assert any("contiguous" in p for p in found), found
    assert any("chain" in p or "gap" in p for p in found), found


def test_non_event_message_fails() -> None:
    events = stream_of("a") + [StreamEvent(2, SVC, None, None, None)]
    assert any("not an event" in p for p in problems(History(Clock()), events, services=[SVC]))


def test_client_going_back_fails_and_missing_a_version_fails_when_required() -> None:
    stream = stream_of("a", "b", "c")
    h = History(Clock())
    for m, v in (("a", 1), ("b", 2), ("c", 3)):
        write(h, m, "ok", v)
    h.observe(SVC, "c1", 3, h.clock(), doc("c"))
    h.observe(SVC, "c1", 2, h.clock(), doc("b"))
    assert any("back to" in p for p in problems(h, stream))

    h2 = History(Clock())
    for m, v in (("a", 1), ("b", 2), ("c", 3)):
        write(h2, m, "ok", v)
    h2.observe(SVC, "c1", 1, h2.clock(), doc("a"))
    h2.observe(SVC, "c1", 3, h2.clock(), doc("c"))
    assert problems(h2, stream) == []
    assert any("missed [2]" in p for p in problems(h2, stream, contiguous_observations=True))


def test_per_service_isolation() -> None:
    h = History(Clock())
    op = h.invoke_write("other", "w0", "a")
    h.ok(op, 1)
    # The marker exists, but on another service's subject: still lost for "other".
    found = problems(h, stream_of("a"))
    assert any("other" in p and "lost" in p for p in found), found


def test_assert_ok_raises_with_the_problems() -> None:
    h = History(Clock())
    write(h, "a", "ok", 1)
    with pytest.raises(AssertionError, match="lost"):
        check_history(h, []).assert_ok()
