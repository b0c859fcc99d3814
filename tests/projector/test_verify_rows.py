"""The pure core: verifying a message against its service's chain, and event -> rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.errors import ProjectionDiverged
from ledger.event import Delete, Event, Patch, Replace, event_hash, new_event
from ledger.fold import ChainState
from ledger.watch import ack_fields
from projector import VERSION_COLUMNS, verify_message, version_row
from projector.rows import current_rows

NOW = datetime(2026, 11, 28, 10, 30, 45, 123456, tzinfo=UTC)
PREFIX = "config.events"


def chain(service: str = "billing", n: int = 3) -> list[Event]:
    events: list[Event] = []
    for i in range(n):
        change: Any = Replace({"n": i}) if i % 2 == 0 else Patch({"p": i})
        events.append(
            new_event(events[-1] if events else None, service, change, actor="alice", reason="r",
                      occurred_at=NOW, event_id=str(uuid.uuid4()))
        )
    return events


def forged(base: Event, **fields: Any) -> bytes:
    """``base`` changed and re-hashed (the hash recomputes; the chain may not)."""
    data = {**base.to_dict(), **fields}
    data["hash"] = event_hash(data)
    return Event.from_dict(data).to_bytes()


def test_a_valid_chain_verifies_and_advances() -> None:
    chains: dict[str, ChainState] = {}
    for seq, e in enumerate(chain(), start=1):
        event, state = verify_message(chains, PREFIX, f"{PREFIX}.billing", seq, e.to_bytes())
        assert event == e and state == ChainState(e.version, e.hash)
        chains["billing"] = state


@pytest.mark.parametrize(
    ("subject", "body", "reason"),
    [
        (f"{PREFIX}.billing", b"not json", "not a valid event"),
        (f"{PREFIX}.billing", b'{"hello": "world"}', "not a valid event"),
        (f"{PREFIX}.billing", b"[1, 2]", "not a valid event"),
        ("other.billing", None, "outside config.events.>"),
        (f"{PREFIX}.payments", None, "published on the subject of 'payments'"),
    ],
)
def test_messages_that_cannot_be_applied(subject: str, body: bytes | None, reason: str) -> None:
    e1 = chain(n=1)[0]
    with pytest.raises(ProjectionDiverged) as info:
        verify_message({}, PREFIX, subject, 7, body if body is not None else e1.to_bytes())
    assert reason in info.value.message and info.value.seq == 7


def test_chain_violations() -> None:
    e1, e2, e3 = chain()
    chains = {"billing": ChainState(e2.version, e2.hash)}
    subject = f"{PREFIX}.billing"
    with pytest.raises(ProjectionDiverged, match="version gap"):
        verify_message(chains, PREFIX, subject, 4, forged(e3, version=4))
    with pytest.raises(ProjectionDiverged, match="broken hash chain"):
        verify_message(chains, PREFIX, subject, 4, forged(e3, prev_hash="sha256:" + "1" * 64))
    altered = {**e3.to_dict(), "reason": "tampered"}  # hash no longer recomputes
    with pytest.raises(ProjectionDiverged, match="does not recompute"):
        verify_message(chains, PREFIX, subject, 4, Event.from_dict(altered).to_bytes())
    with pytest.raises(ProjectionDiverged, match="version gap"):  # a new service must start at 1
        verify_message({}, PREFIX, subject, 1, e2.to_bytes())
    assert verify_message(chains, PREFIX, subject, 4, e3.to_bytes())[1].version == 3


def test_version_row_maps_every_column() -> None:
    e1, e2 = chain(n=2)
    stored = datetime(2026, 11, 28, 10, 30, 46, tzinfo=UTC)
    row = version_row(e2, 12, stored)
    assert row._fields == VERSION_COLUMNS
    assert row == (12, "billing", 2, "patched", '{"p":1}', '{"n":0,"p":1}', "alice", "r", NOW, stored,
                   e2.event_id, e1.hash, e2.hash, None)  # no change set
    deleted = new_event(e2, "billing", Delete(), actor="bob", reason="gone", occurred_at=NOW,
                        event_id=str(uuid.uuid4()))
    row = version_row(deleted, 13, stored)
    assert (row.kind, row.change, row.config) == ("deleted", None, None)  # SQL NULLs


def test_current_rows_keep_the_last_event_of_each_service() -> None:
    a = chain("a", 3)
    b = chain("b", 2)
    rows = [version_row(e, i, NOW) for i, e in enumerate([a[0], b[0], a[1], b[1], a[2]], start=1)]
    current = current_rows(rows)
    assert {s: (r.version, r.stream_seq, r.hash) for s, r in current.items()} == {
        "a": (3, 5, a[2].hash),
        "b": (2, 4, b[1].hash),
    }


def test_ack_fields_parse_both_reply_forms_exactly() -> None:
    ns = 1764337571786504761
    expected = datetime(2025, 11, 28, 13, 46, 11, 786504, tzinfo=UTC)  # truncated, never rounded
    assert ack_fields(f"$JS.ACK.S.c.1.42.7.{ns}.0") == (42, 7, expected, 0)
    assert ack_fields(f"$JS.ACK.dom.hash.S.c.1.42.7.{ns}.3.tok") == (42, 7, expected, 3)
    with pytest.raises(ValueError):
        ack_fields("_INBOX.abc")
