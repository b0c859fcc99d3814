"""The one middleware: measure → authenticate/authorise → handle → map errors to JSON, with the
HTTP conventions of ``api.conventions`` (request id, trace context, CORS, YAML, access log).

One layer instead of three keeps the per-request overhead low on the hot GET path; the pieces
live in their own modules (``api.auth``, ``api.errors``, ``api.metrics``).

Authorisation is declared per route (``api.routes.ROUTES``: each route names its ``Action``) and
enforced here, deny-by-default: a route without a declared action answers 403.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from .auth import DEV_PRINCIPAL, Action, authorize
from .conventions import access_log, add_cors, negotiate_yaml, preflight, request_ids
from .errors import Forbidden, response_for
from .keys import ACTIONS, METRICS, PRINCIPAL, SETTINGS, TOKENS, TRACE

__all__ = ["api_middleware", "route_label"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_label(request: web.Request) -> str:
    """The route template (bounded label values), or ``unmatched``."""
    info = request.match_info
    if info.http_exception is not None:
        return "unmatched"
    resource = info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _authorise(request: web.Request) -> None:
    """Set ``request[PRINCIPAL]``; raise Unauthorized (401) / Forbidden (403)."""
    info = request.match_info
    if info.http_exception is not None:
        return  # 404 / 405: the route's handler raises it
    app = request.app
    action = app[ACTIONS].get(info.route.name or "")
    if action is None:
        raise Forbidden("this endpoint has no access rule")  # deny by default
    if action is Action.PUBLIC:
        return
    if app[SETTINGS].auth:
        principal = app[TOKENS].authenticate(request.headers.get("Authorization"))
    else:
        principal = DEV_PRINCIPAL
    authorize(principal, action, info.get("service"))
    request[PRINCIPAL] = principal


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.perf_counter()
    status = 500
    settings = request.app[SETTINGS]
    ids = request_ids(request)
    request[TRACE] = ids
    try:
        try:
            if request.method == "OPTIONS":
                response: web.StreamResponse = preflight(request, settings.cors)
            else:
                _authorise(request)
                response = await handler(request)
                if "yaml" in request.headers.get("Accept", ""):
                    response = negotiate_yaml(request, response)
        except Exception as exc:  # noqa: BLE001 - mapped to the JSON error shape, or re-raised
            response = response_for(request, exc)
        status = response.status
        if not response.prepared:  # an SSE stream has sent its headers already
            response.headers["X-Request-Id"] = ids["request_id"]
            if "traceparent" in ids:
                response.headers["traceparent"] = ids["traceparent"]
            if settings.cors:
                add_cors(request, response, settings.cors)
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        method = request.method if request.method in _METHODS else "OTHER"
        elapsed = time.perf_counter() - start
        route = route_label(request)
        request.app[METRICS].observe_request(route, method, status, elapsed)
        if settings.access_log:
            principal = request.get(PRINCIPAL)
            access_log(request, status, elapsed, ids, route, principal.identity if principal else None)
