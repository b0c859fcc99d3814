"""The optional change-set fields leave events without them exactly as they were."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from ledger import Replace
from ledger.errors import InvalidConfig
from ledger.event import Event, event_hash, new_event

T = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)


def test_an_event_stored_before_change_sets_still_verifies() -> None:
    old = {  # the shape every event had before change sets: no changeset fields at all
        "schema": 1, "event_id": str(uuid.uuid4()), "service": "svc", "version": 1, "kind": "replaced",
        "change": {"a": 1}, "config": {"a": 1}, "actor": "alice", "reason": "r",
        "occurred_at": "2026-11-28T10:30:00.000000Z", "prev_hash": "",
    }
    old["hash"] = event_hash(old)
    event = Event.from_dict(old)
    assert event.hash_ok()
    assert event.to_dict() == old  # no new key appears in what is hashed and stored


def test_a_member_carries_its_set_and_the_hash_covers_it() -> None:
    cs = str(uuid.uuid4())
    event = new_event(None, "svc", Replace({"a": 1}), actor="a", reason="", occurred_at=T,
                      event_id=str(uuid.uuid4()), changeset=(cs, 2))
    stored = Event.from_bytes(event.to_bytes())
    assert (stored.changeset_id, stored.changeset_size) == (cs, 2) and stored.hash_ok()
    forged = {**event.to_dict(), "changeset_id": str(uuid.uuid4())}
    assert not Event.from_dict(forged).hash_ok()


def test_changeset_fields_go_together() -> None:
    event = new_event(None, "svc", Replace({"a": 1}), actor="a", reason="", occurred_at=T,
                      event_id=str(uuid.uuid4()), changeset=(str(uuid.uuid4()), 2))
    half = event.to_dict()
    del half["changeset_size"]
    with pytest.raises(InvalidConfig):
        Event.from_dict(half)
