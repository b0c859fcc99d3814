"""The event: the one contract every part of the system shares (see DESIGN.md, "The event").

Pure: building, applying and hashing events does no I/O and reads no clock; the caller passes
``occurred_at`` and ``event_id`` in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)

from .canonical import HASH_PREFIX, dumps, loads, sha256_of
from .errors import InvalidChange, InvalidConfig, NotFound
from .validate import (
    DEFAULT_LIMITS,
    Limits,
    validate_document,
    validate_json_value,
    validate_service_name,
)

__all__ = [
    "EventKind",
    "Event",
    "Replace",
    "Patch",
    "Rollback",
    "Delete",
    "Change",
    "merge_patch",
    "apply",
    "new_event",
    "event_hash",
    "format_time",
    "idempotency_event_id",
    "change_body",
    "change_from_event",
    "SCHEMA_VERSION",
    "is_noop",
]

SCHEMA_VERSION = 1
_IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c7e52-9d0a-4c55-9a67-1f3c1c0de1ed")


class EventKind(StrEnum):
    REPLACED = "replaced"
    PATCHED = "patched"
    ROLLED_BACK = "rolled_back"
    DELETED = "deleted"


def format_time(value: datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z``: the one time format in events."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware instant")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Event(BaseModel):
    """One change of one service's config, as stored (canonical JSON) on the stream."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_version: Literal[1] = Field(1, alias="schema")
    event_id: str
    service: str
    version: int = Field(ge=1)
    kind: EventKind
    change: Any = None
    config: dict[str, Any] | None
    actor: str = Field(min_length=1, max_length=200)
    reason: str = Field(max_length=2000)
    occurred_at: datetime
    prev_hash: str
    hash: str
    # Optional, hashed when present: where the change came from (``traceparent``, ``request_id``).
    # Absent from events written before it existed, whose hashes therefore still recompute.
    metadata: dict[str, str] | None = None

    @field_validator("service")
    @classmethod
    def _service_name(cls, value: str) -> str:
        return validate_service_name(value)

    @field_validator("event_id")
    @classmethod
    def _event_id(cls, value: str) -> str:
        uuid.UUID(value)
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at must carry a timezone")
        return value.astimezone(UTC)

    @field_validator("prev_hash", "hash")
    @classmethod
    def _hash_form(cls, value: str) -> str:
        if value and not (value.startswith(HASH_PREFIX) and len(value) == len(HASH_PREFIX) + 64):
            raise ValueError("must be 'sha256:' followed by 64 hex digits")
        return value

    @field_serializer("occurred_at")
    def _ser_time(self, value: datetime) -> str:
        return format_time(value)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-native dict that is hashed and stored."""
        data = self.model_dump(mode="json", by_alias=True)
        if data.get("metadata") is None:
            data.pop("metadata", None)
        return data

    def to_bytes(self) -> bytes:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> Event:
        """Parse a stored event. Raises InvalidConfig(rule="event.shape") if it is not one."""
        if not isinstance(data, dict):
            raise InvalidConfig("event.shape", "message body is not a JSON object")
        try:
            event = cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise InvalidConfig("event.shape", f"not a valid event: {first['msg']}", path=loc) from None
        if (event.kind is EventKind.DELETED) != (event.config is None):
            raise InvalidConfig("event.shape", "config must be null exactly for a deletion")
        if (event.version == 1) != (event.prev_hash == ""):
            raise InvalidConfig("event.shape", "prev_hash must be empty exactly for version 1")
        return event

    @classmethod
    def from_bytes(cls, data: bytes) -> Event:
        try:
            parsed = loads(data)
        except ValueError:
            raise InvalidConfig("event.shape", "message body is not JSON") from None
        return cls.from_dict(parsed)

    def computed_hash(self) -> str:
        return event_hash(self.to_dict())

    def hash_ok(self) -> bool:
        return self.computed_hash() == self.hash


def event_hash(event_dict: dict[str, Any]) -> str:
    """sha256 over the canonical JSON of the event without its ``hash`` field."""
    return sha256_of({k: v for k, v in event_dict.items() if k != "hash"})


# --- changes: what an admin asks for -------------------------------------------------------


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
            raise InvalidChange("cannot patch a config that does not exist; replace it first")
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
            body["to_time"] = format_time(change.to_time)
        return body
    return None


def change_from_event(event: Event) -> Change:
    """Rebuild the change an event records (for fold verification)."""
    if event.kind is EventKind.REPLACED:
        return Replace(event.change)
    if event.kind is EventKind.PATCHED:
        return Patch(event.change)
    if event.kind is EventKind.ROLLED_BACK:
        return Rollback(to_version=int(event.change["to_version"]))
    return Delete()


def is_noop(previous: Event | None, change: Change) -> bool:
    """Would ``change`` leave the current document as it is? (Re-sending the current document,
    an empty or already-applied patch.) Such a write answers "unchanged" and appends nothing;
    rollbacks and deletions are always recorded."""
    if previous is None or previous.config is None or not isinstance(change, Replace | Patch):
        return False
    try:
        return dumps(apply(previous.config, change)) == dumps(previous.config)  # 1 and 1.0 differ
    except (InvalidChange, InvalidConfig, TypeError, ValueError):
        return False  # not a valid document: new_event refuses it with the rule


def idempotency_event_id(service: str, key: str) -> str:
    """The event_id a given (service, idempotency key) always maps to."""
    return str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{service}\x00{key}"))


def new_event(
    previous: Event | None,
    service: str,
    change: Change,
    *,
    actor: str,
    reason: str,
    occurred_at: datetime,
    event_id: str,
    target: Event | None = None,
    limits: Limits = DEFAULT_LIMITS,
    metadata: dict[str, str] | None = None,
) -> Event:
    """Decide the next event of ``service`` after ``previous`` (pure)."""
    validate_service_name(service)
    if isinstance(change, Delete | Patch) and (previous is None or previous.config is None):
        gone = " (deleted; replace it or roll it back first)" if previous is not None else ""
        raise NotFound(f"Config not found for service: {service}{gone}", details={"service": service})
    if isinstance(change, Replace | Patch):
        body = change.config if isinstance(change, Replace) else change.patch
        if not isinstance(body, dict):
            raise InvalidConfig("document.type", "a config document must be a JSON object")
        # Before apply(): its copies go through orjson, which would turn NaN into null.
        validate_json_value(body, max_depth=limits.max_depth)
    config = apply(previous.config if previous else None, change, target)
    if config is not None:
        validate_document(config, limits)
    if not actor:
        raise InvalidChange("actor must not be empty")
    fields: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "event_id": event_id,
        "service": service,
        "version": previous.version + 1 if previous else 1,
        "kind": change.kind.value,
        "change": change_body(change, target),
        "config": config,
        "actor": actor,
        "reason": reason,
        "occurred_at": format_time(occurred_at),
        "prev_hash": previous.hash if previous else "",
    }
    if metadata:
        fields["metadata"] = dict(metadata)
    fields["hash"] = event_hash(fields)
    # Every field was built and checked above: skip re-validation on this hot path.
    return Event.model_construct(
        **{k: v for k, v in fields.items() if k not in ("schema", "kind", "occurred_at")},
        schema_version=SCHEMA_VERSION,
        kind=change.kind,
        occurred_at=occurred_at.astimezone(UTC),
    )
