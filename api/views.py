"""JSON shapes of what the API returns (pure: values in, dicts/bytes out)."""

from __future__ import annotations

from typing import Any

import orjson

from ledger import Entry
from ledger.event import format_time

from .repository import Version

__all__ = [
    "version_from_entry",
    "current_view",
    "version_view",
    "change_event_view",
    "etag_of",
    "not_found_message",
    "dumps",
]


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def etag_of(version: int) -> str:
    return f'"{version}"'


def not_found_message(service: str) -> str:
    """The reference document's 404 message (clients match on it)."""
    return f"Config not found for service: {service}"


def version_from_entry(entry: Entry) -> Version:
    """A stream entry in the projection's shape (the stream is the source of truth)."""
    e = entry.event
    return Version(
        service=e.service,
        version=e.version,
        kind=e.kind.value,
        change=e.change,
        config=e.config,
        actor=e.actor,
        reason=e.reason,
        occurred_at=e.occurred_at,
        stored_at=entry.stored_at,
        stream_seq=entry.seq,
        event_id=e.event_id,
        prev_hash=e.prev_hash,
        hash=e.hash,
        changeset_id=e.changeset_id,
    )


def current_view(v: Version) -> dict[str, Any]:
    """``GET /api/v1/config/{service}``: the document plus where it stands."""
    return {
        "service_name": v.service,
        "service": v.service,
        "version": v.version,
        "config": v.config,
        "kind": v.kind,
        "hash": v.hash,
        "actor": v.actor,
        "reason": v.reason,
        "updated_at": format_time(v.occurred_at),
        "stored_at": format_time(v.stored_at),
        "stream_seq": v.stream_seq,
    }


def version_view(v: Version, *, with_config: bool = True) -> dict[str, Any]:
    """One entry of the history."""
    out: dict[str, Any] = {
        "version": v.version,
        "kind": v.kind,
        "change": v.change,
        "actor": v.actor,
        "reason": v.reason,
        "occurred_at": format_time(v.occurred_at),
        "stored_at": format_time(v.stored_at),
        "stream_seq": v.stream_seq,
        "event_id": v.event_id,
        "prev_hash": v.prev_hash,
        "hash": v.hash,
        "changeset_id": v.changeset_id,
    }
    if with_config:
        out["config"] = v.config
    return out


def change_event_view(v: Version, diff: dict[str, Any] | None) -> dict[str, Any]:
    """The ``data:`` of one SSE event."""
    return {
        "service": v.service,
        "version": v.version,
        "kind": v.kind,
        "config": v.config,
        "actor": v.actor,
        "reason": v.reason,
        "occurred_at": format_time(v.occurred_at),
        "stored_at": format_time(v.stored_at),
        "stream_seq": v.stream_seq,
        "hash": v.hash,
        "changeset_id": v.changeset_id,
        "diff": diff,
    }
