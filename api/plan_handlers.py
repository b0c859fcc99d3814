"""``?dry_run=true`` on every write: answer what the write would do, append nothing.

The plan is decided by the same code as the write (``ledger.plan``), from the ledger's current
state, and reported with a key-level diff. A plan that the write would refuse is still a 200:
``ok`` is false and ``schema_errors`` / ``policy_errors`` / ``conflict`` say why.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ledger.event import Change
from ledger.plan import Plan, plan

from .diff import diff
from .errors import BadRequest
from .keys import LEDGER
from .params import parse_if_match
from .views import dumps

__all__ = ["dry_run_requested", "plan_view", "plan_response", "if_match_version"]

_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no", ""})


def dry_run_requested(request: web.Request) -> bool:
    value = request.query.get("dry_run")
    if value is None:
        return False
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadRequest("query.dry_run", "dry_run must be true or false")


def plan_view(p: Plan) -> dict[str, Any]:
    return {
        "dry_run": True,
        "service": p.service,
        "kind": p.kind,
        "ok": p.ok,
        "current_version": p.current_version,
        "version": p.version,
        "diff": diff(p.before, p.after),
        "schema_version": p.schema_version,
        "schema_errors": p.schema_errors,
        "policy_errors": p.policy_errors,
        "conflict": p.conflict,
        "config": p.after,
    }


async def if_match_version(request: web.Request) -> int | None:
    """``If-Match`` as a version number (``*``: the current version, which always matches)."""
    value = parse_if_match(request.headers.get("If-Match"))
    if value == "*":
        entry = await request.app[LEDGER].current_entry(request.match_info["service"])
        return entry.event.version if entry and entry.event.config is not None else 0
    return value if isinstance(value, int) else None


async def plan_response(request: web.Request, service: str, change: Change) -> web.Response:
    """200 with the plan of ``change`` to ``service``; nothing is appended."""
    result = await plan(request.app[LEDGER], service, change, if_match=await if_match_version(request))
    return web.Response(body=dumps(plan_view(result)), content_type="application/json")
