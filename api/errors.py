"""HTTP errors: the one JSON error shape and the ledger-error → status mapping.

Every error leaves as ``{"error": {"code": "...", "message": "...", "details": ...}}``. The HTTP-only
errors below extend the project's one hierarchy (``ledger.errors``) rather than starting another;
anything that is not a ``LedgerError`` or an aiohttp HTTP exception is a bug: 500, a generic
message, and the traceback in the log only.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web

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
    "BadRequest",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "Unauthorized",
    "Forbidden",
    "Unprocessable",
    "PARSE_RULES",
    "status_of",
    "error_body",
    "error_response",
    "ledger_error_response",
    "response_for",
]

log = logging.getLogger("api")

#: Rules ``ledger.canonical.parse_strict`` raises: the body is not well-formed JSON (400).
#: Every other ``InvalidConfig`` rule is about a well-formed document that breaks a rule (422).
PARSE_RULES = frozenset({"json.syntax", "json.encoding", "json.duplicate_key", "json.non_finite"})

RETRY_AFTER_SECONDS = "1"


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
        shown = got[:100] or "(none)"
        super().__init__(
            f"Content-Type {shown!r} is not accepted here; use {' or '.join(allowed)}",
            details={"rule": "body.content_type", "allowed": list(allowed)},
        )


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


def error_body(code: str, message: str, details: Any = None) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "details": details}})


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=error_body(code, message, details),
        content_type="application/json",
        headers=headers,
    )


def ledger_error_response(exc: LedgerError) -> web.Response:
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
    return error_response(status, _code_of(exc), message, exc.details, headers)


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
        return ledger_error_response(exc)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
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
