"""Pure core: canonical JSON, merge patch, event building, fold and chain verification."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings

from ledger import (
    Delete,
    Event,
    InvalidChange,
    NotFound,
    Patch,
    ProjectionDiverged,
    Replace,
    Rollback,
    fold,
    merge_patch,
    verify_chain,
)
from ledger.canonical import dumps, loads
from ledger.event import event_hash, new_event

from .strategies import change_sequences, documents, json_values

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def build(service: str, changes: list) -> list[Event]:
    """Decide each change in turn, as the writer does (rollbacks look up their target)."""
    events: list[Event] = []
    for i, change in enumerate(changes):
        target = None
        if isinstance(change, Rollback):
            target = events[change.to_version - 1]
        events.append(
            new_event(
                events[-1] if events else None,
                service,
                change,
                actor="alice",
                reason=f"change {i}",
                occurred_at=T0 + timedelta(seconds=i),
                event_id=str(uuid.uuid4()),
                target=target,
            )
        )
    return events


@given(json_values)
def test_canonical_round_trip(value: object) -> None:
    assert loads(dumps(value)) == value
    assert dumps(loads(dumps(value))) == dumps(value)


@given(documents, documents)
def test_merge_patch_replaces_and_removes(a: dict, b: dict) -> None:
    merged = merge_patch(a, b)
    for key, value in b.items():
        if value is None:
            assert key not in merged
        elif not isinstance(value, dict):
            assert merged[key] == value
    # RFC 7396: a patch equal to the target's complement-free copy is idempotent
    assert merge_patch(merged, b) == merged


def test_merge_patch_rfc7396_examples() -> None:
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"a": [1]}, {"a": [2]}) == {"a": [2]}
    assert merge_patch({"a": {"b": 1}}, {"a": 1}) == {"a": 1}


@settings(max_examples=150, deadline=None)
@given(change_sequences())
def test_fold_reproduces_every_event(changes: list) -> None:
    events = build("svc", changes)
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    for prev, event in zip(events, events[1:], strict=False):
        assert event.prev_hash == prev.hash
    assert all(e.hash_ok() for e in events)
    # Folding any prefix gives that prefix's last event; the stored config is the applied change.
    for n in range(1, len(events) + 1):
        assert fold(events[:n])["svc"] == events[n - 1]
    # Round trip through bytes keeps the hash valid.
    for event in events:
        again = Event.from_bytes(event.to_bytes())
        assert again == event and again.hash_ok()
    assert verify_chain(events).ok


def test_fold_detects_tampering() -> None:
    events = build("svc", [Replace({"a": 1}), Patch({"b": 2}), Patch({"c": 3})])
    forged = events[1].model_copy(update={"config": {"a": 1, "b": 999}})
    with pytest.raises(ProjectionDiverged, match="does not recompute"):
        fold([events[0], forged, events[2]])
    with pytest.raises(ProjectionDiverged, match="version gap"):
        fold([events[0], events[2]])
    report = verify_chain([events[0], forged, events[2]])
    assert not report.ok and "version 2" in report.problems[0]


def test_fold_detects_config_not_matching_change() -> None:
    events = build("svc", [Replace({"a": 1}), Patch({"a": 2})])
    fields = {**events[1].to_dict(), "config": {"a": 3}}  # re-hashed: the chain alone is fine
    fields["hash"] = event_hash(fields)
    with pytest.raises(ProjectionDiverged, match="not the result of its change"):
        fold([events[0], Event.from_dict(fields)])


def test_change_rules() -> None:

    # Patching or deleting what does not exist is "not found" (HTTP 404, exit 1), with a rule id.
    with pytest.raises(NotFound) as missing:
        build("svc", [Patch({"a": 1})])  # nothing to patch yet
    assert missing.value.details["rule"] == "patch.no_config"
    with pytest.raises(NotFound, match="deleted"):
        build("svc", [Replace({"a": 1}), Delete(), Delete()])
    with pytest.raises(InvalidChange):
        Rollback()
    with pytest.raises(InvalidChange):
        Rollback(to_version=0)
    deleted = build("svc", [Replace({"a": 1}), Delete(), Replace({"b": 2})])
    assert deleted[1].config is None and deleted[2].config == {"b": 2}
    with pytest.raises(InvalidChange, match="is a deletion"):
        build("svc", [Replace({"a": 1}), Delete(), Replace({"b": 2}), Rollback(to_version=2)])


def test_event_shape_is_checked() -> None:
    from ledger import InvalidConfig

    with pytest.raises(InvalidConfig) as info:
        Event.from_bytes(b'{"x": 1}')
    assert info.value.rule == "event.shape"
    with pytest.raises(InvalidConfig):
        Event.from_bytes(b"not json")

