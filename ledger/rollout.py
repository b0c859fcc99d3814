"""Staged rollouts, pure: what a rollout asks for, who is in which stage, what the gate decides.

No I/O and no clock: the controller passes ``now`` and the acknowledgements in, and records in
each decision event the numbers it decided on, so a replay re-runs ``decide`` on them
(``ledger.fleet_events.verify_decisions``).

A stage is a label selector and/or a percentage of instances. The percentage is taken by a
stable hash of ``<service>/<instance id>`` (``bucket``: the same instance always falls in the same
place, so a 25 % stage is a superset of a 10 % one). Stages are cumulative: an instance belongs
to the first stage that selects it, and runs the candidate once that stage is promoted; the last
stage of a rollout normally selects everyone (``{"percent": 100}``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from .event import Change, Patch, Replace

__all__ = [
    "StageSpec",
    "GateSpec",
    "ChangeSpec",
    "RolloutSpec",
    "Rollout",
    "Counts",
    "Decision",
    "bucket",
    "stage_of",
    "runs_candidate",
    "count",
    "decide",
    "ACTIVE",
]

ACTIVE = ("running", "paused")
MAX_STAGES = 10


class StageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: dict[str, str] = Field(default_factory=dict, max_length=16)
    percent: float | None = Field(None, gt=0, le=100)

    @model_validator(mode="after")
    def _selects(self) -> StageSpec:
        if not self.labels and self.percent is None:
            raise ValueError("a stage needs labels and/or percent")
        return self

    def selects(self, service: str, instance: str, labels: Mapping[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.labels.items()):
            return False
        return self.percent is None or bucket(service, instance) < self.percent


class GateSpec(BaseModel):
    """Promote when the stage baked ``bake_s`` and ``min_applied`` of its cohort applied;
    abort as soon as more than ``max_rejected`` instances rejected the candidate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bake_s: float = Field(default=30.0, ge=0, le=7 * 86400)
    min_applied: float = Field(default=0.9, ge=0, le=1)
    max_rejected: int = Field(default=0, ge=0)


class ChangeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Literal["replace", "patch"]
    config: dict[str, Any] | None = None
    patch: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _body(self) -> ChangeSpec:
        if self.op == "replace" and (self.config is None or self.patch is not None):
            raise ValueError('op "replace" takes "config" (a JSON object) and no "patch"')
        if self.op == "patch" and (self.patch is None or self.config is not None):
            raise ValueError('op "patch" takes "patch" (a JSON object) and no "config"')
        return self

    def to_change(self) -> Change:
        if self.op == "replace":
            assert self.config is not None
            return Replace(self.config)
        assert self.patch is not None
        return Patch(self.patch)


class RolloutSpec(BaseModel):
    """What ``POST .../rollouts`` asks for (the actor is stamped by the server)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    change: ChangeSpec
    reason: str = Field("", max_length=2000)
    stages: list[StageSpec] = Field(min_length=1, max_length=MAX_STAGES)
    gate: GateSpec = Field(default_factory=GateSpec)
    not_before: AwareDatetime | None = None  # RFC 3339 with a zone: a naive instant is ambiguous


class Rollout(BaseModel):
    """A rollout as the ledger knows it (inside every fleet event's ``state``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    state: Literal["running", "paused", "aborted", "completed"]
    stage: int = Field(ge=0)  # the highest promoted stage (0 from the start)
    stage_at: datetime  # when that stage was promoted (the bake starts)
    base_version: int = Field(ge=0)
    candidate_version: int = Field(ge=1)
    candidate: dict[str, Any]
    change: ChangeSpec
    stages: list[StageSpec]
    gate: GateSpec
    started_at: datetime
    actor: str
    reason: str = ""
    result_version: int | None = None  # the ledger version written on completion
    outcome: str = ""  # why it was aborted or completed

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def last_stage(self) -> int:
        return len(self.stages) - 1


def bucket(service: str, instance: str) -> float:
    """A stable place in [0, 100) for an instance of a service."""
    digest = hashlib.sha256(f"{service}/{instance}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def stage_of(stages: Iterable[StageSpec], service: str, instance: str, labels: Mapping[str, str]) -> int | None:
    """The first stage that selects the instance (None: no stage does)."""
    for index, stage in enumerate(stages):
        if stage.selects(service, instance, labels):
            return index
    return None


def runs_candidate(rollout: Rollout | None, service: str, instance: str, labels: Mapping[str, str]) -> bool:
    """Should this instance run the rollout's candidate now?"""
    if rollout is None or not rollout.active:
        return False
    index = stage_of(rollout.stages, service, instance, labels)
    return index is not None and index <= rollout.stage


class AckLike:
    """What ``count`` reads from an acknowledgement (``ledger.acks.Ack`` has these fields)."""

    instance: str
    labels: Mapping[str, str]
    rollout: str | None
    status: str
    staged: bool


@dataclass(frozen=True)
class Counts:
    """The promoted cohort's acknowledgements for the candidate."""

    cohort: int = 0
    applied: int = 0
    rejected: int = 0

    @property
    def pending(self) -> int:
        return self.cohort - self.applied - self.rejected

    def as_dict(self) -> dict[str, int]:
        return {"cohort": self.cohort, "applied": self.applied, "rejected": self.rejected, "pending": self.pending}


def count(rollout: Rollout, service: str, acks: Iterable[Any], *, up_to_stage: int | None = None) -> Counts:
    """Count the live instances in stages ``<= up_to_stage`` (default: the promoted stage).

    Only instances that follow rollouts (``staged``) are in a cohort: an HTTP-only client cannot
    take a candidate and must not hold a gate. A rejection counts wherever it comes from.
    """
    limit = rollout.stage if up_to_stage is None else up_to_stage
    cohort = applied = rejected = 0
    for ack in acks:
        if ack.rollout == rollout.id and ack.status == "rejected":
            rejected += 1
            cohort += 1
            continue
        if not ack.staged:
            continue
        index = stage_of(rollout.stages, service, ack.instance, ack.labels)
        if index is None or index > limit:
            continue
        cohort += 1
        if ack.rollout == rollout.id and ack.status == "applied":
            applied += 1
    return Counts(cohort, applied, rejected)


@dataclass(frozen=True)
class Decision:
    action: Literal["wait", "promote", "complete", "abort"]
    why: str


def decide(
    gate: GateSpec, counts: Counts, *, elapsed_s: float, paused: bool, last_stage: bool
) -> Decision:
    """The gate, on the numbers the controller recorded (pure: a replay gets the same answer)."""
    if counts.rejected > gate.max_rejected:
        return Decision("abort", f"{counts.rejected} instance(s) rejected the candidate (max_rejected {gate.max_rejected})")
    if paused:
        return Decision("wait", "paused")
    if elapsed_s < gate.bake_s:
        return Decision("wait", f"baking ({elapsed_s:.1f} of {gate.bake_s:g} s)")
    fraction = counts.applied / counts.cohort if counts.cohort else 1.0
    if fraction < gate.min_applied:
        return Decision("wait", f"{counts.applied}/{counts.cohort} applied (min_applied {gate.min_applied:g})")
    held = f"gate held: {counts.applied}/{counts.cohort} applied after {elapsed_s:.1f} s"
    return Decision("complete" if last_stage else "promote", held)
