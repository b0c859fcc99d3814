"""Fleet events: rollouts and scheduled changes, on ``config.rollouts.<service>`` (pure).

Like config events they are hash-chained per service (``seq`` 1, 2, 3 … and ``prev_hash``),
carry the actor and the reason, and carry the whole fleet state of the service *after* the
step (``state``: the current or last rollout, and the pending scheduled changes), so the last
message of the subject is the state (clients and the controller need one direct get) and a
replay is a scan. ``detail`` says what was decided and on which numbers (gate counts, elapsed
bake time), so ``verify_decisions`` re-runs every controller decision.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

from .canonical import dumps, loads, sha256_of
from .errors import InvalidConfig
from .event import format_time
from .rollout import ChangeSpec, Counts, GateSpec, Rollout, StageSpec, decide

__all__ = [
    "FleetKind",
    "Scheduled",
    "FleetState",
    "FleetEvent",
    "next_fleet_event",
    "verify_chain",
    "verify_decisions",
    "verify_steps",
    "FleetReport",
    "CONTROLLER",
]

CONTROLLER = "rollout-controller"  # the actor of every automatic decision


class FleetKind(StrEnum):
    ROLLOUT_STARTED = "rollout_started"
    STAGE_PROMOTED = "stage_promoted"
    ROLLOUT_PAUSED = "rollout_paused"
    ROLLOUT_ABORTED = "rollout_aborted"
    ROLLOUT_COMPLETED = "rollout_completed"
    CHANGE_SCHEDULED = "change_scheduled"
    SCHEDULE_CANCELLED = "schedule_cancelled"
    SCHEDULE_APPLIED = "schedule_applied"
    SCHEDULE_FAILED = "schedule_failed"


class Scheduled(BaseModel):
    """A change stored now and applied by the controller at ``not_before``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    not_before: datetime
    what: Literal["write", "rollout"]
    change: ChangeSpec
    stages: list[StageSpec] = Field(default_factory=list)  # for a scheduled rollout
    gate: GateSpec | None = None
    actor: str
    reason: str = ""

    @field_serializer("not_before")
    def _ser(self, value: datetime) -> str:
        return format_time(value)


class FleetState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rollout: Rollout | None = None  # the active one, or the last one that ended
    scheduled: list[Scheduled] = Field(default_factory=list)  # pending, earliest first

    @property
    def active(self) -> Rollout | None:
        return self.rollout if self.rollout is not None and self.rollout.active else None

    def due(self, now: datetime) -> Scheduled | None:
        return next((s for s in self.scheduled if s.not_before <= now), None)

    def with_rollout(self, rollout: Rollout) -> FleetState:
        return self.model_copy(update={"rollout": rollout})

    def with_scheduled(self, items: Iterable[Scheduled]) -> FleetState:
        return self.model_copy(update={"scheduled": sorted(items, key=lambda s: s.not_before)})


class FleetEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_version: Literal[1] = Field(1, alias="schema")
    event_id: str
    service: str
    seq: int = Field(ge=1)
    kind: FleetKind
    ref: str  # the rollout or scheduled change this step is about
    detail: dict[str, Any] = Field(default_factory=dict)
    state: FleetState
    actor: str = Field(min_length=1, max_length=200)
    reason: str = Field("", max_length=2000)
    occurred_at: datetime
    prev_hash: str
    hash: str

    @field_serializer("occurred_at")
    def _ser_time(self, value: datetime) -> str:
        return format_time(value)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_bytes(self) -> bytes:
        return dumps(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> FleetEvent:
        try:
            return cls.model_validate(loads(data))
        except (ValueError, ValidationError) as exc:
            raise InvalidConfig("fleet_event.shape", f"not a fleet event: {str(exc)[:200]}") from None

    def hash_ok(self) -> bool:
        return _hash(self.to_dict()) == self.hash


def _hash(fields: dict[str, Any]) -> str:
    return sha256_of({k: v for k, v in fields.items() if k != "hash"})


def next_fleet_event(
    previous: FleetEvent | None,
    service: str,
    kind: FleetKind,
    ref: str,
    state: FleetState,
    *,
    actor: str,
    reason: str,
    occurred_at: datetime,
    detail: dict[str, Any] | None = None,
    event_id: str | None = None,
) -> FleetEvent:
    """The next event of ``service``'s fleet chain after ``previous`` (pure but for a fresh uuid)."""
    fields: dict[str, Any] = {
        "schema": 1,
        "event_id": event_id or str(uuid.uuid4()),
        "service": service,
        "seq": previous.seq + 1 if previous else 1,
        "kind": kind.value,
        "ref": ref,
        "detail": detail or {},
        "state": state.model_dump(mode="json"),
        "actor": actor,
        "reason": reason,
        "occurred_at": format_time(occurred_at.astimezone(UTC)),
        "prev_hash": previous.hash if previous else "",
    }
    fields["hash"] = _hash(fields)
    return FleetEvent.model_validate(fields)


def verify_chain(events: Iterable[FleetEvent]) -> list[str]:
    """Problems in one service's fleet chain (empty: sequence, links and hashes all hold)."""
    problems: list[str] = []
    previous: FleetEvent | None = None
    for event in events:
        where = f"{event.service} fleet #{event.seq}"
        if not event.hash_ok():
            problems.append(f"{where}: hash does not recompute")
        if event.seq != (previous.seq + 1 if previous else 1):
            problems.append(f"{where}: follows #{previous.seq if previous else 0}")
        if event.prev_hash != (previous.hash if previous else ""):
            problems.append(f"{where}: prev_hash does not link to the previous event")
        previous = event
    return problems


_DECIDED = {
    FleetKind.STAGE_PROMOTED: "promote",
    FleetKind.ROLLOUT_COMPLETED: "complete",
    FleetKind.ROLLOUT_ABORTED: "abort",
}


def verify_decisions(events: Iterable[FleetEvent]) -> list[str]:
    """Re-run the gate on the numbers every automatic decision recorded; list disagreements.

    An abort that records ``write_failed`` is a gate that held (``complete``) whose ledger write
    was then refused (the base version moved): the gate must say ``complete`` for it."""
    problems: list[str] = []
    gates: dict[str, GateSpec] = {}
    for event in events:
        rollout = event.state.rollout
        if rollout is not None:
            gates.setdefault(rollout.id, rollout.gate)
        if event.actor != CONTROLLER or event.kind not in _DECIDED or "counts" not in event.detail:
            continue
        where = f"{event.service} fleet #{event.seq}"
        d = event.detail
        try:
            counts = Counts(**{k: int(d["counts"][k]) for k in ("cohort", "applied", "rejected")})
            again = decide(gates[event.ref], counts, elapsed_s=float(d["elapsed_s"]), paused=bool(d["paused"]),
                           last_stage=bool(d["last_stage"]))
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"{where}: the recorded decision cannot be re-run ({type(exc).__name__}: {exc})")
            continue
        recorded = "complete" if d.get("write_failed") else _DECIDED[event.kind]
        if again.action != recorded:
            problems.append(f"{where}: recorded {event.kind.value}, the gate says {again.action} ({again.why})")
    return problems


def _transition(kind: FleetKind, ref: str, before: FleetState, after: FleetState) -> str | None:
    """What is wrong with going from ``before`` to ``after`` by a ``kind`` step about ``ref``."""
    old, new = before.rollout, after.rollout
    pending = {s.id for s in before.scheduled}
    now_pending = {s.id for s in after.scheduled}
    if kind is FleetKind.CHANGE_SCHEDULED:
        return None if now_pending == pending | {ref} and ref not in pending else "the schedule did not gain it"
    if kind in (FleetKind.SCHEDULE_CANCELLED, FleetKind.SCHEDULE_APPLIED, FleetKind.SCHEDULE_FAILED):
        return None if ref in pending and now_pending == pending - {ref} else "it was not pending, or more changed"
    if new is None or new.id != ref:
        return "the state does not hold that rollout"
    if kind is FleetKind.ROLLOUT_STARTED:
        if before.active is not None:
            return f"rollout {before.active.id} was still active"
        return None if (new.state, new.stage) == ("running", 0) else "a rollout starts running at stage 0"
    if old is None or old.id != ref or not old.active:
        return "that rollout was not active"
    expected = {
        FleetKind.STAGE_PROMOTED: ("running", old.stage + 1),
        FleetKind.ROLLOUT_PAUSED: ("paused", old.stage),
        FleetKind.ROLLOUT_ABORTED: ("aborted", old.stage),
        FleetKind.ROLLOUT_COMPLETED: ("completed", old.stage),
    }[kind]
    if (new.state, new.stage) != expected:
        return f"went from {old.state} at stage {old.stage} to {new.state} at stage {new.stage}"
    if kind is FleetKind.STAGE_PROMOTED and new.stage > new.last_stage:
        return "promoted past the last stage"
    if new.model_dump(exclude={"state", "stage", "stage_at", "outcome", "result_version"}) != old.model_dump(
        exclude={"state", "stage", "stage_at", "outcome", "result_version"}
    ):
        return "the rollout's change, stages, gate or versions changed"
    return None


def verify_steps(events: Iterable[FleetEvent]) -> list[str]:
    """Replay one service's fleet chain step by step: each event's state must be the one its
    kind allows from the state before it (a promotion moves one stage, a finished rollout never
    moves again, a schedule is applied or cancelled only while pending, ...)."""
    problems: list[str] = []
    before = FleetState()
    for event in events:
        wrong = _transition(event.kind, event.ref, before, event.state)
        if wrong is not None:
            problems.append(f"{event.service} fleet #{event.seq}: {event.kind.value} {event.ref}: {wrong}")
        before = event.state
    return problems


@dataclass
class FleetReport:
    """Result of verifying fleet chains: links and hashes, step transitions, and every automatic
    decision re-run on the numbers it recorded (``decisions``)."""

    services: int = 0
    events: int = 0
    decisions: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, events: list[FleetEvent]) -> None:
        """Verify one service's chain (oldest first) into this report."""
        self.services += 1
        self.events += len(events)
        self.decisions += sum(1 for e in events if e.actor == CONTROLLER and "counts" in e.detail)
        self.problems += verify_chain(events) + verify_steps(events) + verify_decisions(events)


def gate_detail(rollout: Rollout, counts: Counts, elapsed_s: float, why: str) -> dict[str, Any]:
    """What an automatic decision records: enough for ``verify_decisions`` to re-run it."""
    return {
        "counts": counts.as_dict(),
        "elapsed_s": round(elapsed_s, 3),
        "paused": rollout.state == "paused",
        "last_stage": rollout.stage == rollout.last_stage,
        "stage": rollout.stage,
        "why": why,
    }
