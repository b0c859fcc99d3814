"""api.openapi generates the document from any route that fills its contract (pure)."""

from __future__ import annotations

from typing import ClassVar

import pytest
from aiohttp import web
from openapi_spec_validator import validate
from pydantic import BaseModel, Field

from api.auth import Action
from api.contract import CurrentConfig, WatchStream
from api.errors import ErrorBody
from api.openapi import SERVER_RESPONSES, build_openapi
from api.routes import ROUTES, Route
from ledger.event import EventKind
from ledger.validate import DEFAULT_LIMITS


async def _handler(request: web.Request) -> web.Response:
    """A handler's docstring becomes the operation's description."""
    return web.Response()


class Body(BaseModel):
    name: str = Field(max_length=10)
    count: int = Field(ge=0)


class Params(BaseModel):
    page: int | None = Field(None, ge=1, description="page number")
    trace: str | None = Field(None, alias="X-Trace", json_schema_extra={"in": "header"})
    mode: str = Field(description="required query parameter")


class Created(BaseModel):
    media_type: ClassVar[str] = "application/vnd.example+json"
    response_headers: ClassVar[dict[str, str]] = {"Location": "where it is"}
    id: int


def test_a_new_route_is_described_from_its_models() -> None:
    route = Route("PUT", "/api/v1/things/{thing}/{part}", _handler, "things.put", Action.WRITE,
                  summary="Put a thing", body=Body, query=Params,
                  responses={201: Created, 204: None, 404: ErrorBody})
    doc = build_openapi(routes=[route])
    validate(doc)
    op = doc["paths"]["/api/v1/things/{thing}/{part}"]["put"]
    params = {(p["in"], p["name"]): p for p in op["parameters"]}
    assert params[("path", "thing")]["required"] and params[("path", "part")]["required"]
    assert params[("query", "page")] == {"name": "page", "in": "query", "required": False,
                                         "schema": {"type": "integer", "minimum": 1}, "description": "page number"}
    assert params[("header", "X-Trace")]["schema"] == {"type": "string"}
    assert params[("query", "mode")]["required"] is True
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Body"}
    assert doc["components"]["schemas"]["Body"]["properties"]["name"]["maxLength"] == 10
    created = op["responses"]["201"]
    assert "application/vnd.example+json" in created["content"] and "Location" in created["headers"]
    assert "content" not in op["responses"]["204"]
    assert {str(s) for s in SERVER_RESPONSES} <= set(op["responses"])
    assert op["security"] == [{"bearerAuth": []}] and "docstring" in op["description"]


def test_a_route_without_responses_is_refused() -> None:
    with pytest.raises(ValueError, match="declares no responses"):
        build_openapi(routes=[Route("GET", "/x", _handler, "x", Action.PUBLIC)])


def test_kinds_and_limits_come_from_the_code() -> None:
    doc = build_openapi()
    schemas = doc["components"]["schemas"]
    assert schemas["EventKind"]["enum"] == [k.value for k in EventKind]
    assert str(DEFAULT_LIMITS.max_bytes) in schemas["ConfigDocument"]["description"]
    assert str(DEFAULT_LIMITS.max_depth) in schemas["ConfigDocument"]["description"]
    for route in ROUTES:  # every route fills its contract
        assert route.summary and route.responses, route.name
    watch = doc["paths"]["/api/v1/config/{service}/watch"]["get"]["responses"]["200"]["content"]
    event = watch[WatchStream.media_type]["schema"]
    assert event["properties"]["event"]["enum"] == list(WatchStream.event_names)
    assert event["properties"]["data"]["contentSchema"] == {"$ref": "#/components/schemas/WatchEvent"}
    get = doc["paths"]["/api/v1/config/{service}"]["get"]["responses"]["200"]
    assert set(CurrentConfig.response_headers) == set(get["headers"])
