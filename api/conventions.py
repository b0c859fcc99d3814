"""HTTP conventions around every handler: request ids, trace context, CORS, YAML by content
negotiation, and the access log (called by ``api.middleware``; pure helpers, no state).

- ``X-Request-Id``: taken from the request when it is a sane token, else generated; echoed on
  the response, written in the access log and in the event a write appends.
- ``traceparent`` (W3C Trace Context): accepted when well-formed, echoed, and recorded in the
  appended event's ``metadata`` so a change can be followed from the caller's trace.
- CORS: ``API_CORS_ORIGINS`` (comma-separated, or ``*``) lists the browser origins allowed;
  preflight ``OPTIONS`` answers 204 (with ``Allow`` even when CORS is off).
- ``Accept: application/yaml`` turns a JSON answer into YAML (errors stay problem+json).
- Access log: one line per request on logger ``api.access``, as JSON with ``LOG_FORMAT=json``.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from aiohttp import web

__all__ = ["request_ids", "preflight", "add_cors", "negotiate_yaml", "access_log", "JsonFormatter",
           "configure_logging"]

access_logger = logging.getLogger("api.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
_ALLOW_HEADERS = ("Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Change-Reason, "
                  "X-Min-Seq, X-Request-Id, traceparent, Last-Event-ID")
_EXPOSE_HEADERS = "ETag, Location, Link, Retry-After, X-Request-Id, X-Ledger-Seq, X-Projection-Lag, traceparent"


def request_ids(request: web.Request) -> dict[str, str]:
    """``{"request_id": ..., "traceparent": ...}`` (the latter only when the caller sent a valid one)."""
    given = request.headers.get("X-Request-Id", "")
    ids = {"request_id": given if _REQUEST_ID.match(given) else uuid.uuid4().hex}
    trace = request.headers.get("traceparent", "").strip().lower()
    if _TRACEPARENT.match(trace):
        ids["traceparent"] = trace
    return ids


def _allowed_origin(request: web.Request, origins: frozenset[str]) -> str | None:
    origin = request.headers.get("Origin")
    if not origin or not origins:
        return None
    if "*" in origins:
        return "*"
    return origin if origin.rstrip("/") in origins else None


def preflight(request: web.Request, origins: frozenset[str]) -> web.Response:
    """``OPTIONS``: 204 with ``Allow``, plus the CORS grant for an allowed origin."""
    headers = {"Allow": _METHODS}
    origin = _allowed_origin(request, origins)
    if origin is not None:
        headers.update({
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": _METHODS,
            "Access-Control-Allow-Headers": _ALLOW_HEADERS,
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        })
    return web.Response(status=204, headers=headers)


def add_cors(request: web.Request, response: web.StreamResponse, origins: frozenset[str]) -> None:
    origin = _allowed_origin(request, origins)
    if origin is not None and not response.prepared:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = _EXPOSE_HEADERS
        response.headers.add("Vary", "Origin")


def wants_yaml(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    if "yaml" not in accept:
        return False
    ranked = [part.split(";")[0].strip() for part in accept.split(",")]
    first = next((t for t in ranked if t in YAML_TYPES or t in ("application/json", "*/*")), "")
    return first in YAML_TYPES


def negotiate_yaml(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """A JSON success answer as YAML when the client prefers it."""
    if not isinstance(response, web.Response) or response.content_type != "application/json" \
            or response.status >= 300 or not isinstance(response.body, bytes) or not wants_yaml(request):
        return response
    import yaml

    text = yaml.safe_dump(json.loads(response.body), sort_keys=False, allow_unicode=True)
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")}
    headers["Vary"] = "Accept"
    return web.Response(status=response.status, text=text, content_type="application/yaml", headers=headers)


def access_log(request: web.Request, status: int, seconds: float, ids: dict[str, str], route: str,
               actor: str | None) -> None:
    if not access_logger.isEnabledFor(logging.INFO):
        return
    access_logger.info(
        "%s %s %d %.1fms", request.method, request.path_qs, status, seconds * 1000,
        extra={"http": {
            "method": request.method, "path": request.path, "route": route, "status": status,
            "duration_ms": round(seconds * 1000, 3), "remote": request.remote,
            "actor": actor, **ids,
        }},
    )


class JsonFormatter(logging.Formatter):
    """``LOG_FORMAT=json``: one JSON object per line (time, level, logger, message, http fields)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        http = getattr(record, "http", None)
        if isinstance(http, dict):
            data.update(http)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(level: str, log_format: str) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
