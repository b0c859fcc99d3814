"""HTTP errors: the one JSON error shape and the ledger-error → status mapping.

Every error leaves as RFC 9457 ``application/problem+json`` (``type``, ``title``, ``status``,
``detail``, ``instance``) that keeps ``{"error": {"code": "...", "message": "...", "details": ...}}``
for existing clients. The HTTP-only
errors below extend the project's one hierarchy (``ledger.errors``) rather than starting another;
anything that is not a ``LedgerError`` or an aiohttp HTTP exception is a bug: 500, a generic
message, and the traceback in the log only.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import orjson
from aiohttp import web
from pydantic import BaseModel, Field

from ledger.errors import (
    FleetConflict,
    InvalidChange,
    InvalidConfig,
    InvalidServiceName,
    LedgerError,
    NotFound,
    ProjectionDiverged,
    StoreTimeout,
    Unavailable,
    UsageError,
    VersionConflict,
    WorldError,
)

__all__ = [
    "ErrorBody",
    "BadRequest",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "Unauthorized",
    "Forbidden",
    "Unprocessable",
    "RequestTimeout",
    "PARSE_RULES",
    "status_of",
    "error_body",
    "PROBLEM_JSON",
    "error_response",
    "ledger_error_response",
    "response_for",
]

log = logging.getLogger("api")

#: Rules ``ledger.canonical.parse_strict`` raises: the body is not well-formed JSON (400).
#: Every other ``InvalidConfig`` rule is about a well-formed document that breaks a rule (422).
PARSE_RULES = frozenset({"json.syntax", "json.encoding", "json.duplicate_key", "json.non_finite"})

RETRY_AFTER_SECONDS = "1"


class ErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_config", "version_conflict"])
    message: str
    details: Any = Field(None, description="Machine-readable; `rule` names the rule that was broken "
                         "(e.g. json.duplicate_key, secret.key_name, instant.range)")


class ErrorBody(BaseModel):
    """The one error shape (``error_body``): RFC 9457 problem details plus the ``error`` object
    existing clients read; the OpenAPI document is generated from it."""

    media_type: ClassVar[str] = "application/problem+json"
    type: str = Field(description="A URI naming the problem kind")
    title: str
    detail: str
    status: int | None = None
    instance: str | None = Field(None, description="The request path")
    error: ErrorDetail


class BadRequest(UsageError):
    """A malformed request (query parameter, header). ``rule`` names what was wrong."""

    code = "bad_request"

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message, details={"rule": rule})
        self.rule = rule


class Unprocessable(UsageError):
    """A well-formed request the server will not act on (e.g. a missing required reason)."""

    code = "unprocessable"

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message, details={"rule": rule})
        self.rule = rule


class PayloadTooLarge(UsageError):
    code = "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"request body is larger than {limit} bytes", details={"rule": "body.size", "limit": limit}
        )


class UnsupportedMediaType(UsageError):
    code = "unsupported_media_type"

    def __init__(self, got: str, allowed: tuple[str, ...]) -> None:
        # The header's value is not repeated: no request header value is ever echoed.
        what = "this Content-Type is" if got else "a body without Content-Type is"
        super().__init__(
            f"{what} not accepted here; use {' or '.join(allowed)}",
            details={"rule": "body.content_type", "allowed": list(allowed)},
        )


class RequestTimeout(UsageError):
    """The client did not send its request in time (``api.server``, ``api.body``)."""

    code = "request_timeout"

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message, details={"rule": rule})
        self.rule = rule


class Unauthorized(UsageError):
    code = "unauthorized"


class Forbidden(UsageError):
    code = "forbidden"


def status_of(exc: LedgerError) -> int:
    """The HTTP status for an error of the hierarchy."""
    if isinstance(exc, PayloadTooLarge):
        return 413
    if isinstance(exc, UnsupportedMediaType):
        return 415
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, RequestTimeout):
        return 408
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, Unprocessable):
        return 422
    if isinstance(exc, InvalidServiceName):
        return 400
    if isinstance(exc, InvalidConfig):
        return 400 if exc.rule in PARSE_RULES else 422
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, InvalidChange):
        return 422
    if isinstance(exc, VersionConflict | FleetConflict):
        return 409
    if isinstance(exc, UsageError):
        return 400
    if isinstance(exc, Unavailable | ProjectionDiverged | WorldError):
        return 503
    return 503  # other LedgerErrors: the store refused or gave up (e.g. endless contention)


def _code_of(exc: LedgerError) -> str:
    if isinstance(exc, InvalidConfig) and not isinstance(exc, InvalidServiceName):
        return "invalid_json" if exc.rule in PARSE_RULES else "invalid_config"
    return exc.code


PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://config-ledger.dev/problems/"


def error_body(code: str, message: str, details: Any = None, status: int | None = None,
               instance: str | None = None) -> bytes:
    """RFC 9457 problem details, plus the ``error`` object existing clients read."""
    problem: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": code.replace("_", " "), "detail": message}
    if status is not None:
        problem["status"] = status
    if instance:
        problem["instance"] = instance
    problem["error"] = {"code": code, "message": message, "details": details}
    return orjson.dumps(problem)


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None,
    instance: str | None = None,
) -> web.Response:
    """Every error the API sends: ``application/problem+json`` (RFC 9457) keeping the ``error`` object."""
    return web.Response(
        status=status,
        body=error_body(code, message, details, status, instance),
        content_type=PROBLEM_JSON,
        headers=headers,
    )


def ledger_error_response(exc: LedgerError, instance: str | None = None) -> web.Response:
    status = status_of(exc)
    headers: dict[str, str] = {}
    if status == 503:
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="config-ledger"'
    if isinstance(exc, VersionConflict):
        headers["ETag"] = f'"{exc.current}"'
    message = exc.message
    if isinstance(exc, StoreTimeout):
        message += " (retry with the same Idempotency-Key to make the retry safe)"
    return error_response(status, _code_of(exc), message, exc.details, headers, instance)


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def http_exception_response(exc: web.HTTPException) -> web.Response:
    status = exc.status
    code = _HTTP_CODES.get(status, "http_error")
    message = exc.reason
    if status == 404:
        message = "no such endpoint"
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "location")}
    return error_response(status, code, message, None, headers)


def response_for(request: web.Request, exc: Exception) -> web.Response:
    """The JSON error response for ``exc`` raised while handling ``request``; never a traceback.

    Re-raises what must not be answered: HTTP exceptions below 400 (e.g. a 304 raised on
    purpose) and I/O errors after the client went away.
    """
    if isinstance(exc, LedgerError):
        if status_of(exc) >= 500:
            log.warning("%s %s -> %s: %s", request.method, request.path, type(exc).__name__, exc)
        else:  # a client error: one line, no traceback, no header value, no document value
            rule = exc.details.get("rule") if isinstance(exc.details, dict) else None
            log.info("%s %s -> %d %s %s", request.method, request.path, status_of(exc), exc.code, rule or "")
        return ledger_error_response(exc, instance=request.path)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        log.info("%s %s -> %d", request.method, request.path, exc.status)
        return http_exception_response(exc)
    if isinstance(exc, OSError):  # TimeoutError, ConnectionError: a dependency an adapter did not map
        if request.transport is None or request.transport.is_closing():
            raise exc  # the client went away mid-response: nobody to answer
        log.warning("%s %s -> unmapped %s: %s", request.method, request.path, type(exc).__name__, exc)
        return error_response(
            503, "unavailable", f"a backing service is unavailable ({type(exc).__name__})",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    log.error("unexpected error in %s %s", request.method, request.path, exc_info=exc)
    return error_response(500, "internal", "internal server error; the server log has the details")
