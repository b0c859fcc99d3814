"""Replaying the ledger reproduces every rollout decision: ``AuditReader.verify_fleet`` and
``config-ledger verify`` re-run each controller decision on the numbers it recorded, check every
step's transition and the hash chain, and name what does not hold."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime
from typing import Any

from client.audit import AuditReader
from ledger import Ledger, Replace
from ledger import fleet_steps as steps
from ledger.acks import Ack
from ledger.fleet_events import CONTROLLER, FleetKind, FleetState, next_fleet_event, verify_steps
from ledger.fleet_log import FleetLog
from ledger.rollout import ChangeSpec, GateSpec, StageSpec
from ops.cli import main
from tests.support.waiting import wait_for

from .helpers import controller_loop, start_rollout

SVC = "search"
CANARY = {"canary": "true"}
REST = {"canary": "false"}


async def _ack(log: FleetLog, instance: str, labels: dict[str, str], rollout: str | None, status: str) -> None:
    await log.publish_ack(Ack(service=SVC, instance=instance, labels=labels, version=1, rollout=rollout,
                              status=status, staged=True, at=datetime.now(UTC)))


async def _reaches(log: FleetLog, state: str, stage: int = 0) -> bool:
    rollout = (await log.head(SVC)).state.rollout
    return rollout is not None and rollout.state == state and rollout.stage >= stage


def _verify_cli(ledger: Ledger) -> tuple[int, dict[str, Any]]:
    env = {"NATS_URL": ledger.settings.nats_url, "LEDGER_STREAM": ledger.settings.stream,
           "LEDGER_SUBJECT_PREFIX": ledger.settings.subject_prefix, "NO_COLOR": "1"}
    out, err = io.StringIO(), io.StringIO()
    code = main(["verify", "--json"], environ=env, stdin=io.BytesIO(), stdout=out, stderr=err)
    return code, json.loads(out.getvalue())


async def test_replaying_the_ledger_reproduces_every_rollout_decision(ledger: Ledger) -> None:
    await ledger.append(SVC, Replace({"limit": 1}), actor="ops", reason="base")
    log = FleetLog(ledger.nc, ledger.settings)
    gate = {"bake_s": 0, "min_applied": 1.0}
    async with controller_loop(ledger):
        first = await start_rollout(ledger, SVC, {"limit": 2}, [{"labels": CANARY}, {"percent": 100}], gate)
        await _ack(log, "c1", CANARY, first, "applied")
        await _ack(log, "r1", REST, None, "applied")
        await wait_for(lambda: _reaches(log, "running", 1), what="the canary stage's gate promotes")
        await _ack(log, "r1", REST, first, "applied")
        await wait_for(lambda: _reaches(log, "completed"), what="the last stage's gate completes")
        second = await start_rollout(ledger, SVC, {"limit": 3}, [{"labels": CANARY}, {"percent": 100}], gate)
        await _ack(log, "c1", CANARY, second, "rejected")
        await wait_for(lambda: _reaches(log, "aborted"), what="a rejection aborts")

    audit = AuditReader(ledger.nc, ledger.settings)
    report = await audit.verify_fleet()
    assert report.ok, report.problems
    assert (report.services, report.decisions) == (1, 3)  # promote, complete, abort: each re-run
    history = (await audit.fleet_history(SVC))[SVC]
    decided = [(e.kind, e.detail["counts"]["applied"], e.detail["counts"]["rejected"])
               for e in history if e.actor == CONTROLLER]
    assert decided == [(FleetKind.STAGE_PROMOTED, 1, 0), (FleetKind.ROLLOUT_COMPLETED, 2, 0),
                       (FleetKind.ROLLOUT_ABORTED, 0, 1)]
    code, body = await asyncio.to_thread(_verify_cli, ledger)
    assert code == 0 and body["ok"] and body["fleet"]["decisions"] == 3 and body["fleet"]["events"] == 5

    # A decision the gate would not have taken (a controller bug, or a forged event with a valid
    # hash chain): promoted with nobody applied. Replay catches it and names it.
    third = await start_rollout(ledger, SVC, {"limit": 4}, [{"labels": CANARY}, {"percent": 100}],
                                {"bake_s": 60, "min_applied": 1.0})
    head = await log.head(SVC)
    rollout = head.state.active
    assert rollout is not None
    forged = {"counts": {"cohort": 1, "applied": 0, "rejected": 0, "pending": 1}, "elapsed_s": 1.0,
              "paused": False, "last_stage": False, "stage": 0, "why": "gate held"}
    await log.append(head, SVC, FleetKind.STAGE_PROMOTED, third, steps.promote(head.state, third, datetime.now(UTC)),
                     actor=CONTROLLER, reason="gate held", detail=forged)
    report = await audit.verify_fleet(SVC)
    assert report.decisions == 4
    assert report.problems == [f"{SVC} fleet #7: recorded stage_promoted, the gate says wait "
                               "(baking (1.0 of 60 s))"]
    code, body = await asyncio.to_thread(_verify_cli, ledger)
    assert code == 5 and not body["fleet"]["ok"] and body["problems"] == report.problems


async def test_an_altered_fleet_event_breaks_the_chain(ledger: Ledger) -> None:
    await ledger.append(SVC, Replace({"limit": 1}), actor="ops", reason="base")
    log = FleetLog(ledger.nc, ledger.settings)
    rid = await start_rollout(ledger, SVC, {"limit": 2}, [{"percent": 100}], {"bake_s": 60})
    head = await log.head(SVC)
    assert head.event is not None
    altered = {**head.event.to_dict(), "seq": 2, "prev_hash": head.event.hash, "reason": "rewritten history"}
    await ledger.nc.jetstream().publish(ledger.settings.rollout_subject(SVC), json.dumps(altered).encode())
    report = await AuditReader(ledger.nc, ledger.settings).verify_fleet()
    assert f"{SVC} fleet #2: hash does not recompute" in report.problems
    assert any(f"rollout_started {rid}: rollout {rid} was still active" in p for p in report.problems)


def _chain(*steps_: tuple[FleetKind, str, FleetState]) -> list[Any]:
    events, previous = [], None
    for kind, ref, state in steps_:
        previous = next_fleet_event(previous, SVC, kind, ref, state, actor="alice", reason="",
                                    occurred_at=datetime.now(UTC))
        events.append(previous)
    return events


def test_a_step_its_kind_does_not_allow_is_named() -> None:
    """Pure: verify_steps replays the transitions (a hash chain alone would accept these)."""
    now = datetime.now(UTC)
    started = steps.start(FleetState(), rollout_id="r1", change=ChangeSpec(op="patch", patch={"a": 1}),
                          stages=[StageSpec(percent=10), StageSpec(percent=50), StageSpec(percent=100)],
                          gate=GateSpec(), base_version=1, candidate={"a": 1}, now=now, actor="alice", reason="")
    once = steps.promote(started, "r1", now)
    twice = steps.promote(once, "r1", now)
    aborted = steps.abort(twice, "r1", "stop")
    assert verify_steps(_chain((FleetKind.ROLLOUT_STARTED, "r1", started), (FleetKind.STAGE_PROMOTED, "r1", once),
                               (FleetKind.STAGE_PROMOTED, "r1", twice),
                               (FleetKind.ROLLOUT_ABORTED, "r1", aborted))) == []
    skipped = verify_steps(_chain((FleetKind.ROLLOUT_STARTED, "r1", started),
                                  (FleetKind.STAGE_PROMOTED, "r1", twice)))
    assert skipped == [f"{SVC} fleet #2: stage_promoted r1: went from running at stage 0 to running at stage 2"]
    revived = verify_steps(_chain((FleetKind.ROLLOUT_STARTED, "r1", started), (FleetKind.ROLLOUT_ABORTED, "r1",
                                  steps.abort(started, "r1", "x")), (FleetKind.STAGE_PROMOTED, "r1", once)))
    assert revived == [f"{SVC} fleet #3: stage_promoted r1: that rollout was not active"]
    wider = started.with_rollout(started.rollout.model_copy(update={"gate": GateSpec(max_rejected=99)}))  # type: ignore[union-attr]
    assert verify_steps(_chain((FleetKind.ROLLOUT_STARTED, "r1", started), (FleetKind.ROLLOUT_PAUSED, "r1",
                                wider.with_rollout(wider.rollout.model_copy(update={"state": "paused"}))))) == [  # type: ignore[union-attr]
        f"{SVC} fleet #2: rollout_paused r1: the rollout's change, stages, gate or versions changed"]
    assert verify_steps(_chain((FleetKind.SCHEDULE_CANCELLED, "s1", FleetState()))) == [
        f"{SVC} fleet #1: schedule_cancelled s1: it was not pending, or more changed"]
