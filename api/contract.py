"""The API's contract as pydantic models: request bodies, parameters and response bodies.

``api.routes.ROUTES`` names them per route and ``api.openapi`` generates the OpenAPI document
from them; ``tests/api/test_contract.py`` checks real responses against that document. Limits,
event kinds and the service-name pattern are imported from where they are enforced, never
restated. The handlers build plain dicts on the hot path (``api.views``): these models describe
them, the contract test holds the two together.

Parameter models: a field is a query parameter unless its ``json_schema_extra`` says
``{"in": "header"}``; its alias is the parameter's name. A model may declare ``media_type``
(default ``application/json``), ``response_headers`` (name → description) and ``event_data``
(the model of each ``data:`` of an event stream).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from ledger.event import EventKind
from ledger.validate import DEFAULT_LIMITS, MAX_SAFE_INT

from .body import JSON, MERGE_PATCH
from .params import MAX_VERSION

__all__ = [
    "MAX_REASON", "MAX_IDEMPOTENCY_KEY", "HISTORY_DEFAULT", "HISTORY_MAX",
    "ConfigDocument", "MergePatch", "RollbackRequest",
    "GetConfigParams", "SnapshotParams", "HistoryParams", "DiffParams", "WriteParams", "WatchParams",
    "Health", "Readiness", "MetricsText", "OpenApiDocument", "ServiceList", "Snapshot",
    "CurrentConfig", "HistoryPage", "Diff", "WriteResult", "WatchEvent", "WatchStream",
]

MAX_REASON = 2000
MAX_IDEMPOTENCY_KEY = 200
HISTORY_DEFAULT, HISTORY_MAX = 50, 500

Instant = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
VersionNumber = Annotated[int, Field(ge=1, le=MAX_VERSION)]
Seq = Annotated[int, Field(ge=0)]


def _header(alias: str, description: str, **schema: Any) -> Any:
    return Field(None, alias=alias, description=description, json_schema_extra={"in": "header", **schema})


# --- requests ----------------------------------------------------------------------------------


class ConfigDocument(RootModel[dict[str, Any]]):
    __doc__ = (
        f"Any JSON object: no NaN/Infinity, integers within ±2^{MAX_SAFE_INT.bit_length() - 1}, "
        f"nesting ≤ {DEFAULT_LIMITS.max_depth}, ≤ {DEFAULT_LIMITS.max_bytes} bytes canonical, no "
        'duplicate keys, no credentials (the secrets policy; reference them as "${VAR}")'
    )


class MergePatch(ConfigDocument):
    """An RFC 7396 merge patch of a config document (``null`` removes a key)."""

    request_media_types: ClassVar[tuple[str, ...]] = (MERGE_PATCH, JSON)


class RollbackRequest(BaseModel):
    """Exactly one of ``to_version`` or ``to_time``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["to_version"]}, {"required": ["to_time"]}]},
    )
    to_version: VersionNumber | None = None
    to_time: Instant | None = Field(None, description="RFC 3339; the state stored at that instant")
    reason: str | None = Field(None, max_length=MAX_REASON)


class GetConfigParams(BaseModel):
    version: VersionNumber | None = Field(None, description="A past version")
    at: Instant | None = Field(None, description="As of this instant (RFC 3339, stream store time)")
    min_seq: Seq | None = Field(None, description="Reflect at least this stream sequence")
    x_min_seq: str | None = _header("X-Min-Seq", "Reflect at least this stream sequence")
    if_none_match: str | None = _header("If-None-Match", "ETag(s) the client holds → 304")


class SnapshotParams(BaseModel):
    at: Instant | None = Field(None, description="As of this instant (RFC 3339); default now")


class HistoryParams(BaseModel):
    limit: int | None = Field(None, ge=1, le=HISTORY_MAX, description=f"Page size (default {HISTORY_DEFAULT})")
    cursor: str | None = Field(None, description="next_cursor of the previous page")


class DiffParams(BaseModel):
    from_: str | None = Field(None, alias="from", description="A version or an RFC 3339 instant "
                              "(default: the version before `to`)")
    to: str | None = Field(None, description="A version or an RFC 3339 instant (default: current)")


class WriteParams(BaseModel):
    if_match: str | None = _header(
        "If-Match", 'Only if the current version is this one, e.g. "7" ("0": only if new; *: only if it exists)'
    )
    idempotency_key: str | None = _header(
        "Idempotency-Key", "Retries with the same key return the original result and append nothing",
        maxLength=MAX_IDEMPOTENCY_KEY,
    )
    x_change_reason: str | None = _header("X-Change-Reason", "Why (recorded in the event)", maxLength=MAX_REASON)
    reason: str | None = Field(None, max_length=MAX_REASON, description="Why (alternative to X-Change-Reason)")


class WatchParams(BaseModel):
    last_event_id_header: str | None = _header("Last-Event-ID", "Resume after this version")
    last_event_id: int | None = Field(
        None, ge=0, le=MAX_VERSION, description="Resume after this version (for clients that cannot set headers)"
    )


# --- responses ---------------------------------------------------------------------------------

_ETAG = {"ETag": 'The version as a strong ETag, e.g. "7"'}


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    reasons: list[str]
    checks: dict[str, Any]


class MetricsText(RootModel[str]):
    """Prometheus text exposition format 0.0.4."""

    media_type: ClassVar[str] = "text/plain"


class OpenApiDocument(RootModel[dict[str, Any]]):
    """OpenAPI 3.1: this document."""


class ServiceSummary(BaseModel):
    service: str
    version: VersionNumber
    kind: EventKind
    deleted: bool
    updated_at: Instant
    hash: str


class ServiceList(BaseModel):
    services: list[ServiceSummary]
    projected_seq: Seq


class SnapshotEntry(BaseModel):
    version: VersionNumber
    kind: EventKind
    config: dict[str, Any]
    hash: str
    actor: str
    updated_at: Instant
    stored_at: Instant


class Snapshot(BaseModel):
    at: Instant
    projected_seq: Seq
    services: dict[str, SnapshotEntry]
    deleted: list[str]


class CurrentConfig(BaseModel):
    response_headers: ClassVar[dict[str, str]] = {
        **_ETAG,
        "X-Served-From": "stream or postgres when not answered from the projection cache",
    }
    service_name: str
    service: str
    version: VersionNumber
    config: dict[str, Any] | None
    kind: EventKind
    hash: str
    actor: str
    reason: str
    updated_at: Instant
    stored_at: Instant
    stream_seq: Seq


class HistoryEntry(BaseModel):
    version: VersionNumber
    kind: EventKind
    change: Any = Field(description="what the admin asked for (document, patch, rollback target)")
    config: dict[str, Any] | None = None
    actor: str
    reason: str
    occurred_at: Instant
    stored_at: Instant
    stream_seq: Seq
    event_id: str | None
    prev_hash: str | None
    hash: str


class HistoryPage(BaseModel):
    service: str
    versions: list[HistoryEntry]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class DiffSide(BaseModel):
    version: VersionNumber
    kind: EventKind
    deleted: bool
    stored_at: Instant


class Added(BaseModel):
    path: str = Field(description="JSON Pointer (RFC 6901)")
    value: Any


class Removed(BaseModel):
    path: str
    value: Any


class Changed(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    path: str
    from_: Any = Field(alias="from")
    to: Any


class Diff(BaseModel):
    service: str
    from_: DiffSide | None = Field(alias="from")
    to: DiffSide | None
    added: list[Added]
    removed: list[Removed]
    changed: list[Changed]


class ChangeDiff(BaseModel):
    added: list[Added]
    removed: list[Removed]
    changed: list[Changed]


class WriteResult(BaseModel):
    response_headers: ClassVar[dict[str, str]] = {
        **_ETAG,
        "X-Ledger-Seq": "Stream sequence of the event; send it back as X-Min-Seq to read your write",
        "Server-Timing": "append and project durations in ms",
        "Idempotent-Replayed": "true when this answers a retry (nothing was appended)",
        "X-Projection-Lag": "pending: acknowledged by JetStream, not yet projected (status 202)",
    }
    status: Literal["success"]
    message: str
    service: str
    version: VersionNumber
    seq: Seq
    kind: EventKind
    event_id: str
    hash: str
    projected: bool
    duplicate: bool = Field(description="an idempotent retry: nothing appended")


class WatchEvent(BaseModel):
    service: str
    version: VersionNumber
    kind: EventKind
    config: dict[str, Any] | None
    actor: str
    reason: str
    occurred_at: Instant
    stored_at: Instant
    stream_seq: Seq
    hash: str
    diff: ChangeDiff | None


class WatchStream(RootModel[str]):
    """Server-Sent Events: ``id:`` is the version; ``event: config`` (the state when the watch
    starts), then ``event: change`` per version; ``: keepalive`` comments keep it open. Reconnect
    with ``Last-Event-ID`` to resume without a gap."""

    media_type: ClassVar[str] = "text/event-stream"
    event_data: ClassVar[type[BaseModel]] = WatchEvent
    event_names: ClassVar[tuple[str, ...]] = ("config", "change")
