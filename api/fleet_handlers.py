"""The fleet over HTTP: the convergence view, acknowledgements from HTTP-only clients, staged
rollouts and scheduled changes (``/api/v1/config/{service}/instances|rollouts|schedules``).

State lives on the stream (``ledger.fleet_log``); every step an admin asks for is a fleet event
CAS-appended on the state it was checked against (409 ``rollout.concurrent`` if it moved).
``rollout_guard`` is the hook of the plain write path: 409 naming the active rollout.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from ledger import fleet_steps as steps
from ledger.acks import Ack, Summary, live, state_of, summarize, validate_instance_id
from ledger.errors import FleetConflict, InvalidConfig
from ledger.fleet_events import FleetEvent, FleetKind, Scheduled
from ledger.fleet_log import FleetLog, candidate_of
from ledger.heads import Heads
from ledger.ledger import Guard
from ledger.rollout import ChangeSpec, Rollout, RolloutSpec, count, runs_candidate

from .body import read_json
from .keys import FOLLOWER, LEDGER, METRICS, PRINCIPAL, SETTINGS
from .params import service_param
from .views import dumps

__all__ = ["rollout_guard", "assess", "instances", "observe_fleet", "report_instance", "start_rollout", "get_rollout", "rollout_action",
           "schedule_change", "cancel_schedule", "AckBody", "InstancesView", "RolloutView", "ScheduleBody",
           "ScheduleView", "INSTANCE_TTL_S"]

INSTANCE_TTL_S = 30.0


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(body), status=status, content_type="application/json")


def _log(request: web.Request) -> FleetLog:
    led = request.app[LEDGER]
    return FleetLog(led.nc, led.settings)


def _parse(model: type[BaseModel], body: Any, rule: str) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        raise InvalidConfig(rule, f"{first['msg']}", path=path) from None


def _ttl(request: web.Request) -> float:
    raw = request.query.get("ttl_s")
    if raw is None:
        return INSTANCE_TTL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1
    if not 0 < value <= 86400:
        raise InvalidConfig("query.ttl_s", "ttl_s must be a number of seconds in (0, 86400]", path="ttl_s")
    return value


# --- models (the routes' contract) ---------------------------------------------------------------


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # JSON types as documented (0 is not false)

    labels: dict[str, str] = Field(default_factory=dict)
    version: int | None = Field(None, ge=0)
    rollout: str | None = None
    status: Literal["applied", "rejected"]
    error: str | None = None
    staged: bool = False


class InstancesQuery(BaseModel):
    ttl_s: float | None = Field(None, description="seconds of silence after which an instance is dead (30)")


class InstancesView(BaseModel):
    service: str
    summary: dict[str, Any]
    instances: list[dict[str, Any]]


class RolloutView(BaseModel):
    id: str
    state: str
    stage: int | None = None
    stages: list[dict[str, Any]] = Field(default_factory=list)


class ScheduleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    change: ChangeSpec
    reason: str = Field("", max_length=2000)
    not_before: AwareDatetime


class ScheduleView(BaseModel):
    id: str
    not_before: str
    state: str


# --- the write-path hook -----------------------------------------------------------------------


def rollout_guard(request: web.Request, service: str) -> Guard:
    """409 while a rollout of ``service`` is active (``?force=true`` lets an admin through),
    checked on the heads the write is decided on (``ledger.heads``): a rollout that starts
    between the check and the append makes the append decide again, never slip through."""
    forced = request.query.get("force") == "true" and request[PRINCIPAL].role == "admin"

    def guard(heads: Heads) -> None:
        if forced or heads.rollout is None:
            return
        active = FleetEvent.from_bytes(heads.rollout.data).state.active
        if active is None:
            return
        raise FleetConflict(
            "rollout.active", f"rollout {active.id} of {service!r} is {active.state}: promote, abort or wait for it "
            "(an admin may pass force=true)", rollout=active.id,
        )

    return guard


# --- the convergence view ----------------------------------------------------------------------


def assess(service: str, acks: list[Ack], base: int | None, rollout: Rollout | None) -> tuple[Summary, list[dict[str, Any]]]:
    """The convergence of ``service``'s live instances (pure): the summary and one row each."""
    rollout_id = rollout.id if rollout else None
    wants = {a.instance for a in acks if a.staged and runs_candidate(rollout, service, a.instance, a.labels)}
    rows = []
    for ack in acks:
        on_candidate = ack.instance in wants
        dumped = ack.model_dump(mode="json", exclude={"service"})
        rows.append({**{k: v for k, v in dumped.items() if k != "at"}, "last_seen": dumped["at"],
                     "state": state_of(ack, base, rollout_id, on_candidate),
                     "target": "candidate" if on_candidate else "base"})
    return summarize(acks, base, rollout_id, wants), rows


async def instances(request: web.Request) -> web.Response:
    service = service_param(request.match_info["service"])
    log = _log(request)
    acks = live(await log.acks(service), datetime.now(UTC), _ttl(request))
    head = await log.head(service)
    current = await request.app[LEDGER].current(service)
    summary, rows = assess(service, acks, current.version if current else None, head.state.active)
    return _json({"service": service, "summary": summary.model_dump(), "instances": rows})


async def observe_fleet(app: web.Application) -> None:
    """Set ``config_api_fleet_instances`` for every service with live instances: one read of the
    acks stream and one of the fleet heads; the target versions from the API's stream follower."""
    led = app[LEDGER]
    log = FleetLog(led.nc, led.settings)
    by_service: dict[str, list[Ack]] = defaultdict(list)
    for ack in live(await log.acks(), datetime.now(UTC), INSTANCE_TTL_S):
        by_service[ack.service].append(ack)
    heads = await log.heads() if by_service else {}
    counts: dict[str, Summary] = {}
    for service, acks in by_service.items():
        cached, head = app[FOLLOWER].get(service), heads.get(service)
        summary, _ = assess(service, acks, cached.version.version if cached else None,
                            head.state.active if head else None)
        counts[service] = summary
    gauge = app[METRICS].fleet_instances
    gauge.clear()  # a service whose instances all died leaves the metric
    for service, summary in sorted(counts.items()):
        for state in ("applied", "rejected", "behind"):
            gauge.labels(service, state).set(getattr(summary, state))


async def report_instance(request: web.Request) -> web.Response:
    """An acknowledgement from a client without NATS (the API publishes it for it)."""
    service = service_param(request.match_info["service"])
    instance = validate_instance_id(request.match_info["instance"])
    body = _parse(AckBody, await read_json(request, limit=65536), "ack.shape")
    ack = _parse(Ack, {**body.model_dump(), "service": service, "instance": instance, "at": datetime.now(UTC)},
                 "ack.shape")
    await _log(request).publish_ack(ack)
    return _json({"status": "recorded", "service": service, "instance": instance}, 202)


# --- rollouts ----------------------------------------------------------------------------------


def _view(service: str, rollout: Any, acks: list[Ack]) -> dict[str, Any]:
    stages = []
    for index, stage in enumerate(rollout.stages):
        counts = count(rollout, service, acks, up_to_stage=index)
        stages.append({**stage.model_dump(exclude_none=True), "promoted": index <= rollout.stage,
                       **counts.as_dict()})
    body = rollout.model_dump(mode="json", exclude={"candidate", "stages"})
    return {**body, "stages": stages, "candidate": rollout.candidate}


async def start_rollout(request: web.Request) -> web.Response:
    service = service_param(request.match_info["service"])
    spec: RolloutSpec = _parse(RolloutSpec, await read_json(request, limit=request.app[SETTINGS].max_body),
                               "rollout.shape")
    actor = request[PRINCIPAL].identity
    log = _log(request)
    head = await log.head(service)
    rollout_id = uuid.uuid4().hex[:12]
    now = datetime.now(UTC)
    if spec.not_before is not None:
        item = Scheduled(id=rollout_id, not_before=spec.not_before, what="rollout", change=spec.change,
                         stages=spec.stages, gate=spec.gate, actor=actor, reason=spec.reason)
        state = steps.schedule(head.state, item, now)
        await log.append(head, service, FleetKind.CHANGE_SCHEDULED, rollout_id, state, actor=actor, reason=spec.reason)
        return _json({"id": rollout_id, "state": "scheduled", "not_before": item.model_dump()["not_before"]}, 201)
    base, candidate = await candidate_of(request.app[LEDGER], service, spec.change.to_change())
    state = steps.start(head.state, rollout_id=rollout_id, change=spec.change, stages=spec.stages, gate=spec.gate,
                        base_version=base, candidate=candidate, now=now, actor=actor, reason=spec.reason)
    await log.append(head, service, FleetKind.ROLLOUT_STARTED, rollout_id, state, actor=actor, reason=spec.reason)
    return _json({"id": rollout_id, "state": "running", "stage": 0, "base_version": base}, 201)


async def get_rollout(request: web.Request) -> web.Response:
    service = service_param(request.match_info["service"])
    log = _log(request)
    head = await log.head(service)
    rollout = steps.find(head.state, request.match_info["rollout"])
    acks = live(await log.acks(service), datetime.now(UTC), _ttl(request))
    return _json(_view(service, rollout, acks))


async def rollout_action(request: web.Request) -> web.Response:
    """``promote`` / ``pause`` / ``abort`` by an admin (reason: ``X-Change-Reason`` or ``?reason=``)."""
    service = service_param(request.match_info["service"])
    action, rollout_id = request.path.rsplit("/", 1)[-1], request.match_info["rollout"]
    reason = (request.headers.get("X-Change-Reason") or request.query.get("reason") or f"manual {action}")[:2000]
    log = _log(request)
    head = await log.head(service)
    now = datetime.now(UTC)
    if action == "promote":
        state, kind = steps.promote(head.state, rollout_id, now), FleetKind.STAGE_PROMOTED
    elif action == "pause":
        state, kind = steps.pause(head.state, rollout_id), FleetKind.ROLLOUT_PAUSED
    elif action == "abort":
        state, kind = steps.abort(head.state, rollout_id, reason), FleetKind.ROLLOUT_ABORTED
    else:
        raise web.HTTPNotFound()
    await log.append(head, service, kind, rollout_id, state, actor=request[PRINCIPAL].identity, reason=reason)
    rollout = state.rollout
    assert rollout is not None
    return _json({"id": rollout_id, "state": rollout.state, "stage": rollout.stage})


# --- scheduled writes --------------------------------------------------------------------------


async def schedule_change(request: web.Request) -> web.Response:
    service = service_param(request.match_info["service"])
    body: ScheduleBody = _parse(ScheduleBody, await read_json(request, limit=request.app[SETTINGS].max_body),
                                "schedule.shape")
    await candidate_of(request.app[LEDGER], service, body.change.to_change())  # valid now, or 4xx now
    log = _log(request)
    head = await log.head(service)
    item = Scheduled(id=uuid.uuid4().hex[:12], not_before=body.not_before, what="write", change=body.change,
                     actor=request[PRINCIPAL].identity, reason=body.reason)
    state = steps.schedule(head.state, item, datetime.now(UTC))
    await log.append(head, service, FleetKind.CHANGE_SCHEDULED, item.id, state, actor=item.actor, reason=item.reason)
    return _json({"id": item.id, "not_before": item.model_dump()["not_before"], "state": "scheduled"}, 201)


async def cancel_schedule(request: web.Request) -> web.Response:
    service = service_param(request.match_info["service"])
    log = _log(request)
    head = await log.head(service)
    state, item = steps.unschedule(head.state, request.match_info["schedule"])
    reason = (request.headers.get("X-Change-Reason") or request.query.get("reason") or "cancelled")[:2000]
    await log.append(head, service, FleetKind.SCHEDULE_CANCELLED, item.id, state,
                     actor=request[PRINCIPAL].identity, reason=reason)
    return _json({"id": item.id, "state": "cancelled"})

