"""The route table: method, path, handler, name and the access rule of every endpoint.

Order matters where paths overlap: ``/api/v1/config/history/{service}`` is registered before
``/api/v1/config/{service}/…``, so a service named ``history`` cannot use diff/watch/rollback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

from . import config_handlers as cfg
from . import ops_handlers as ops
from .auth import Action
from .sse import watch

__all__ = ["Route", "ROUTES", "route_defs"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    name: str
    action: Action
    # The contract of the route, from which the OpenAPI document is generated:
    summary: str = ""
    body: type[BaseModel] | None = None  # the JSON request body
    query: type[BaseModel] | None = None  # the query parameters
    responses: Mapping[int, type[BaseModel] | None] = field(default_factory=dict)  # status -> body


ROUTES: list[Route] = [
    Route("GET", "/healthz", ops.healthz, "healthz", Action.PUBLIC),
    Route("GET", "/readyz", ops.readyz, "readyz", Action.PUBLIC),
    Route("GET", "/metrics", ops.metrics, "metrics", Action.PUBLIC),
    Route("GET", "/api/v1/openapi.json", ops.openapi, "openapi", Action.PUBLIC),
    Route("GET", "/api/v1/config", cfg.list_configs, "config.list", Action.AUDIT),
    Route("GET", "/api/v1/snapshot", cfg.snapshot, "snapshot", Action.AUDIT),
    Route("GET", "/api/v1/config/history/{service}", cfg.history, "config.history", Action.AUDIT),
    Route("GET", "/api/v1/config/{service}/history", cfg.history, "config.history_v2", Action.AUDIT,
          summary="A service's versions, newest first, each with its key diff (beside the reference "
                  "path /api/v1/config/history/{service}); cursor pagination with a Link header"),
    Route("GET", "/api/v1/config/{service}", cfg.get_config, "config.get", Action.READ),
    Route("PUT", "/api/v1/config/{service}", cfg.put_config, "config.put", Action.WRITE,
          summary="Replace the whole document (as the reference POST); 201 + Location when it creates "
                  "the service; a document equal to the current one answers 200 \"unchanged\" and "
                  "appends nothing"),
    Route("POST", "/api/v1/config/{service}", cfg.post_config, "config.post", Action.WRITE),
    Route("PATCH", "/api/v1/config/{service}", cfg.patch_config, "config.patch", Action.WRITE),
    Route("DELETE", "/api/v1/config/{service}", cfg.delete_config, "config.delete", Action.WRITE),
    Route("POST", "/api/v1/config/{service}/rollback", cfg.rollback_config, "config.rollback", Action.WRITE),
    Route("GET", "/api/v1/config/{service}/diff", cfg.diff_config, "config.diff", Action.AUDIT),
    Route("GET", "/api/v1/config/{service}/watch", watch, "config.watch", Action.WATCH),
]


def route_defs() -> list[web.RouteDef]:
    """aiohttp route definitions; GET routes also answer HEAD (except the endless watch)."""
    defs = []
    for r in ROUTES:
        if r.method == "GET":
            defs.append(web.get(r.path, r.handler, name=r.name, allow_head=r.handler is not watch))
        else:
            defs.append(web.route(r.method, r.path, r.handler, name=r.name))
    return defs
