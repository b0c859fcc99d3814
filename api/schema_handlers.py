"""``/api/v1/schema/{service}``: a service's JSON Schema, set and removed by ledger events.

PUT refuses (422) a schema that is not valid draft 2020-12 (``schema.invalid``) or that the
service's current config fails (``schema``, with every failing pointer). GET answers the schema
in force, or as of ``?at=`` / ``?version=``, straight from the stream.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ledger import NotFound
from ledger.errors import InvalidConfig
from ledger.event import Delete, Replace
from ledger.ledger import Entry
from ledger.plan import plan_change
from ledger.schema import check_schema, violations
from ledger.schemas import SchemaRegistry

from .body import read_json
from .config_handlers import _idempotency_key, _reason
from .errors import BadRequest
from .keys import LEDGER, PRINCIPAL, SETTINGS
from .params import parse_instant, parse_version, service_param
from .plan_handlers import dry_run_requested, if_match_version, plan_view
from .views import dumps, etag_of

__all__ = ["put_schema", "get_schema", "delete_schema"]


def _registry(request: web.Request) -> SchemaRegistry:
    ledger = request.app[LEDGER]
    return SchemaRegistry(ledger.nc, ledger.settings, config=ledger)


def _json(body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=dumps(body), content_type="application/json", headers=headers)


def _schema_view(entry: Entry) -> dict[str, Any]:
    e = entry.event
    from ledger.event import format_time

    return {
        "service": e.service, "version": e.version, "schema": e.config, "actor": e.actor,
        "reason": e.reason, "occurred_at": format_time(e.occurred_at),
        "stored_at": format_time(entry.stored_at), "hash": e.hash,
    }


def _written(appended: Any) -> web.Response:
    e = appended.event
    return _json(
        {"status": "success", "service": e.service, "version": e.version, "seq": appended.seq,
         "kind": e.kind.value, "event_id": e.event_id, "hash": e.hash},
        headers={"ETag": etag_of(e.version), "X-Ledger-Seq": str(appended.seq)},
    )


async def get_schema(request: web.Request) -> web.Response:
    service = service_param(request.match_info["service"])
    at_q, version_q = request.query.get("at"), request.query.get("version")
    if at_q is not None and version_q is not None:
        raise BadRequest("query.exclusive", "give either version or at, not both")
    registry = _registry(request)
    if version_q is not None:
        entry = await registry.at_version_entry(service, parse_version(version_q))
    elif at_q is not None:
        entry = await registry.at_entry(service, parse_instant(at_q))
    else:
        entry = await registry.current_entry(service)
    if entry is None or entry.event.config is None:
        removed = {"removed_at_version": entry.event.version} if entry else {}
        raise NotFound(f"service {service!r} has no schema", details={"service": service, **removed})
    return _json(_schema_view(entry), headers={"ETag": etag_of(entry.event.version)})


async def put_schema(request: web.Request) -> web.Response:
    service = service_param(request.match_info["service"])
    schema = await read_json(request, limit=request.app[SETTINGS].max_body)
    if not isinstance(schema, dict):
        raise InvalidConfig("schema.invalid", "a JSON Schema here is a JSON object (draft 2020-12)")
    registry = _registry(request)
    if dry_run_requested(request):
        return await _plan_schema(request, registry, service, schema)
    reason = _reason(request)
    appended = await registry.set(
        service, schema, actor=request[PRINCIPAL].identity, reason=reason,
        expected_version=await if_match_version(request), idempotency_key=_idempotency_key(request),
    )
    return _written(appended)


async def delete_schema(request: web.Request) -> web.Response:
    service = service_param(request.match_info["service"])
    registry = _registry(request)
    if dry_run_requested(request):
        entry = await registry.current_entry(service)
        plan = plan_change(entry.event if entry else None, service, Delete(),
                           if_match=await if_match_version(request))
        return _json(plan_view(plan))
    reason = _reason(request)
    appended = await registry.remove(
        service, actor=request[PRINCIPAL].identity, reason=reason,
        expected_version=await if_match_version(request),
    )
    return _written(appended)


async def _plan_schema(request: web.Request, registry: SchemaRegistry, service: str, schema: Any) -> web.Response:
    """The schema write's plan: validity of the schema, and the current config against it."""
    entry = await registry.current_entry(service)
    doc = schema if isinstance(schema, dict) else {}
    plan = plan_change(entry.event if entry else None, service, Replace(doc),
                       limits=registry.ledger.settings.limits, if_match=await if_match_version(request))
    view = plan_view(plan)
    try:
        check_schema(schema)
    except InvalidConfig as exc:
        view["policy_errors"].append({"rule": exc.rule, "path": exc.path, "message": exc.message})
    else:
        current = await registry.config.current(service)
        if current is not None and current.config is not None:
            view["schema_errors"] = [v.to_dict() for v in violations(schema, current.config)]
            view["schema_version"] = plan.version
    view["ok"] = not (view["policy_errors"] or view["schema_errors"] or view["conflict"])
    return _json(view)
