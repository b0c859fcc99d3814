"""Fleet steps (pure): the state after starting, promoting, pausing, aborting or completing a
rollout, and after scheduling, cancelling or applying a scheduled change.

Each returns the new ``FleetState``; ``FleetConflict`` (409) when the current state does not
allow the step (one active rollout per service, a finished rollout cannot move, …).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .errors import FleetConflict, NotFound
from .fleet_events import FleetState, Scheduled
from .rollout import ChangeSpec, GateSpec, Rollout, StageSpec

__all__ = ["start", "promote", "pause", "abort", "complete", "schedule", "unschedule", "find"]


def find(state: FleetState, rollout_id: str) -> Rollout:
    rollout = state.rollout
    if rollout is None or rollout.id != rollout_id:
        raise NotFound(f"no rollout {rollout_id!r} is the current or last one of this service",
                       details={"rule": "rollout.unknown", "rollout": rollout_id})
    return rollout


def _active(state: FleetState, rollout_id: str) -> Rollout:
    rollout = find(state, rollout_id)
    if not rollout.active:
        raise FleetConflict("rollout.finished", f"rollout {rollout_id} is {rollout.state}", rollout=rollout_id)
    return rollout


def start(
    state: FleetState,
    *,
    rollout_id: str,
    change: ChangeSpec,
    stages: list[StageSpec],
    gate: GateSpec,
    base_version: int,
    candidate: dict[str, Any],
    now: datetime,
    actor: str,
    reason: str,
) -> FleetState:
    active = state.active
    if active is not None:
        raise FleetConflict(
            "rollout.active", f"rollout {active.id} is {active.state} on this service; abort or finish it first",
            rollout=active.id,
        )
    rollout = Rollout(
        id=rollout_id, state="running", stage=0, stage_at=now, base_version=base_version,
        candidate_version=base_version + 1, candidate=candidate, change=change, stages=stages, gate=gate,
        started_at=now, actor=actor, reason=reason,
    )
    return state.with_rollout(rollout)


def promote(state: FleetState, rollout_id: str, now: datetime, *, expected_stage: int | None = None) -> FleetState:
    """The next stage (running again if paused). ``expected_stage`` fences the decision."""
    rollout = _active(state, rollout_id)
    if expected_stage is not None and rollout.stage != expected_stage:
        raise FleetConflict("rollout.moved", f"rollout {rollout_id} is at stage {rollout.stage}", rollout=rollout_id)
    if rollout.stage >= rollout.last_stage:
        raise FleetConflict(
            "rollout.last_stage",
            f"rollout {rollout_id} is in its last stage; it completes when the gate holds",
            rollout=rollout_id,
        )
    return state.with_rollout(rollout.model_copy(update={"stage": rollout.stage + 1, "stage_at": now, "state": "running"}))


def pause(state: FleetState, rollout_id: str) -> FleetState:
    rollout = _active(state, rollout_id)
    if rollout.state == "paused":
        raise FleetConflict("rollout.paused", f"rollout {rollout_id} is already paused", rollout=rollout_id)
    return state.with_rollout(rollout.model_copy(update={"state": "paused"}))


def abort(state: FleetState, rollout_id: str, why: str) -> FleetState:
    rollout = _active(state, rollout_id)
    return state.with_rollout(rollout.model_copy(update={"state": "aborted", "outcome": why}))


def complete(state: FleetState, rollout_id: str, result_version: int, why: str) -> FleetState:
    rollout = _active(state, rollout_id)
    return state.with_rollout(
        rollout.model_copy(update={"state": "completed", "result_version": result_version, "outcome": why})
    )


def schedule(state: FleetState, item: Scheduled, now: datetime) -> FleetState:
    if item.not_before <= now:
        raise FleetConflict("schedule.past", "not_before must be in the future", not_before=item.not_before.isoformat())
    if len(state.scheduled) >= 100:
        raise FleetConflict("schedule.full", "at most 100 pending scheduled changes per service")
    return state.with_scheduled([*state.scheduled, item])


def unschedule(state: FleetState, schedule_id: str) -> tuple[FleetState, Scheduled]:
    """Remove a pending scheduled change (cancelled, applied or failed)."""
    item = next((s for s in state.scheduled if s.id == schedule_id), None)
    if item is None:
        raise NotFound(f"no pending scheduled change {schedule_id!r}",
                       details={"rule": "schedule.unknown", "schedule": schedule_id})
    return state.with_scheduled(s for s in state.scheduled if s.id != schedule_id), item
