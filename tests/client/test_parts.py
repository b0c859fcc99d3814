"""The parts of ``ConfigClient``, each without servers: ``ConfigHolder`` (what is held, the rule
for taking a version, notification) and ``StreamFollower`` (stream messages, version gaps)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from client.binding import Bound
from client.holder import ConfigHolder
from client.notify import Notifier
from client.snapshot import Snapshot, Source
from client.stream_follow import StreamFollower
from ledger.errors import InvalidConfig
from ledger.event import Event, Replace, new_event
from ledger.nats_io import StoredMsg

DEFAULTS = {"mode": "safe"}
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class _Recorder(Notifier):
    """A notifier that records what it would deliver (no event loop needed)."""

    def __init__(self) -> None:
        super().__init__()
        self.updates: list[tuple[list[Any], str]] = []

    def submit(self, calls: Any, label: str, on_done: Any = None) -> None:
        if calls:
            self.updates.append(([argument for _, argument in calls], label))


def _holder(defaults: dict[str, Any] | None = DEFAULTS) -> tuple[ConfigHolder, _Recorder]:
    notifier = _Recorder()
    holder = ConfigHolder("svc", defaults, cache_ttl=60, notifier=notifier)
    holder.callbacks.append(lambda _config: None)
    return holder, notifier


def test_versions_only_move_forward() -> None:
    holder, notifier = _holder()
    assert holder.offer(Snapshot(2, {"v": 2}, Source.API))
    assert not holder.offer(Snapshot(1, {"v": 1}, Source.STREAM))
    assert not holder.offer(Snapshot(2, {"v": "2 again"}, Source.STREAM))
    assert holder.offer(Snapshot(3, {"v": 3}, Source.STREAM))
    assert (holder.state.version, holder.state.config, holder.high_water) == (3, {"v": 3}, 3)
    assert [args for args, _ in notifier.updates] == [[{"v": 2}], [{"v": 3}]]


def test_a_deletion_means_the_safe_defaults_and_counts_as_a_version() -> None:
    holder, notifier = _holder()
    holder.offer(Snapshot(1, {"v": 1}, Source.API))
    assert holder.offer(Snapshot(2, None, Source.STREAM))
    assert (holder.state.source, holder.state.config, holder.high_water) == (Source.DEFAULTS, DEFAULTS, 2)
    assert not holder.offer(Snapshot(2, {"v": "stale"}, Source.API))
    assert not holder.offer(Snapshot(None, None, Source.API))  # "no config" while on the defaults
    assert notifier.updates[-1][0] == [DEFAULTS]


def test_an_lkg_config_is_confirmed_by_an_authoritative_source_without_notifying() -> None:
    holder, notifier = _holder()
    holder.offer(Snapshot(4, {"v": 4}, Source.LKG))
    before = len(notifier.updates)
    assert not holder.offer(Snapshot(4, {"v": 4}, Source.API, seq=None))
    assert holder.state.source is Source.API and len(notifier.updates) == before


def test_a_check_rejects_a_version_as_a_whole_and_hooks_see_what_is_taken() -> None:
    holder, notifier = _holder()
    taken: list[int | None] = []
    holder.accepted.append(lambda snap: taken.append(snap.version))

    def no_zero(config: dict[str, Any], version: int | None) -> None:
        if config.get("n") == 0:
            raise InvalidConfig("no_zero", "n must not be 0", path="n")

    holder.checks.append(no_zero)
    assert holder.offer(Snapshot(1, {"n": 1}, Source.API))
    assert not holder.offer(Snapshot(2, {"n": 0}, Source.API))
    assert (holder.state.version, holder.high_water, taken) == (1, 1, [1])
    assert holder.offer(Snapshot(3, {"n": 3}, Source.API))
    assert taken == [1, 3] and len(notifier.updates) == 2


class _Model(BaseModel):
    n: int


def test_bound_models_join_the_acceptance_check() -> None:
    holder, _ = _holder(defaults=None)
    bound: Bound[_Model] = Bound(_Model, "svc")
    holder.bind(bound)
    assert holder.offer(Snapshot(1, {"n": 1}, Source.API)) and bound.value == _Model(n=1)
    assert not holder.offer(Snapshot(2, {"n": "not a number"}, Source.API))
    assert bound.value == _Model(n=1) and holder.state.version == 1


def test_freshness_and_retry_after_a_failure() -> None:
    holder, _ = _holder()
    assert holder.due()
    holder.touch()
    assert not holder.due()
    holder.fresh_until = 0.0
    holder.failed(retry_in=30)
    assert not holder.due()


# --- StreamFollower ----------------------------------------------------------------------------


def _events(n: int, service: str = "svc") -> list[Event]:
    events: list[Event] = []
    for i in range(n):
        events.append(new_event(events[-1] if events else None, service, Replace({"i": i}), actor="t",
                                reason="", occurred_at=T0, event_id=str(uuid.uuid4())))
    return events


def _msg(event: Event, seq: int) -> StoredMsg:
    return StoredMsg(f"config.events.{event.service}", seq, event.to_bytes(), T0, {})


def test_consecutive_versions_become_snapshots() -> None:
    follower = StreamFollower("svc")
    assert follower.empty
    e1, e2 = _events(2)
    snaps = [follower.take(_msg(e, seq), resync=pytest.fail) for seq, e in enumerate([e1, e2], start=10)]
    assert [(s.version, s.seq, s.config) for s in snaps if s] == [(1, 10, {"i": 0}), (2, 11, {"i": 1})]
    assert (follower.seen_version, follower.seen_seq, follower.empty) == (2, 11, False)


def test_a_gap_asks_for_one_reread_then_is_taken() -> None:
    follower = StreamFollower("svc")
    e1, _e2, e3 = _events(3)
    resyncs: list[int] = []
    follower.take(_msg(e1, 1), resync=resyncs.append)
    assert follower.take(_msg(e3, 3), resync=resyncs.append) is None
    assert resyncs == [1]
    snap = follower.take(_msg(e3, 3), resync=resyncs.append)  # the re-read shows the same gap
    assert snap is not None and snap.version == 3 and resyncs == [1]


def test_foreign_broken_and_tampered_messages_are_skipped() -> None:
    follower = StreamFollower("svc")
    (other,) = _events(1, service="other")
    assert follower.take(_msg(other, 1), resync=pytest.fail) is None
    assert follower.take(StoredMsg("config.events.svc", 2, b"not json", T0, {}), resync=pytest.fail) is None
    (mine,) = _events(1)
    tampered = mine.to_bytes().replace(b'"i":0', b'"i":9')
    assert follower.take(StoredMsg("config.events.svc", 3, tampered, T0, {}), resync=pytest.fail) is None
    assert (follower.seen_seq, follower.seen_version) == (3, None)
