"""Changes: what an admin asks for (replace, RFC 7396 merge patch, rollback, delete) and the pure
``apply`` that turns the current document and a change into the next one (see ``ledger.event``
for the event that records it). Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

import orjson

from .errors import InvalidChange, NotFound
from .instants import format_instant

if TYPE_CHECKING:
    from .event import Event

__all__ = ["EventKind", "Replace", "Patch", "Rollback", "Delete", "Change", "merge_patch", "apply", "change_body"]


class EventKind(StrEnum):
    REPLACED = "replaced"
    PATCHED = "patched"
    ROLLED_BACK = "rolled_back"
    DELETED = "deleted"


@dataclass(frozen=True)
class Replace:
    config: dict[str, Any]
    kind: Literal[EventKind.REPLACED] = field(default=EventKind.REPLACED, init=False)


@dataclass(frozen=True)
class Patch:
    """RFC 7396 JSON merge patch."""

    patch: dict[str, Any]
    kind: Literal[EventKind.PATCHED] = field(default=EventKind.PATCHED, init=False)


@dataclass(frozen=True)
class Rollback:
    """Back to an earlier version, or to the state as of an instant (the ledger resolves it)."""

    to_version: int | None = None
    to_time: datetime | None = None
    kind: Literal[EventKind.ROLLED_BACK] = field(default=EventKind.ROLLED_BACK, init=False)

    def __post_init__(self) -> None:
        if (self.to_version is None) == (self.to_time is None):
            raise InvalidChange("rollback needs exactly one of to_version or to_time")
        if self.to_version is not None and (
            isinstance(self.to_version, bool) or not isinstance(self.to_version, int) or self.to_version < 1
        ):
            raise InvalidChange("rollback to_version must be a positive integer")
        if self.to_time is not None and self.to_time.tzinfo is None:
            raise InvalidChange("rollback to_time must carry a timezone")


@dataclass(frozen=True)
class Delete:
    kind: Literal[EventKind.DELETED] = field(default=EventKind.DELETED, init=False)


Change = Replace | Patch | Rollback | Delete


def _copy(value: Any) -> Any:
    """Deep copy of a *validated* JSON value (orjson round trip: faster than copy.deepcopy)."""
    return orjson.loads(orjson.dumps(value))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: apply ``patch`` to ``target`` and return a new value (inputs untouched)."""
    if not isinstance(patch, dict):
        return _copy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def apply(config: dict[str, Any] | None, change: Change, target: Event | None = None) -> dict[str, Any] | None:
    """The config after ``change``. Rollbacks need ``target``: the event rolled back to."""
    if isinstance(change, Replace):
        return _copy(change.config)
    if isinstance(change, Patch):
        if config is None:
            raise NotFound(
                "there is no config to patch (none yet, or deleted): replace it first (POST)",
                details={"rule": "patch.no_config"},
            )
        return merge_patch(config, change.patch)  # type: ignore[no-any-return]
    if isinstance(change, Rollback):
        if target is None:
            raise InvalidChange("rollback target not found")
        if target.config is None:
            raise InvalidChange(f"version {target.version} is a deletion; nothing to roll back to")
        return _copy(target.config)
    if isinstance(change, Delete):
        if config is None:
            raise InvalidChange("config does not exist or is already deleted")
        return None
    raise InvalidChange(f"unknown change {change!r}")


def change_body(change: Change, target: Event | None) -> Any:
    """What the event's ``change`` field records: the admin's intent."""
    if isinstance(change, Replace):
        return change.config
    if isinstance(change, Patch):
        return change.patch
    if isinstance(change, Rollback):
        body: dict[str, Any] = {"to_version": target.version if target else change.to_version}
        if change.to_time is not None:
            body["to_time"] = format_instant(change.to_time)
        return body
    return None
