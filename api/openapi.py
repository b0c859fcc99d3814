"""The OpenAPI 3.1 document, generated from the route table and the pydantic models it names.

Each ``api.routes.Route`` carries its contract (``summary``, ``body``, ``query``, ``responses``:
status → model, None for no body); JSON Schemas come from the models (``api.contract``,
``api.errors.ErrorBody``), so limits and event kinds appear as the code enforces them. Every
operation also lists what the server itself may answer to any request (``SERVER_RESPONSES``:
a malformed request, a request too slow to arrive, too many connections; ``api.server``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ledger.validate import SERVICE_NAME_RE

from .auth import Action
from .errors import ErrorBody

if TYPE_CHECKING:
    from .routes import Route

__all__ = ["build_openapi", "SERVER_RESPONSES", "ROLES"]

_REF = "#/components/schemas/{model}"
JSON = "application/json"

#: What the server answers to any request before a route sees it (``api.server``).
SERVER_RESPONSES: dict[int, type[BaseModel]] = {400: ErrorBody, 408: ErrorBody, 429: ErrorBody}

ROLES = {
    Action.PUBLIC: [],
    Action.READ: ["admin", "auditor", "service:<name> (its own service only)"],
    Action.WATCH: ["admin", "auditor", "service:<name> (its own service only)"],
    Action.AUDIT: ["admin", "auditor"],
    Action.WRITE: ["admin"],
}

_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "service": {"type": "string", "pattern": SERVICE_NAME_RE.pattern},
}


def _media_type(model: type[BaseModel]) -> str:
    return str(getattr(model, "media_type", JSON))


def _request_media_types(model: type[BaseModel]) -> Sequence[str]:
    return tuple(getattr(model, "request_media_types", (_media_type(model),)))


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``X | None`` as a parameter is just ``X`` (an absent parameter is the None)."""
    out = {k: v for k, v in schema.items() if k not in ("anyOf", "default", "title")}
    options = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
    if len(options) == 1:
        out = {**options[0], **out}
    elif options:
        out["anyOf"] = options
    return out


def _parameters(route: Route, defs: dict[str, Any]) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True,
         "schema": _PATH_SCHEMAS.get(name, {"type": "string"})}
        for name in _PATH_PARAM.findall(route.path)
    ]
    if route.query is None:
        return params
    schema = route.query.model_json_schema(by_alias=True, ref_template=_REF)
    defs.update(schema.pop("$defs", {}))
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        where = prop.pop("in", "query")
        description = prop.pop("description", None)
        param: dict[str, Any] = {"name": name, "in": where, "required": name in required,
                                 "schema": _without_null(prop)}
        if description:
            param["description"] = description
        params.append(param)
    return params


def _ref(model: type[BaseModel], refs: dict[tuple[type[BaseModel], str], Any], mode: str) -> Any:
    return refs[(model, mode)]


def _response(status: int, model: type[BaseModel] | None, refs: dict[Any, Any]) -> dict[str, Any]:
    description = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else str(status)
    out: dict[str, Any] = {"description": description}
    if model is None:
        return out
    if model.__doc__ and model is not ErrorBody:
        out["description"] = f"{description}: {model.__doc__.strip().splitlines()[0]}"
    content: dict[str, Any] = {"schema": _ref(model, refs, "serialization")}
    event_data = getattr(model, "event_data", None)
    if event_data is not None:
        content["schema"] = _event_schema(model, _ref(event_data, refs, "serialization"))
    out["content"] = {_media_type(model): content}
    headers = getattr(model, "response_headers", None)
    if headers:
        out["headers"] = {name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()}
    return out


def _event_schema(model: type[BaseModel], data: Any) -> dict[str, Any]:
    """One Server-Sent Event (OpenAPI 3.1: the schema of an event stream describes each event);
    ``data`` is JSON of the model's ``event_data``."""
    names = list(getattr(model, "event_names", ()))
    return {
        "type": "object",
        "description": (model.__doc__ or "").strip(),
        "properties": {
            "id": {"type": "string"},
            "event": {"type": "string", **({"enum": names} if names else {})},
            "data": {"type": "string", "contentMediaType": JSON, "contentSchema": data},
            "retry": {"type": "integer"},
        },
    }


def _models(routes: Iterable[Route]) -> list[tuple[type[BaseModel], str]]:
    wanted: dict[tuple[type[BaseModel], str], None] = {(ErrorBody, "serialization"): None}
    for route in routes:
        if route.body is not None:
            wanted[(route.body, "validation")] = None
        for model in route.responses.values():
            if model is not None:
                wanted[(model, "serialization")] = None
                event_data = getattr(model, "event_data", None)
                if event_data is not None:
                    wanted[(event_data, "serialization")] = None
    return list(wanted)  # type: ignore[arg-type]


def _operation(route: Route, refs: dict[Any, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if not route.responses:
        raise ValueError(f"route {route.name} declares no responses: fill Route.responses")
    op: dict[str, Any] = {"operationId": route.name.replace(".", "_"), "summary": route.summary or route.name}
    doc = (route.handler.__doc__ or "").strip()
    if doc:
        op["description"] = doc
    params = _parameters(route, defs)
    if params:
        op["parameters"] = params
    if route.body is not None:
        schema = _ref(route.body, refs, "validation")
        op["requestBody"] = {
            "required": True,
            "content": {media: {"schema": schema} for media in _request_media_types(route.body)},
        }
    statuses = dict(route.responses)
    for status, model in SERVER_RESPONSES.items():
        statuses.setdefault(status, model)
    op["responses"] = {str(s): _response(s, m, refs) for s, m in sorted(statuses.items())}
    if route.action is Action.PUBLIC:
        op["security"] = []
    else:
        roles = ROLES[route.action]
        op["security"] = [{"bearerAuth": []}]
        op["x-roles"] = roles
        op["description"] = (op.get("description", "") + f"\n\nRoles: {', '.join(roles)}.").strip()
    return op


def build_openapi(
    *, auth: bool = True, server_url: str | None = None, routes: Sequence[Route] | None = None
) -> dict[str, Any]:
    """The whole document for ``routes`` (default: ``api.routes.ROUTES``)."""
    if routes is None:
        from .routes import ROUTES  # routes import the handlers; keep this module light

        routes = ROUTES
    keyed, top = models_json_schema(_models(routes), ref_template=_REF)  # type: ignore[arg-type]
    defs: dict[str, Any] = dict(top.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, keyed, defs)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Config Ledger API",
            "version": "1.0.0",
            "description": "Event-sourced configuration: writes are appended to a NATS JetStream "
            "ledger, reads come from the PostgreSQL projection. Every error has the shape of "
            "the `ErrorBody` schema; `error.details.rule` names the rule that was broken."
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
            "schemas": defs,
        },
        "security": [{"bearerAuth": []}],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
