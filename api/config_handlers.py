"""Handlers of ``/api/v1/config…`` and ``/api/v1/snapshot``: parse → call → serialise.

Authorisation happens before these run (``api.middleware.api_middleware``, per route).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ledger import Delete, InvalidConfig, NotFound, Patch, Replace, Rollback
from ledger.event import format_time

from .body import JSON, MERGE_PATCH, read_body, read_json
from .cache import CachedConfig
from .contract import HISTORY_DEFAULT, HISTORY_MAX, MAX_IDEMPOTENCY_KEY, MAX_REASON
from .diff import diff
from .errors import BadRequest, Unprocessable
from .fleet_handlers import rollout_guard
from .keys import FEED, FOLLOWER, PRINCIPAL, READER, REPO, SETTINGS, TRACE, WRITER
from .params import (
    clean_text,
    decode_cursor,
    encode_cursor,
    if_none_match_hits,
    if_none_match_version,
    parse_if_match,
    parse_instant,
    parse_limit,
    parse_min_seq,
    parse_min_version,
    parse_version,
    parse_version_or_instant,
    service_param,
)
from .plan_handlers import dry_run_requested, plan_response
from .repository import Version
from .views import current_view, dumps, etag_of, not_found_message, version_view
from .writes import WriteResult

__all__ = [
    "get_config",
    "post_config",
    "put_config",
    "patch_config",
    "delete_config",
    "rollback_config",
    "list_configs",
    "history",
    "diff_config",
    "snapshot",
]



def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=dumps(body), status=status, content_type="application/json", headers=headers)


def _not_found(service: str, **details: Any) -> NotFound:
    """The reference message (clients match on its start), then what exactly is missing."""
    message = not_found_message(service)
    if details.get("deleted"):
        pass  # the reference message exactly; details say deleted, when and by whom
    elif details.get("version") is not None:
        message += f" (no version {details['version']})"
    elif details.get("at") is not None:
        message += f" (no config at {details['at']})"
    elif details.get("to") is not None:
        to = str(details["to"])
        message += f" (no version {to})" if to.isdigit() else f" (no config at {to})"
    return NotFound(message, details={"service": service, **details})


def _not_modified(etag: str) -> web.Response:
    return web.Response(status=304, headers={"ETag": etag})


# --- reads -------------------------------------------------------------------------------------


async def get_config(request: web.Request) -> web.Response:
    """Current config (cache), or ``?version=N`` / ``?at=<RFC 3339>`` (PostgreSQL)."""
    service = service_param(request.match_info["service"])
    headers = request.headers
    if_none_match = headers.get("If-None-Match")
    if not request.query_string and "X-Min-Seq" not in headers:
        hit, entry = request.app[READER].cached(service)  # the hot path: a dict lookup, no await
        if hit and (not if_none_match or if_none_match_version(if_none_match) <= _version_of(entry)):
            return _current_response(service, entry, if_none_match, "cache")
    query = request.query
    version_q, at_q = query.get("version"), query.get("at")
    if version_q is not None and at_q is not None:
        raise BadRequest("query.exclusive", "give either version or at, not both")
    if version_q is not None or at_q is not None:
        reader = request.app[READER]
        if version_q is not None:
            number = parse_version(version_q)
            found = await reader.version(service, number)
            where: dict[str, Any] = {"version": number}
        else:
            assert at_q is not None
            instant = parse_instant(at_q)
            found = await reader.at(service, instant)
            where = {"at": format_time(instant)}
        if found is None:
            raise _not_found(service, **where)
        if found.deleted:
            raise _not_found(service, **{**where, "deleted": True, "version": found.version})
        etag = etag_of(found.version)
        if if_none_match_hits(request.headers.get("If-None-Match"), etag):
            return _not_modified(etag)
        return _json(current_view(found), headers={"ETag": etag})

    min_seq = parse_min_seq(headers.get("X-Min-Seq"), query.get("min_seq"))
    # A version the reader has seen (its ETag, or ?min_version=): never answer an older one.
    min_version = max(parse_min_version(query.get("min_version")), if_none_match_version(if_none_match))
    read = await request.app[READER].current(service, min_seq, min_version)
    return _current_response(service, read.entry, if_none_match, read.source)


def _version_of(entry: CachedConfig | None) -> int:
    return entry.version.version if entry is not None else 0


def _current_response(
    service: str, entry: CachedConfig | None, if_none_match: str | None, source: str
) -> web.Response:
    if entry is None:
        raise _not_found(service)
    if entry.version.deleted:
        v = entry.version
        raise _not_found(service, deleted=True, version=v.version, deleted_at=format_time(v.occurred_at),
                         deleted_by=v.actor)
    if if_none_match and if_none_match_hits(if_none_match, entry.etag):
        return _not_modified(entry.etag)
    headers = {"ETag": entry.etag}
    if source != "cache":
        headers["X-Served-From"] = source
    return web.Response(body=entry.body, content_type="application/json", headers=headers)


async def list_configs(request: web.Request) -> web.Response:
    """Every service with its current version (deleted ones flagged)."""
    follower, reader = request.app[FOLLOWER], request.app[READER]
    if follower.caught_up and (
        follower.seq >= reader.acked_max or await follower.wait_for(reader.acked_max, request.app[SETTINGS].write_wait)
    ):
        rows = [c.version for c in follower.entries()]
    else:
        _, rows = await request.app[REPO].current_all()
        rows.sort(key=lambda v: v.service)
    checkpoint = request.app[FEED].seq
    services = [
        {
            "service": v.service,
            "version": v.version,
            "kind": v.kind,
            "deleted": v.deleted,
            "updated_at": format_time(v.occurred_at),
            "hash": v.hash,
            "actor": v.actor,
            "reason": v.reason,
        }
        for v in rows
    ]
    return _json({"services": services, "projected_seq": checkpoint, "stream_seq": follower.seq})


async def history(request: web.Request) -> web.Response:
    """Versions newest first; ``limit`` (≤ 500) and an opaque ``cursor`` for the next page."""
    service = service_param(request.match_info["service"])
    limit = parse_limit(request.query.get("limit"), default=HISTORY_DEFAULT, maximum=HISTORY_MAX)
    cursor = request.query.get("cursor")
    before = decode_cursor(cursor) if cursor else None
    await request.app[READER].projected(service)
    rows = await request.app[REPO].history(service, before=before, limit=limit + 1)
    if not rows and before is None:
        raise _not_found(service)
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].version) if len(rows) > limit else None
    versions = []
    for i, v in enumerate(page):  # each with its key diff from the version before (rows has one more)
        prior = rows[i + 1] if i + 1 < len(rows) else None
        versions.append({**version_view(v), "diff": diff(prior.config if prior else None, v.config)})
    headers: dict[str, str] = {}
    if next_cursor is not None:
        nxt = request.rel_url.with_query({**request.query, "cursor": next_cursor, "limit": str(limit)})
        headers["Link"] = f'<{nxt}>; rel="next"'
    return _json({"service": service, "versions": versions, "next_cursor": next_cursor}, headers=headers)


def _side(v: Version | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"version": v.version, "kind": v.kind, "deleted": v.deleted, "stored_at": format_time(v.stored_at),
            "changeset_id": v.changeset_id}


async def diff_config(request: web.Request) -> web.Response:
    """Key-level diff between two versions or instants (``to`` defaults to the current version,
    ``from`` to the version before ``to``)."""
    service = service_param(request.match_info["service"])
    reader = request.app[READER]
    from_q, to_q = request.query.get("from"), request.query.get("to")
    from_ref = parse_version_or_instant(from_q, "from") if from_q is not None else None
    to_ref = parse_version_or_instant(to_q, "to") if to_q is not None else None
    if to_ref is None:
        read = await reader.current(service)
        to_v = read.entry.version if read.entry else None
    else:
        to_v = await reader.resolve(service, to_ref)
    if to_v is None:
        raise _not_found(service, to=to_q, side="to")
    if from_ref is None:
        from_v = await reader.version(service, to_v.version - 1) if to_v.version > 1 else None
    else:
        from_v = await reader.resolve(service, from_ref)
        if from_v is None and isinstance(from_ref, int):
            raise _not_found(service, version=from_ref, side="from")
    changes = diff(from_v.config if from_v else None, to_v.config)
    return _json({"service": service, "from": _side(from_v), "to": _side(to_v), **changes})


async def snapshot(request: web.Request) -> web.Response:
    """Every service's config as of one instant (default: now)."""
    at_q = request.query.get("at")
    instant = parse_instant(at_q) if at_q is not None else datetime.now(UTC)
    await request.app[READER].projected()
    checkpoint, rows = await request.app[REPO].snapshot(instant)
    services = {
        v.service: {
            "version": v.version,
            "kind": v.kind,
            "config": v.config,
            "hash": v.hash,
            "actor": v.actor,
            "updated_at": format_time(v.occurred_at),
            "stored_at": format_time(v.stored_at),
        }
        for v in rows
        if not v.deleted
    }
    deleted = sorted(v.service for v in rows if v.deleted)
    return _json(
        {"at": format_time(instant), "projected_seq": checkpoint, "services": services, "deleted": deleted}
    )


# --- writes ------------------------------------------------------------------------------------


def _reason(request: web.Request, from_body: Any = None) -> str:
    """``X-Change-Reason`` header, else ``?reason=``, else the body's ``reason`` (rollback)."""
    value = request.headers.get("X-Change-Reason")
    if value is None:
        value = request.query.get("reason")
    if value is None and from_body is not None:
        if not isinstance(from_body, str):
            raise InvalidConfig("rollback.shape", "reason must be a string", path="reason")
        value = from_body
    value = clean_text((value or "").strip(), what="reason", limit=MAX_REASON)
    if not value and request.app[SETTINGS].require_reason:
        raise Unprocessable(
            "reason.required",
            "a reason is required for every change: send X-Change-Reason (or ?reason=; "
            "config-ledger: --reason/-m)",
        )
    return value


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = clean_text(key.strip(), what="idempotency_key", limit=MAX_IDEMPOTENCY_KEY)
    if not key:
        raise BadRequest("idempotency_key.empty", "Idempotency-Key must not be empty")
    return key


def _write_response(result: WriteResult, message: str, *, location: str | None = None) -> web.Response:
    if result.unchanged:
        message = f"Config unchanged (already at version {result.version}); nothing appended"
    headers = {
        "ETag": etag_of(result.version),
        "X-Ledger-Seq": str(result.seq),
        "Server-Timing": result.server_timing(),
    }
    if result.duplicate:
        headers["Idempotent-Replayed"] = "true"
    status = 200
    if location is not None and result.version == 1 and not result.duplicate and not result.unchanged:
        status = 201  # created the service
        headers["Location"] = location
    return _json(result.body(message), status=status, headers=headers)


async def _write(request: web.Request, service: str, change: Any, reason: str) -> WriteResult:
    return await request.app[WRITER].write(
        service,
        change,
        actor=request[PRINCIPAL].identity,
        reason=reason,
        if_match=parse_if_match(request.headers.get("If-Match")),
        idempotency_key=_idempotency_key(request),
        metadata=request.get(TRACE),
        guard=rollout_guard(request, service),  # 409 during a rollout (issue 16)
    )


async def post_config(request: web.Request) -> web.Response:
    """Replace the whole document (the reference document's POST)."""
    service = service_param(request.match_info["service"])
    settings = request.app[SETTINGS]
    doc = await read_json(request, limit=settings.max_body)
    reason = _reason(request)  # the ledger validates the document (rule ids) before appending
    if dry_run_requested(request):
        _idempotency_key(request)  # a plan checks what the write would: the reason and the key
        return await plan_response(request, service, Replace(doc))
    result = await _write(request, service, Replace(doc), reason)
    return _write_response(result, "Config updated and broadcasted")


async def put_config(request: web.Request) -> web.Response:
    """PUT: replace the whole document, as the reference POST; 201 + Location on create."""
    service = service_param(request.match_info["service"])
    doc = await read_json(request, limit=request.app[SETTINGS].max_body)
    reason = _reason(request)
    result = await _write(request, service, Replace(doc), reason)
    return _write_response(result, "Config updated and broadcasted", location=str(request.rel_url.path))


async def patch_config(request: web.Request) -> web.Response:
    """RFC 7396 merge patch of the current document."""
    service = service_param(request.match_info["service"])
    settings = request.app[SETTINGS]
    patch = await read_json(request, limit=settings.max_body, media_types=(MERGE_PATCH, JSON))
    if not isinstance(patch, dict):
        raise InvalidConfig("document.type", "a merge patch of a config document must be a JSON object")
    reason = _reason(request)  # the ledger validates the patch and the patched document
    if dry_run_requested(request):
        _idempotency_key(request)  # a plan checks what the write would: the reason and the key
        return await plan_response(request, service, Patch(patch))
    result = await _write(request, service, Patch(patch), reason)
    return _write_response(result, "Config patched and broadcasted")


async def delete_config(request: web.Request) -> web.Response:
    """Tombstone: the service's history stays, GET answers 404 until a new POST."""
    service = service_param(request.match_info["service"])
    await read_body(request, request.app[SETTINGS].max_body)  # drain (and bound) any body
    reason = _reason(request)
    if dry_run_requested(request):
        _idempotency_key(request)  # a plan checks what the write would: the reason and the key
        return await plan_response(request, service, Delete())
    result = await _write(request, service, Delete(), reason)
    return _write_response(result, "Config deleted and broadcasted")


_ROLLBACK_KEYS = {"to_version", "to_time", "reason"}


async def rollback_config(request: web.Request) -> web.Response:
    """``{"to_version": N}`` or ``{"to_time": "<RFC 3339>"}`` → a new ``rolled_back`` version."""
    service = service_param(request.match_info["service"])
    body = await read_json(request, limit=request.app[SETTINGS].max_body)
    if not isinstance(body, dict):
        raise InvalidConfig("rollback.shape", 'body must be {"to_version": N} or {"to_time": "<RFC 3339>"}')
    unknown = sorted(set(body) - _ROLLBACK_KEYS)
    if unknown:
        raise InvalidConfig("rollback.shape", f"unknown field {unknown[0][:40]!r}", path=unknown[0][:40])
    to_version, to_time = body.get("to_version"), body.get("to_time")
    if (to_version is None) == (to_time is None):
        raise InvalidConfig("rollback.shape", "give exactly one of to_version or to_time")
    if to_version is not None:
        if isinstance(to_version, bool) or not isinstance(to_version, int) or not 1 <= to_version < 2**31:
            raise InvalidConfig("rollback.shape", "to_version must be a positive integer", path="to_version")
        change = Rollback(to_version=to_version)
    else:
        if not isinstance(to_time, str):
            raise InvalidConfig("rollback.shape", "to_time must be an RFC 3339 string", path="to_time")
        change = Rollback(to_time=parse_instant(to_time, "to_time"))
    reason = _reason(request, body.get("reason"))
    if dry_run_requested(request):
        _idempotency_key(request)  # a plan checks what the write would: the reason and the key
        return await plan_response(request, service, change)
    result = await _write(request, service, change, reason)
    return _write_response(result, f"Config rolled back (now version {result.version})")
