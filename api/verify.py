"""``GET /api/v1/config/{service}/verify``: one service's chain, checked on the stream itself.

Reads every event of the service from JetStream (the source of truth, not the projection) and
runs ``ledger.fold.verify_chain`` over them — the same ``check_next`` the projector and the audit
reader apply: versions contiguous from 1, each ``prev_hash`` equal to the previous ``hash``, every
hash recomputing. A stored message that is not a valid event, or an event of another service on
this service's subject, is reported as a problem too.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from pydantic import BaseModel, Field

from ledger import Event, InvalidConfig, NotFound
from ledger.event import format_time
from ledger.fold import verify_chain

from .keys import LEDGER
from .params import service_param
from .views import dumps, not_found_message

__all__ = ["ChainVerification", "verify_config"]


class ChainVerification(BaseModel):
    """The result of verifying one service's chain on the stream."""

    service: str
    ok: bool = Field(description="true when every check held")
    events: int = Field(description="events read from the stream")
    version: int = Field(description="the last version on the stream")
    head_hash: str = Field(description="the hash of the last event")
    problems: list[str] = Field(description="what failed (empty when ok)")
    checked_at: str = Field(description="when the check ran (RFC 3339)")


async def verify_config(request: web.Request) -> web.Response:
    service = service_param(request.match_info["service"])
    events: list[Event] = []
    problems: list[str] = []
    try:
        async for entry in request.app[LEDGER].history_entries(service):
            if entry.event.service != service:
                problems.append(f"stream sequence {entry.seq} holds an event of {entry.event.service!r}")
                break
            events.append(entry.event)
    except InvalidConfig as exc:
        problems.append(f"a stored message is not a valid event ({exc.message})")
    if not events and not problems:
        raise NotFound(not_found_message(service), details={"service": service})
    report = verify_chain(events)
    problems += report.problems
    result = ChainVerification(
        service=service,
        ok=not problems,
        events=report.events,
        version=events[-1].version if events else 0,
        head_hash=events[-1].hash if events else "",
        problems=problems,
        checked_at=format_time(datetime.now(UTC)),
    )
    return web.Response(body=dumps(result.model_dump()), content_type="application/json")
