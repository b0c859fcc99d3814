"""The event: the one contract every part of the system shares (see DESIGN.md, "The event").

Pure: building, applying and hashing events does no I/O and reads no clock; the caller passes
``occurred_at`` and ``event_id`` in.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_serializer,
    field_validator,
)

from .canonical import HASH_PREFIX, dumps, loads, sha256_of
from .change import (
    Change,
    Delete,
    EventKind,
    Patch,
    Replace,
    Rollback,
    apply,
    change_body,
    merge_patch,
)
from .errors import InvalidChange, InvalidConfig, NotFound
from .instants import format_instant
from .secrets import check_text
from .validate import (
    DEFAULT_LIMITS,
    SERVICE_NAME_RE,
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
    "stored_event_hash",
    "is_noop",
    "check_provenance",
]

SCHEMA_VERSION = 1
_IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c7e52-9d0a-4c55-9a67-1f3c1c0de1ed")


def format_time(value: datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z``: the one time format in events."""
    return format_instant(value)


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
    # A member of an atomic change set (several services, all or nothing). Optional: absent from
    # the stored JSON (and the hash) of an event outside a set, so older events verify unchanged.
    changeset_id: str | None = None
    changeset_size: int | None = Field(None, ge=1, le=1000)
    # Optional, hashed when present: where the change came from (``traceparent``, ``request_id``).
    # Absent from events written before it existed, whose hashes therefore still recompute.
    metadata: dict[str, str] | None = None
    _raw: bytes | None = PrivateAttr(default=None)  # canonical stored bytes, when parsed from them

    @field_validator("service")
    @classmethod
    def _service_name(cls, value: str) -> str:
        return validate_service_name(value)

    @field_validator("event_id", "changeset_id")
    @classmethod
    def _event_id(cls, value: str | None) -> str | None:
        if value is not None:
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
        if data["changeset_id"] is None:
            del data["changeset_id"], data["changeset_size"]
        if data.get("metadata") is None:
            data.pop("metadata", None)
        return data

    def _stored_bytes(self) -> bytes | None:
        """``_raw`` without pydantic's ``__getattr__`` (a few us per read on the hot paths)."""
        private = self.__pydantic_private__
        return private["_raw"] if private else None

    def to_bytes(self) -> bytes:
        raw = self._stored_bytes()
        return raw if raw is not None else dumps(self.to_dict())

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
        if (event.changeset_id is None) != (event.changeset_size is None):
            raise InvalidConfig("event.shape", "changeset_id and changeset_size go together")
        return event

    @classmethod
    def from_bytes(cls, data: bytes) -> Event:
        """Parse a stored event, once: bytes in the form the ledger writes (canonical JSON of a
        well-formed event) take a fast path without pydantic validation and keep their bytes
        for ``hash_ok``; anything else goes through ``from_dict`` (full validation, the error)."""
        try:
            parsed = loads(data)
        except ValueError:
            raise InvalidConfig("event.shape", "message body is not JSON") from None
        # canonical bytes: the hash can be checked over these very bytes
        event = _fast_event(parsed, bytes(data) if dumps(parsed) == data else None)
        return cls.from_dict(parsed) if event is None else event

    def __eq__(self, other: object) -> bool:
        """Equal fields (the stored bytes kept for hashing are not part of the value)."""
        if not isinstance(other, Event):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def model_copy(self, *, update: Any = None, deep: bool = False) -> Event:
        copy = super().model_copy(update=update, deep=deep)
        if update:  # the stored bytes no longer describe the copy
            object.__setattr__(copy, "__pydantic_private__", {"_raw": None})
        return copy

    def __hash__(self) -> int:
        return hash((self.event_id, self.hash))

    def computed_hash(self) -> str:
        raw = self._stored_bytes()
        if raw is not None:
            found = stored_event_hash(raw)
            if found is not None:
                return found
        return event_hash(self.to_dict())

    def hash_ok(self) -> bool:
        return self.computed_hash() == self.hash


def event_hash(event_dict: dict[str, Any]) -> str:
    """sha256 over the canonical JSON of the event without its ``hash`` field."""
    return sha256_of({k: v for k, v in event_dict.items() if k != "hash"})


_HASH_MEMBER = b',"hash":"'


def stored_event_hash(data: bytes) -> str | None:
    """``event_hash`` computed over an event's canonical bytes: the same bytes minus the
    ``"hash"`` member (None when there is none). Only for canonical bytes (sorted keys, compact):
    every member after ``hash`` is a fixed key with a string or number value (or ``metadata``,
    strings under keys other than "hash"), and a string cannot hold ``,"hash":"`` unescaped, so
    the last occurrence is the event's own member."""
    start = data.rfind(_HASH_MEMBER)
    if start < 0:
        return None
    end = data.find(b'"', start + len(_HASH_MEMBER))
    if end < 0:
        return None
    return HASH_PREFIX + hashlib.sha256(data[:start] + data[end + 1 :]).hexdigest()


_EVENT_KEYS = frozenset(
    ("schema", "event_id", "service", "version", "kind", "change", "config", "actor", "reason",
     "occurred_at", "prev_hash", "hash")
)
_OPTIONAL_KEYS = frozenset(("changeset_id", "changeset_size", "metadata"))
_KINDS = {k.value: k for k in EventKind}


def _optional_ok(d: dict[str, Any], extra: Any) -> bool:
    if ("changeset_id" in extra) != ("changeset_size" in extra):
        return False
    if "changeset_id" in extra:
        cid, size = d["changeset_id"], d["changeset_size"]
        if not (type(cid) is str and _UUID_RE.match(cid) and type(size) is int and 1 <= size <= 1000):
            return False
    if "metadata" in extra:
        meta = d["metadata"]
        # No member named "hash": stored_event_hash relies on the event's own being the last one.
        if not (type(meta) is dict and "hash" not in meta
                and all(type(k) is str and type(v) is str for k, v in meta.items())):
            return False
    return True
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _fast_event(d: Any, raw: bytes | None) -> Event | None:
    """The event in ``d`` if it has exactly the form ``new_event`` writes; None otherwise (the
    caller then validates fully). Accepts a subset of what ``Event.from_dict`` accepts."""
    if type(d) is not dict:
        return None
    keys = d.keys()
    extra = None
    if keys != _EVENT_KEYS:  # the optional members, each in the form new_event writes them
        extra = keys - _EVENT_KEYS
        if not (keys >= _EVENT_KEYS and extra <= _OPTIONAL_KEYS and _optional_ok(d, extra)):
            return None
    version, config, kind = d["version"], d["config"], _KINDS.get(d["kind"])
    service, actor, reason = d["service"], d["actor"], d["reason"]
    event_id, occurred, prev_hash, hash_ = d["event_id"], d["occurred_at"], d["prev_hash"], d["hash"]
    if not (
        d["schema"] == SCHEMA_VERSION
        and type(d["schema"]) is int
        and type(version) is int
        and version >= 1
        and kind is not None
        and (config is None) == (kind is EventKind.DELETED)
        and (config is None or type(config) is dict)
        and type(service) is str
        and SERVICE_NAME_RE.match(service)
        and type(actor) is str
        and 1 <= len(actor) <= 200
        and type(reason) is str
        and len(reason) <= 2000
        and type(event_id) is str
        and _UUID_RE.match(event_id)
        and type(occurred) is str
        and _TIME_RE.match(occurred)
        and type(hash_) is str
        and _HASH_RE.match(hash_)
        and type(prev_hash) is str
        and (prev_hash == "" if version == 1 else bool(_HASH_RE.match(prev_hash)))
    ):
        return None
    return _construct(
        {
            "schema_version": SCHEMA_VERSION,
            "event_id": event_id,
            "service": service,
            "version": version,
            "kind": kind,
            "change": d["change"],
            "config": config,
            "actor": actor,
            "reason": reason,
            "occurred_at": datetime.fromisoformat(occurred),
            "prev_hash": prev_hash,
            "hash": hash_,
            "changeset_id": d.get("changeset_id") if extra else None,
            "changeset_size": d.get("changeset_size") if extra else None,
            "metadata": d.get("metadata") if extra else None,
        },
        raw,
    )


_FIELDS = frozenset(Event.model_fields)


def _construct(values: dict[str, Any], raw: bytes | None) -> Event:
    """An ``Event`` from values already checked, in field order (what ``model_construct`` does,
    without its per-field default handling: a tenth of the cost on the hot path)."""
    event = Event.__new__(Event)
    object.__setattr__(event, "__dict__", values)
    object.__setattr__(event, "__pydantic_fields_set__", set(_FIELDS))
    object.__setattr__(event, "__pydantic_extra__", None)
    object.__setattr__(event, "__pydantic_private__", {"_raw": raw})
    return event


def change_from_event(event: Event) -> Change:
    """Rebuild the change an event records (for fold verification)."""
    if event.kind is EventKind.REPLACED:
        return Replace(event.change)
    if event.kind is EventKind.PATCHED:
        return Patch(event.change)
    if event.kind is EventKind.ROLLED_BACK:
        return Rollback(to_version=int(event.change["to_version"]))
    return Delete()


def check_provenance(actor: str, reason: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """Who and why, checked for every write (a no-op too): an actor, and no secret in either."""
    if not actor:
        raise InvalidChange("actor must not be empty")
    if limits.secrets_policy:
        check_text(reason, "reason")
        check_text(actor, "actor")


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
    changeset: tuple[str, int] | None = None,
    metadata: dict[str, str] | None = None,
) -> Event:
    """Decide the next event of ``service`` after ``previous`` (pure)."""
    validate_service_name(service)
    if isinstance(change, Delete | Patch) and (previous is None or previous.config is None):
        gone = " (deleted; replace it or roll it back first)" if previous is not None else ""
        rule = "patch.no_config" if isinstance(change, Patch) else "delete.no_config"
        raise NotFound(f"Config not found for service: {service}{gone}", details={"service": service, "rule": rule})
    if isinstance(change, Replace | Patch):
        body = change.config if isinstance(change, Replace) else change.patch
        if not isinstance(body, dict):
            raise InvalidConfig("document.type", "a config document must be a JSON object")
        # Before apply(): its copies go through orjson, which would turn NaN into null.
        validate_json_value(body, max_depth=limits.max_depth)
    config = apply(previous.config if previous else None, change, target)
    if config is not None:
        validate_document(config, limits)
    check_provenance(actor, reason, limits)
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
    if changeset is not None:
        fields["changeset_id"], fields["changeset_size"] = changeset
    if metadata:
        fields["metadata"] = dict(metadata)
    unhashed = dumps(fields)  # canonical bytes without "hash"; the stored bytes are these plus it
    digest = HASH_PREFIX + hashlib.sha256(unhashed).hexdigest()
    fields["hash"] = digest
    # Every field was built and checked above: skip re-validation on this hot path.
    return _construct(
        {
            "schema_version": SCHEMA_VERSION,
            "event_id": event_id,
            "service": service,
            "version": fields["version"],
            "kind": change.kind,
            "change": fields["change"],
            "config": config,
            "actor": actor,
            "reason": reason,
            "occurred_at": occurred_at.astimezone(UTC),
            "prev_hash": fields["prev_hash"],
            "hash": digest,
            "changeset_id": changeset[0] if changeset else None,
            "changeset_size": changeset[1] if changeset else None,
            "metadata": fields.get("metadata"),
        },
        dumps(fields),
    )
