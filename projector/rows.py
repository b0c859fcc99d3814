"""Event + stream sequence + store time -> the row tuples PostgreSQL stores (pure).

Column order matches ``VERSION_COLUMNS`` / ``CURRENT_COLUMNS`` (used for COPY). ``change`` and
``config`` travel as canonical JSON text (asyncpg's jsonb codec takes text); ``None`` is SQL NULL
(a deletion's config, a deletion's change).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from ledger.canonical import dumps
from ledger.event import Event

__all__ = [
    "VERSION_COLUMNS",
    "CURRENT_COLUMNS",
    "VersionRow",
    "CurrentRow",
    "json_text",
    "version_row",
    "current_row",
    "current_rows",
    "changeset_remaining",
]


class VersionRow(NamedTuple):
    """One row of ``config_versions`` (one event)."""

    stream_seq: int
    service: str
    version: int
    kind: str
    change: str | None
    config: str | None
    actor: str
    reason: str
    occurred_at: datetime
    stored_at: datetime
    event_id: str
    prev_hash: str
    hash: str
    changeset_id: str | None = None  # members of one atomic change set share it


class CurrentRow(NamedTuple):
    """One row of ``config_current`` (the latest event of one service)."""

    service: str
    version: int
    kind: str
    config: str | None
    hash: str
    actor: str
    reason: str
    updated_at: datetime
    stored_at: datetime
    stream_seq: int


VERSION_COLUMNS: tuple[str, ...] = VersionRow._fields
CURRENT_COLUMNS: tuple[str, ...] = CurrentRow._fields


def json_text(value: Any) -> str | None:
    """Canonical JSON text for a jsonb column; None stays SQL NULL."""
    return None if value is None else dumps(value).decode()


def version_row(event: Event, seq: int, stored_at: datetime) -> VersionRow:
    return VersionRow(
        seq,
        event.service,
        event.version,
        event.kind.value,
        json_text(event.change),
        json_text(event.config),
        event.actor,
        event.reason,
        event.occurred_at,
        stored_at,
        event.event_id,
        event.prev_hash,
        event.hash,
        event.changeset_id,
    )


def changeset_remaining(rows: list[VersionRow], size: int | None) -> int:
    """How many members of the last row's change set are not in ``rows`` yet (0: none open)."""
    if not rows or size is None or rows[-1].changeset_id is None:
        return 0
    cs, have = rows[-1].changeset_id, 0
    for row in reversed(rows):
        if row.changeset_id != cs:
            break
        have += 1
    return max(0, size - have)


def current_row(event: Event, seq: int, stored_at: datetime) -> CurrentRow:
    return CurrentRow(
        event.service,
        event.version,
        event.kind.value,
        json_text(event.config),
        event.hash,
        event.actor,
        event.reason,
        event.occurred_at,
        stored_at,
        seq,
    )


def current_rows(rows: Iterable[VersionRow]) -> dict[str, CurrentRow]:
    """The ``config_current`` rows implied by ``rows`` (the last event of each service)."""
    latest: dict[str, CurrentRow] = {}
    for r in rows:
        held = latest.get(r.service)
        if held is None or held.stream_seq < r.stream_seq:
            latest[r.service] = CurrentRow(
                r.service, r.version, r.kind, r.config, r.hash, r.actor, r.reason,
                r.occurred_at, r.stored_at, r.stream_seq,
            )
    return latest
