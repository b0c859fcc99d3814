"""Request and response models of the schema, plan, change-set and blame endpoints.

The same models parse the requests (change sets) and describe every body in the OpenAPI
document (``api.routes.Route`` contract fields).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from .contract import WriteParams, WriteResult

__all__ = [
    "DryRunQuery", "AtVersionQuery", "AtQuery", "JsonSchemaBody", "SchemaView", "SchemaWriteResult",
    "SchemaError", "PolicyError", "PlanView", "ChangeSetMemberIn", "ChangeSetIn", "ChangeSetRollbackIn",
    "ChangeSetMemberOut", "ChangeSetOut", "ChangeSetPlanOut", "ChangeSetView", "BlameLine", "BlameView",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DryRunQuery(BaseModel):
    dry_run: bool = Field(False, description="true: answer what the write would do; append nothing")


class AtVersionQuery(BaseModel):
    at: str | None = Field(None, description="As of this instant (RFC 3339, stream store time)")
    version: int | None = Field(None, ge=1, description="A past version of the schema")


class AtQuery(BaseModel):
    at: str | None = Field(None, description="As of this instant (RFC 3339, stream store time)")


class JsonSchemaBody(BaseModel):
    """A JSON Schema (draft 2020-12) document."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})


class SchemaView(BaseModel):
    service: str
    version: int
    schema_: dict[str, Any] = Field(alias="schema")
    actor: str
    reason: str
    occurred_at: str
    stored_at: str
    hash: str


class SchemaWriteResult(BaseModel):
    status: Literal["success"]
    service: str
    version: int
    seq: int
    kind: str
    event_id: str
    hash: str


class SchemaError(BaseModel):
    pointer: str = Field(description="JSON Pointer of the failing location in the document")
    keyword: str = Field(description="The schema keyword that failed")
    message: str
    schema_path: str


class PolicyError(BaseModel):
    rule: str
    path: str
    message: str


class PlanView(BaseModel):
    dry_run: Literal[True]
    service: str
    kind: str
    ok: bool = Field(description="true when the write would be accepted as it stands")
    current_version: int
    version: int = Field(description="The version the write would create")
    diff: dict[str, list[dict[str, Any]]] = Field(description="added / removed / changed, by JSON Pointer")
    schema_version: int | None
    schema_errors: list[SchemaError]
    policy_errors: list[PolicyError]
    conflict: dict[str, int] | None
    config: dict[str, Any] | None = Field(description="The document after the write")


class ChangeSetMemberIn(_Strict):
    service: str
    op: Literal["replace", "patch", "delete", "rollback"]
    config: dict[str, Any] | None = None
    patch: dict[str, Any] | None = None
    to_version: int | None = Field(None, ge=1, le=2**31 - 1)
    if_match: int | None = Field(None, ge=0, le=2**31 - 1, description="The version the service must be at")


class ChangeSetIn(_Strict):
    reason: str | None = Field(None, max_length=2000, description="Why (or X-Change-Reason)")
    changes: list[ChangeSetMemberIn] = Field(min_length=1, max_length=1000)


class ChangeSetRollbackIn(_Strict):
    reason: str | None = Field(None, max_length=2000)


class ChangeSetMemberOut(BaseModel):
    service: str
    version: int
    seq: int
    kind: str
    event_id: str
    hash: str


class ChangeSetOut(BaseModel):
    status: Literal["success"]
    changeset_id: str
    duplicate: bool
    projected: bool
    members: list[ChangeSetMemberOut]


class ChangeSetPlanOut(BaseModel):
    dry_run: Literal[True]
    ok: bool
    members: list[PlanView]


class ChangeSetView(BaseModel):
    changeset_id: str
    members: list[dict[str, Any]] = Field(description="The set's events (history entries), in stream order")


class BlameLine(BaseModel):
    pointer: str
    value: Any
    version: int
    occurred_at: str
    stored_at: str
    actor: str
    reason: str
    changeset_id: str | None


class BlameView(BaseModel):
    service: str
    version: int
    at: str | None
    lines: list[BlameLine]


class SchemaWriteOrPlan(RootModel[SchemaWriteResult | PlanView]):
    """The schema event written, or with ?dry_run=true what would be written."""


class ChangeSetOrPlan(RootModel[ChangeSetOut | ChangeSetPlanOut]):
    """The change set stored, or with ?dry_run=true what would be stored."""


class WriteOrPlan(RootModel[WriteResult | PlanView]):
    """The event written, or with ?dry_run=true what would be written."""


class WriteQuery(WriteParams, DryRunQuery):
    """A config write's parameters, ``dry_run`` included."""
