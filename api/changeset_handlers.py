"""``/api/v1/changesets``: several services changed atomically (all stored or none).

``POST`` takes ``{"reason", "changes": [{"service", "op", "config"|"patch"|"to_version",
"if_match"?}]}``; a conflict (409) or a rule violation (422) of any member refuses the whole set
and names the member (``details.member``, ``details.service``). ``?dry_run=true`` plans every
member. ``GET /{id}`` lists the set's events; ``POST /{id}/rollback`` undoes a set as one new
atomic set (each service must still be at the version the set gave it).
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from ledger import NotFound
from ledger.changeset import CommittedSet, Member, commit
from ledger.errors import InvalidConfig
from ledger.event import Change, Delete, Patch, Replace, Rollback
from ledger.plan import plan_set

from .body import read_json
from .config_handlers import _idempotency_key, _reason
from .fleet_handlers import rollout_guard
from .keys import FEED, LEDGER, PRINCIPAL, READER, REPO, SETTINGS
from .params import service_param
from .plan_handlers import dry_run_requested, plan_view
from .safety_models import ChangeSetIn, ChangeSetMemberIn, ChangeSetRollbackIn
from .views import dumps, version_view

__all__ = ["post_changeset", "get_changeset", "rollback_changeset"]

_KEY_NAMESPACE = uuid.UUID("3c0f4d3e-2b7a-4f0e-8d51-0c1c0de5e7a1")


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(body), status=status, content_type="application/json")


def _parse(model: type[Any], body: Any) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = "/".join(str(p) for p in first["loc"])
        raise InvalidConfig("changeset.shape", f"{first['msg']}", path=loc[:200]) from None


def _member(i: int, m: ChangeSetMemberIn) -> Member:
    service = service_param(m.service)
    given = {k for k in ("config", "patch", "to_version") if getattr(m, k) is not None}
    needs = {"replace": {"config"}, "patch": {"patch"}, "rollback": {"to_version"}, "delete": set()}[m.op]
    if given != needs:
        want = " and ".join(sorted(needs)) or "nothing but service and op"
        raise InvalidConfig("changeset.shape", f"member {i} ({m.op}) takes {want}", path=f"changes/{i}")
    change: Change
    if m.op == "replace":
        change = Replace(m.config or {})
    elif m.op == "patch":
        change = Patch(m.patch or {})
    elif m.op == "rollback":
        change = Rollback(to_version=m.to_version)
    else:
        change = Delete()
    return Member(service, change, m.if_match)


def _changeset_id(request: web.Request) -> str:
    key = _idempotency_key(request)
    return str(uuid.uuid5(_KEY_NAMESPACE, key)) if key else str(uuid.uuid4())


async def _committed(request: web.Request, done: CommittedSet) -> web.Response:
    # Acknowledged by the stream (all or nothing); reads on this process see every member.
    reader = request.app[READER]
    for a in done.members:
        reader.note_ack(a.event.service, a.seq)
    projected = request.app[FEED].seq >= max(a.seq for a in done.members)
    return _json(
        {
            "status": "success",
            "changeset_id": done.changeset_id,
            "duplicate": done.duplicate,
            "projected": projected,
            "members": [
                {"service": a.event.service, "version": a.event.version, "seq": a.seq,
                 "kind": a.event.kind.value, "event_id": a.event.event_id, "hash": a.event.hash}
                for a in done.members
            ],
        },
    )


async def _run(request: web.Request, members: list[Member], reason: str) -> web.Response:
    ledger = request.app[LEDGER]
    if dry_run_requested(request):
        plans = await plan_set(ledger, members)
        return _json({"dry_run": True, "ok": all(p.ok for p in plans), "members": [plan_view(p) for p in plans]})
    done = await commit(
        ledger, members, actor=request[PRINCIPAL].identity, reason=reason, changeset_id=_changeset_id(request),
        guard=lambda service: rollout_guard(request, service),  # 409 for a member under a rollout
    )
    return await _committed(request, done)


async def post_changeset(request: web.Request) -> web.Response:
    body = await read_json(request, limit=request.app[SETTINGS].max_body)
    parsed: ChangeSetIn = _parse(ChangeSetIn, body)
    members = [_member(i, m) for i, m in enumerate(parsed.changes)]
    reason = _reason(request, parsed.reason) if not dry_run_requested(request) else ""
    return await _run(request, members, reason)


def _changeset_param(request: web.Request) -> str:
    raw = request.match_info["changeset_id"]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise InvalidConfig("changeset.id", "a change set id is a UUID", path="changeset_id") from None


async def get_changeset(request: web.Request) -> web.Response:
    cs = _changeset_param(request)
    rows = await request.app[REPO].changeset(cs)
    if not rows:
        raise NotFound(f"change set {cs} not found (or not projected yet)", details={"changeset_id": cs})
    return _json({"changeset_id": cs, "members": [{"service": v.service, **version_view(v)} for v in rows]})


async def rollback_changeset(request: web.Request) -> web.Response:
    """Undo a set: each member back to the version before it, as one new atomic set."""
    cs = _changeset_param(request)
    raw = await read_json(request, limit=request.app[SETTINGS].max_body) if request.can_read_body else {}
    parsed: ChangeSetRollbackIn = _parse(ChangeSetRollbackIn, raw)
    repo = request.app[REPO]
    rows = await repo.changeset(cs)
    if not rows:
        raise NotFound(f"change set {cs} not found (or not projected yet)", details={"changeset_id": cs})
    members: list[Member] = []
    for v in rows:
        before = await repo.version(v.service, v.version - 1) if v.version > 1 else None
        change: Change = Delete() if before is None or before.deleted else Rollback(to_version=before.version)
        members.append(Member(v.service, change, if_match=v.version))
    reason = _reason(request, parsed.reason) if not dry_run_requested(request) else ""
    return await _run(request, members, reason)
