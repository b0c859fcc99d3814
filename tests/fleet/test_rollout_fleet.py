"""Staged rollouts with real ConfigClient instances (tasks with distinct ids and labels)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from client import ConfigClient
from ledger import Ledger, LedgerSettings, Replace
from ledger import fleet_steps as steps
from ledger.acks import live
from ledger.fleet_events import CONTROLLER, FleetKind, verify_chain, verify_decisions
from ledger.fleet_log import FleetLog
from tests.support.waiting import wait_for

from .helpers import controller_loop, fleet_client, start_rollout

SVC = "payments"
CANARY = {"canary": "true", "zone": "a"}
REST = {"canary": "false", "zone": "b"}


@pytest.fixture
async def fleet(provisioned: LedgerSettings, ledger: Ledger) -> AsyncIterator[Callable[..., ConfigClient]]:
    await ledger.append(SVC, Replace({"limit": 1}), actor="ops", reason="base")
    made: list[ConfigClient] = []

    def make(instance: str, labels: dict[str, str]) -> ConfigClient:
        client = fleet_client(provisioned, SVC, instance, labels)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.shutdown()


async def _up(make: Callable[..., ConfigClient], spec: dict[str, dict[str, str]]) -> dict[str, ConfigClient]:
    clients = {name: make(name, labels) for name, labels in spec.items()}
    for client in clients.values():
        await client.init_async()
    return clients


async def _acks(ledger: Ledger) -> dict[str, Any]:
    acks = await FleetLog(ledger.nc, ledger.settings).acks(SVC)
    return {a.instance: a for a in live(acks, datetime.now(UTC), 30)}


async def test_canary_reaches_only_its_cohort_then_promotion_reaches_the_rest(ledger: Ledger, fleet: Any) -> None:
    clients = await _up(fleet, {"c1": CANARY, "c2": CANARY, "r1": REST, "r2": REST, "r3": REST})
    rollout = await start_rollout(ledger, SVC, {"limit": 2}, [{"labels": {"canary": "true"}}, {"percent": 100}],
                                  {"bake_s": 3600, "min_applied": 1.0})
    await wait_for(lambda: all(clients[c].get_value("limit") == 2 for c in ("c1", "c2")), what="canaries")

    async def canaries_acked() -> bool:
        acks = await _acks(ledger)
        return all(acks.get(c) and acks[c].rollout == rollout and acks[c].status == "applied" for c in ("c1", "c2"))

    await wait_for(canaries_acked, what="canary acks")
    assert [clients[r].get_value("limit") for r in ("r1", "r2", "r3")] == [1, 1, 1]
    assert (await ledger.current(SVC)).version == 1  # nothing written to the ledger yet

    log = FleetLog(ledger.nc, ledger.settings)
    head = await log.head(SVC)
    state = steps.promote(head.state, rollout, datetime.now(UTC))
    await log.append(head, SVC, FleetKind.STAGE_PROMOTED, rollout, state, actor="alice", reason="looks good")
    await wait_for(lambda: all(c.get_value("limit") == 2 for c in clients.values()), what="everyone on candidate")

    # the gate holds once everyone applied (the bake is over for a controller an hour later)
    async with controller_loop(ledger, clock=lambda: datetime.now(UTC) + timedelta(hours=2)):
        await wait_for(lambda: _state(ledger, "completed"), what="completed")
    current = await ledger.current(SVC)
    assert current.version == 2 and current.config == {"limit": 2} and "rollout" in current.reason
    await wait_for(lambda: all(c.version == 2 for c in clients.values()), what="ledger version 2 everywhere")


async def _state(ledger: Ledger, wanted: str) -> bool:
    head = await FleetLog(ledger.nc, ledger.settings).head(SVC)
    return head.state.rollout is not None and head.state.rollout.state == wanted


async def test_a_rejecting_client_makes_the_controller_abort_and_everyone_returns_to_base(
    ledger: Ledger, fleet: Any
) -> None:
    clients = await _up(fleet, {"c1": CANARY, "c2": CANARY, "r1": REST})

    def refuse(config: dict[str, Any]) -> None:
        if config.get("limit") == 99:
            raise ValueError("limit 99 is not supported here")

    clients["c2"].on_config_update(refuse)
    async with controller_loop(ledger):
        rollout = await start_rollout(ledger, SVC, {"limit": 99}, [{"labels": {"canary": "true"}}, {"percent": 100}],
                                      {"bake_s": 3600, "max_rejected": 0})
        await wait_for(lambda: _state(ledger, "aborted"), what="automatic abort")

    async def all_on_base() -> bool:
        acks = await _acks(ledger)
        return all(
            c.version == 1 and c.get_value("limit") == 1 and acks[n].status == "applied" and acks[n].rollout is None
            for n, c in clients.items()
        )

    await wait_for(all_on_base, what="every instance back on the base version")
    history = await FleetLog(ledger.nc, ledger.settings).history(SVC)
    aborted = history[-1]
    assert aborted.kind is FleetKind.ROLLOUT_ABORTED and aborted.actor == CONTROLLER
    assert aborted.detail["counts"]["rejected"] == 1 and "rejected" in aborted.reason
    assert verify_chain(history) == [] and verify_decisions(history) == []
    assert rollout == aborted.ref and (await ledger.current(SVC)).version == 1


async def test_a_dead_instance_leaves_the_view_after_its_ttl(ledger: Ledger, fleet: Any) -> None:
    clients = await _up(fleet, {"alive": REST, "dying": REST})
    await wait_for(lambda: _acks(ledger), what="acks")

    async def both() -> bool:
        return set(await _acks(ledger)) == {"alive", "dying"}

    await wait_for(both, what="both instances in the view")
    await clients["dying"].shutdown()
    log = FleetLog(ledger.nc, ledger.settings)

    async def only_alive() -> bool:
        return [a.instance for a in live(await log.acks(SVC), datetime.now(UTC), 1.5)] == ["alive"]

    await wait_for(only_alive, what="the dead instance gone after its TTL")


async def test_a_scheduled_change_applies_at_its_instant_and_a_cancelled_one_never(ledger: Ledger) -> None:
    await ledger.append(SVC, Replace({"limit": 1}), actor="ops", reason="base")
    log = FleetLog(ledger.nc, ledger.settings)
    from ledger.fleet_events import Scheduled
    from ledger.rollout import ChangeSpec

    at = datetime.now(UTC) + timedelta(seconds=2)
    keep = Scheduled(id="keep", not_before=at, what="write", change=ChangeSpec(op="patch", patch={"limit": 5}),
                     actor="alice", reason="night change")
    drop = Scheduled(id="drop", not_before=at - timedelta(milliseconds=500), what="write",
                     change=ChangeSpec(op="patch", patch={"limit": 666}), actor="alice", reason="never")
    for item in (keep, drop):
        head = await log.head(SVC)
        await log.append(head, SVC, FleetKind.CHANGE_SCHEDULED, item.id,
                         steps.schedule(head.state, item, datetime.now(UTC)), actor="alice", reason=item.reason)
    head = await log.head(SVC)
    state, _ = steps.unschedule(head.state, "drop")
    await log.append(head, SVC, FleetKind.SCHEDULE_CANCELLED, "drop", state, actor="alice", reason="changed my mind")
    async with controller_loop(ledger):
        await wait_for(lambda: _version(ledger, 2), timeout=10, what="the scheduled change")
    entry = await ledger.current_entry(SVC)
    assert entry.event.config == {"limit": 5} and entry.event.actor == "alice"
    assert abs((entry.stored_at - at).total_seconds()) <= 1.0
    history = await log.history(SVC)
    assert [e.kind for e in history].count(FleetKind.SCHEDULE_APPLIED) == 1
    assert all(e.ref != "drop" for e in history if e.kind is FleetKind.SCHEDULE_APPLIED)
    assert [e.event.version async for e in _entries(ledger)] == [1, 2]


async def _version(ledger: Ledger, version: int) -> bool:
    current = await ledger.current(SVC)
    return current is not None and current.version == version


async def _entries(ledger: Ledger) -> AsyncIterator[Any]:
    async for entry in ledger.history_entries(SVC):
        yield entry
