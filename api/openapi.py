"""The OpenAPI 3.1 document, built as data from the route table (``api.routes.ROUTES``).

Every route must have an operation here (``build_openapi`` raises KeyError otherwise, and a test
checks it), with its parameters, responses, errors and the roles allowed to call it.
"""

from __future__ import annotations

import re
from typing import Any

from .auth import Action

__all__ = ["build_openapi", "OPERATIONS"]

_REF = "#/components"


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"{_REF}/{kind}/{name}"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _ok(description: str, schema_name: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": _json_content(_ref("schemas", schema_name))}
    if headers:
        out["headers"] = headers
    return out


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _ref("responses", f"E{s}") for s in statuses}


_ETAG_HEADER = {"ETag": {"description": 'The version as a strong ETag, e.g. "7"', "schema": {"type": "string"}}}
_WRITE_HEADERS = {
    **_ETAG_HEADER,
    "X-Ledger-Seq": {
        "description": "Stream sequence of the event; send it back as X-Min-Seq to read your write "
        "from another API instance",
        "schema": {"type": "string"},
    },
    "Server-Timing": {
        "description": "append (ledger, until JetStream acknowledged) and project (waiting for the "
        "projection) durations in ms",
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "true when this answers a retry (nothing was appended)",
        "schema": {"type": "string", "enum": ["true"]},
    },
}

_ROLES = {
    Action.PUBLIC: [],
    Action.READ: ["admin", "auditor", "service:<name> (its own service only)"],
    Action.WATCH: ["admin", "auditor", "service:<name> (its own service only)"],
    Action.AUDIT: ["admin", "auditor"],
    Action.WRITE: ["admin"],
}

_WRITE_PARAMS = [
    _ref("parameters", "service"),
    _ref("parameters", "IfMatch"),
    _ref("parameters", "IdempotencyKey"),
    _ref("parameters", "XChangeReason"),
    _ref("parameters", "reason"),
]

_WRITE_RESPONSES = {
    "200": _ok("Appended to the ledger and projected", "WriteResult", _WRITE_HEADERS),
    "202": _ok(
        "Appended to the ledger (acknowledged by JetStream) but not projected within "
        "API_WRITE_WAIT_MS; reads by this client still see it",
        "WriteResult",
        {
            **_WRITE_HEADERS,
            "X-Projection-Lag": {"description": "pending", "schema": {"type": "string"}},
        },
    ),
}

OPERATIONS: dict[str, dict[str, Any]] = {
    "healthz": {
        "summary": "Liveness",
        "tags": ["operations"],
        "responses": {"200": _ok("The process answers", "Health")},
    },
    "readyz": {
        "summary": "Readiness: NATS connected, PostgreSQL reachable, projector running and caught up",
        "tags": ["operations"],
        "responses": {
            "200": _ok("Ready", "Readiness"),
            "503": _ok("Not ready; `reasons` says why", "Readiness"),
        },
    },
    "metrics": {
        "summary": "Prometheus metrics (text exposition format)",
        "tags": ["operations"],
        "responses": {
            "200": {
                "description": "Prometheus text format 0.0.4",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    },
    "openapi": {
        "summary": "This document",
        "tags": ["operations"],
        "responses": {
            "200": {"description": "OpenAPI 3.1", "content": _json_content({"type": "object"})}
        },
    },
    "config.list": {
        "summary": "Every service with its current version",
        "tags": ["config"],
        "responses": {"200": _ok("Services", "ServiceList"), **_errors(401, 403, 503)},
    },
    "snapshot": {
        "summary": "Every service's config as of one instant (fleet-wide time travel)",
        "tags": ["time travel"],
        "parameters": [_ref("parameters", "atSnapshot")],
        "responses": {"200": _ok("Snapshot", "Snapshot"), **_errors(400, 401, 403, 503)},
    },
    "config.history": {
        "summary": "Versions of one service, newest first, paginated",
        "tags": ["time travel"],
        "parameters": [_ref("parameters", "service"), _ref("parameters", "limit"), _ref("parameters", "cursor")],
        "responses": {"200": _ok("One page", "HistoryPage"), **_errors(400, 401, 403, 404, 503)},
    },
    "config.get": {
        "summary": "Current config of a service, or as of a version or an instant",
        "description": "Without `version`/`at` the answer reflects at least every write this API "
        "instance acknowledged for the service, and `X-Min-Seq`/`min_seq` when given.",
        "tags": ["config"],
        "parameters": [
            _ref("parameters", "service"),
            _ref("parameters", "version"),
            _ref("parameters", "at"),
            _ref("parameters", "minSeq"),
            _ref("parameters", "XMinSeq"),
            _ref("parameters", "IfNoneMatch"),
        ],
        "responses": {
            "200": _ok(
                "The config document with its version",
                "CurrentConfig",
                {
                    **_ETAG_HEADER,
                    "X-Served-From": {
                        "description": "stream or postgres when not answered from the projection "
                        "cache (the projection was behind this reader's writes, or is down)",
                        "schema": {"type": "string", "enum": ["stream", "postgres"]},
                    },
                },
            ),
            "304": {"description": "If-None-Match matched the current ETag", "headers": _ETAG_HEADER},
            **_errors(400, 401, 403, 404, 503),
        },
    },
    "config.post": {
        "summary": "Replace the whole config document (creates the service if new)",
        "tags": ["config"],
        "parameters": _WRITE_PARAMS,
        "requestBody": {
            "required": True,
            "content": _json_content(_ref("schemas", "ConfigDocument")),
        },
        "responses": {**_WRITE_RESPONSES, **_errors(400, 401, 403, 409, 413, 415, 422, 503)},
    },
    "config.patch": {
        "summary": "RFC 7396 merge patch of the current document",
        "tags": ["config"],
        "parameters": _WRITE_PARAMS,
        "requestBody": {
            "required": True,
            "content": {
                "application/merge-patch+json": {"schema": _ref("schemas", "ConfigDocument")},
                "application/json": {"schema": _ref("schemas", "ConfigDocument")},
            },
        },
        "responses": {**_WRITE_RESPONSES, **_errors(400, 401, 403, 404, 409, 413, 415, 422, 503)},
    },
    "config.delete": {
        "summary": "Tombstone the service (its history stays)",
        "tags": ["config"],
        "parameters": _WRITE_PARAMS,
        "responses": {**_WRITE_RESPONSES, **_errors(400, 401, 403, 409, 413, 422, 503)},
    },
    "config.rollback": {
        "summary": "Roll back to an earlier version or to the state at an instant (a new version)",
        "tags": ["config"],
        "parameters": _WRITE_PARAMS,
        "requestBody": {"required": True, "content": _json_content(_ref("schemas", "RollbackRequest"))},
        "responses": {**_WRITE_RESPONSES, **_errors(400, 401, 403, 404, 409, 413, 415, 422, 503)},
    },
    "config.diff": {
        "summary": "Key-level diff between two versions or instants",
        "tags": ["time travel"],
        "parameters": [_ref("parameters", "service"), _ref("parameters", "from"), _ref("parameters", "to")],
        "responses": {"200": _ok("Added, removed and changed paths", "Diff"), **_errors(400, 401, 403, 404, 503)},
    },
    "config.watch": {
        "summary": "Server-Sent Events: the current state, then one event per version",
        "description": "`id:` is the version. Reconnect with `Last-Event-ID` to resume without a "
        "gap. Events: `config` (the state when the watch starts), `change` (each new version, "
        "with its diff). Comments (`: keepalive`) keep the connection alive.",
        "tags": ["config"],
        "parameters": [
            _ref("parameters", "service"),
            _ref("parameters", "LastEventID"),
            _ref("parameters", "lastEventId"),
        ],
        "responses": {
            "200": {
                "description": "An endless text/event-stream; each `data:` is a WatchEvent",
                "content": {
                    "text/event-stream": {
                        "schema": {"type": "string"},
                        "x-event-data": _ref("schemas", "WatchEvent"),
                    }
                },
            },
            **_errors(400, 401, 403, 503),
        },
    },
}

_TIME = {"type": "string", "format": "date-time"}
_VERSION = {"type": "integer", "minimum": 1}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "examples": ["invalid_config", "version_conflict"]},
                    "message": {"type": "string"},
                    "details": {
                        "description": "Machine-readable details; `rule` names the validation rule "
                        "(e.g. json.duplicate_key, secret.key_name, document.size)",
                    },
                },
            }
        },
    },
    "ConfigDocument": {
        "type": "object",
        "description": "Any JSON object: no NaN/Infinity, integers within ±2^53, nesting ≤ 32, "
        "≤ 256 KiB, no duplicate keys, no credential-looking values (reference them as \"${VAR}\")",
        "additionalProperties": True,
        "examples": [{"operational": {"batch_size": 200, "gap_check_interval_hours": 1}}],
    },
    "CurrentConfig": {
        "type": "object",
        "required": ["service", "version", "config"],
        "properties": {
            "service_name": {"type": "string"},
            "service": {"type": "string"},
            "version": _VERSION,
            "config": _ref("schemas", "ConfigDocument"),
            "kind": {"type": "string", "enum": ["replaced", "patched", "rolled_back", "deleted"]},
            "hash": {"type": "string"},
            "actor": {"type": "string"},
            "reason": {"type": "string"},
            "updated_at": _TIME,
            "stored_at": _TIME,
            "stream_seq": {"type": "integer"},
        },
    },
    "WriteResult": {
        "type": "object",
        "required": ["status", "message", "version"],
        "properties": {
            "status": {"type": "string", "const": "success"},
            "message": {"type": "string", "examples": ["Config updated and broadcasted"]},
            "service": {"type": "string"},
            "version": _VERSION,
            "seq": {"type": "integer", "description": "stream sequence of the event"},
            "kind": {"type": "string"},
            "event_id": {"type": "string", "format": "uuid"},
            "hash": {"type": "string"},
            "projected": {"type": "boolean"},
            "duplicate": {"type": "boolean", "description": "an idempotent retry: nothing appended"},
        },
    },
    "Version": {
        "type": "object",
        "properties": {
            "version": _VERSION,
            "kind": {"type": "string"},
            "change": {"description": "what the admin asked for (document, patch, rollback target)"},
            "config": {"type": ["object", "null"]},
            "actor": {"type": "string"},
            "reason": {"type": "string"},
            "occurred_at": _TIME,
            "stored_at": _TIME,
            "stream_seq": {"type": "integer"},
            "event_id": {"type": "string"},
            "prev_hash": {"type": "string"},
            "hash": {"type": "string"},
        },
    },
    "HistoryPage": {
        "type": "object",
        "required": ["service", "versions", "next_cursor"],
        "properties": {
            "service": {"type": "string"},
            "versions": {"type": "array", "items": _ref("schemas", "Version")},
            "next_cursor": {"type": ["string", "null"], "description": "pass as ?cursor= for the next page"},
        },
    },
    "DiffSide": {
        "type": ["object", "null"],
        "properties": {
            "version": _VERSION,
            "kind": {"type": "string"},
            "deleted": {"type": "boolean"},
            "stored_at": _TIME,
        },
    },
    "Diff": {
        "type": "object",
        "properties": {
            "service": {"type": "string"},
            "from": _ref("schemas", "DiffSide"),
            "to": _ref("schemas", "DiffSide"),
            "added": {"type": "array", "items": {"type": "object", "properties": {"path": {"type": "string"}, "value": {}}}},
            "removed": {"type": "array", "items": {"type": "object", "properties": {"path": {"type": "string"}, "value": {}}}},
            "changed": {
                "type": "array",
                "items": {"type": "object", "properties": {"path": {"type": "string"}, "from": {}, "to": {}}},
            },
        },
    },
    "Snapshot": {
        "type": "object",
        "properties": {
            "at": _TIME,
            "projected_seq": {"type": "integer"},
            "services": {"type": "object", "additionalProperties": {"type": "object"}},
            "deleted": {"type": "array", "items": {"type": "string"}},
        },
    },
    "ServiceList": {
        "type": "object",
        "properties": {
            "services": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "service": {"type": "string"},
                        "version": _VERSION,
                        "kind": {"type": "string"},
                        "deleted": {"type": "boolean"},
                        "updated_at": _TIME,
                        "hash": {"type": "string"},
                    },
                },
            },
            "projected_seq": {"type": "integer"},
        },
    },
    "RollbackRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "to_version": _VERSION,
            "to_time": _TIME,
            "reason": {"type": "string"},
        },
        "oneOf": [{"required": ["to_version"]}, {"required": ["to_time"]}],
    },
    "WatchEvent": {
        "type": "object",
        "properties": {
            "service": {"type": "string"},
            "version": _VERSION,
            "kind": {"type": "string"},
            "config": {"type": ["object", "null"]},
            "actor": {"type": "string"},
            "reason": {"type": "string"},
            "occurred_at": _TIME,
            "stored_at": _TIME,
            "stream_seq": {"type": "integer"},
            "hash": {"type": "string"},
            "diff": {"oneOf": [_ref("schemas", "Diff"), {"type": "null"}]},
        },
    },
    "Health": {"type": "object", "properties": {"status": {"type": "string"}}},
    "Readiness": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ready", "not_ready"]},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "checks": {"type": "object"},
        },
    },
}


def _param(name: str, where: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "description": description, "required": required, "schema": schema}


_PARAMETERS: dict[str, Any] = {
    "service": _param(
        "service", "path", "Service name", {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"}, True
    ),
    "version": _param("version", "query", "A past version", _VERSION),
    "at": _param("at", "query", "As of this instant (RFC 3339, stream store time)", _TIME),
    "atSnapshot": _param("at", "query", "As of this instant (RFC 3339); default now", _TIME),
    "minSeq": _param("min_seq", "query", "Reflect at least this stream sequence", {"type": "integer", "minimum": 0}),
    "XMinSeq": _param("X-Min-Seq", "header", "Reflect at least this stream sequence", {"type": "string"}),
    "IfNoneMatch": _param("If-None-Match", "header", "ETag(s) the client holds → 304", {"type": "string"}),
    "IfMatch": _param(
        "If-Match", "header", 'Only if the current version is this one, e.g. "7" ("0": only if new; *: only if it exists)',
        {"type": "string"},
    ),
    "IdempotencyKey": _param(
        "Idempotency-Key", "header", "Retries with the same key return the original result and append nothing",
        {"type": "string", "maxLength": 200},
    ),
    "XChangeReason": _param("X-Change-Reason", "header", "Why (recorded in the event)", {"type": "string", "maxLength": 2000}),
    "reason": _param("reason", "query", "Why (alternative to X-Change-Reason)", {"type": "string", "maxLength": 2000}),
    "limit": _param("limit", "query", "Page size (default 50)", {"type": "integer", "minimum": 1, "maximum": 500}),
    "cursor": _param("cursor", "query", "next_cursor of the previous page", {"type": "string"}),
    "from": _param("from", "query", "A version or an RFC 3339 instant (default: the version before `to`)", {"type": "string"}),
    "to": _param("to", "query", "A version or an RFC 3339 instant (default: current)", {"type": "string"}),
    "LastEventID": _param("Last-Event-ID", "header", "Resume after this version", {"type": "string"}),
    "lastEventId": _param("last_event_id", "query", "Resume after this version (for clients that cannot set headers)", {"type": "integer", "minimum": 0}),
}

_ERROR_TEXT = {
    400: "Malformed request: invalid JSON (syntax, encoding, duplicate key, NaN), bad service name, bad parameter",
    401: "Missing or invalid bearer token",
    403: "The token's role may not do this",
    404: "Config not found for service: <name> (or that version/instant)",
    409: "If-Match did not hold; `details.current_version` is the current version",
    413: "Body larger than API_MAX_BODY",
    415: "Wrong Content-Type",
    422: "A well-formed document breaks a rule (secret-looking value, depth, size, …) or a change cannot apply",
    503: "NATS or PostgreSQL unavailable (Retry-After is set)",
}


def _responses() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, text in _ERROR_TEXT.items():
        resp: dict[str, Any] = {"description": text, "content": _json_content(_ref("schemas", "Error"))}
        if status == 503:
            resp["headers"] = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}}
        if status == 401:
            resp["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        out[f"E{status}"] = resp
    return out


def _from_contract(route: Any) -> dict[str, Any]:
    """A route without a hand-written entry: its contract (summary, body, responses)."""
    params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
              for n in re.findall(r"\{(\w+)", route.path)]
    op: dict[str, Any] = {"summary": route.summary, "parameters": params, "responses": {}}
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": _json_content(route.body.model_json_schema())}
    for status, model in route.responses.items():
        body = {"content": _json_content(model.model_json_schema())} if model is not None else {}
        op["responses"][str(status)] = {"description": route.summary, **body}
    op["responses"].update(_errors(400, 401, 403, 404, 409, 422, 503))
    return op


def build_openapi(*, auth: bool = True, server_url: str | None = None) -> dict[str, Any]:
    """The whole document; every route of ``api.routes.ROUTES`` is described."""
    from .routes import ROUTES  # routes import the handlers; keep this module light

    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        op = dict(OPERATIONS.get(route.name) or _from_contract(route))
        op["operationId"] = route.name.replace(".", "_")
        roles = _ROLES[route.action]
        if route.action is Action.PUBLIC:
            op["security"] = []
        else:
            op["security"] = [{"bearerAuth": []}]
            op["x-roles"] = roles
            op["description"] = (op.get("description", "") + f"\n\nRoles: {', '.join(roles)}.").strip()
        paths.setdefault(re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path), {})[route.method.lower()] = op
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Config Ledger API",
            "version": "1.0.0",
            "description": "Event-sourced configuration: writes are appended to a NATS JetStream "
            "ledger, reads come from the PostgreSQL projection. Errors are "
            '`{"error": {"code", "message", "details"}}`.'
            + ("" if auth else " Authentication is OFF on this instance (development stack)."),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Roles: admin (everything), auditor (read all, list, history, "
                    "diff, snapshot, watch), service:<name> (read and watch its own config)",
                }
            },
            "schemas": _SCHEMAS,
            "parameters": _PARAMETERS,
            "responses": _responses(),
        },
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": "config", "description": "Read and change configs"},
            {"name": "time travel", "description": "History, versions, instants, diff, snapshot"},
            {"name": "operations", "description": "Health, readiness, metrics, this document"},
        ],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
