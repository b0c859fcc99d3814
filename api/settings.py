"""API settings: one frozen model, read through the project's layered settings
(``ledger.settings.SettingsModel``)::

    settings = ApiSettings.from_env(os.environ)      # the composition root (python -m api)
    settings = ApiSettings(database_url=..., ledger=LedgerSettings(nats_url=...))   # tests

Every variable, its default and meaning is the table below (``config-ledger settings explain``
prints them with where each value came from); ``NATS_URL`` and ``LEDGER_*`` are the ledger's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from ledger import LedgerSettings, UsageError
from ledger.settings import API_HOST, API_PORT, DATABASE_URL, Setting, SettingsModel

__all__ = ["API_AUTH", "API_TOKENS", "API_TOKENS_FILE", "ApiSettings"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

API_AUTH = Setting("api.auth", "API_AUTH", True, "off only for the embedded dev stack (actor dev)")
API_TOKENS_FILE = Setting("api.tokens_file", "API_TOKENS_FILE", None, "YAML/JSON list of {token|token_sha256, identity, role}")
API_TOKENS = Setting("api.tokens", "API_TOKENS", None, "the same content inline (YAML flow or JSON)")
_SETTINGS = {
    "database_url": DATABASE_URL,
    "host": API_HOST,
    "port": API_PORT,
    "auth": API_AUTH,
    "tokens_file": API_TOKENS_FILE,
    "tokens": API_TOKENS,
    "write_wait_ms": Setting("api.write_wait_ms", "API_WRITE_WAIT_MS", 5000, "how long a query of the projection (history, versions, diff, lists) waits for this process's own latest write"),
    "require_reason": Setting("api.require_reason", "API_REQUIRE_REASON", False, "on: writes without a reason are refused (422)"),
    "max_body": Setting("api.max_body", "API_MAX_BODY", 256 * 1024, "request body limit in bytes (413 above)"),
    "ready_max_lag": Setting("api.ready_max_lag", "API_READY_MAX_LAG", 1000, "/readyz fails when the projector is more events behind"),
    "ready_max_lag_seconds": Setting("api.ready_max_lag_seconds", "API_READY_MAX_LAG_SECONDS", 30.0, "... or its oldest unprojected event is older"),
    "poll_interval_ms": Setting("api.poll_interval_ms", "API_POLL_INTERVAL_MS", 1000, "cache refresh when no NOTIFY arrives"),
    "sse_heartbeat_s": Setting("api.sse_heartbeat_s", "API_SSE_HEARTBEAT_S", 15.0, "SSE keep-alive comment interval"),
    "pg_pool_max": Setting("api.pg_pool_max", "API_PG_POOL_MAX", 10, "PostgreSQL pool size"),
    "follow_history": Setting("api.follow_history", "API_FOLLOW_HISTORY", 64, "versions per service the stream follower keeps in memory for SSE catch-up (older ones are read from the stream)"),
    "workers": Setting("api.workers", "API_WORKERS", 1, "API processes sharing the port (SO_REUSEPORT), each with its own stream follower"),
    "keepalive_timeout_s": Setting("api.keepalive_timeout_s", "API_KEEPALIVE_TIMEOUT_S", 15.0, "an idle connection (no request in progress) is closed after this; SSE streams are exempt"),
    "header_timeout_s": Setting("api.header_timeout_s", "API_HEADER_TIMEOUT_S", 10.0, "a request's line and headers must arrive within this once begun (408)"),
    "body_timeout_s": Setting("api.body_timeout_s", "API_BODY_TIMEOUT_S", 30.0, "a request's body must arrive within this (408)"),
    "max_connections_per_client": Setting("api.max_connections_per_client", "API_MAX_CONNECTIONS_PER_CLIENT", 256, "open connections per client address (429 above; 0: no cap)"),
    "cors_origins": Setting("api.cors_origins", "API_CORS_ORIGINS", "", "comma-separated browser origins allowed (CORS), or *"),
    "access_log": Setting("api.access_log", "API_ACCESS_LOG", True, "one structured log line per request (logger api.access)"),
    "log_format": Setting("log.format", "LOG_FORMAT", "text", "json: every log line is a JSON object"),
    "reuse_port": Setting("api.reuse_port", "API_REUSE_PORT", False, "bind with SO_REUSEPORT (set for each worker by the parent)"),
}


def _flag(value: Any) -> Any:
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    return value


def _default(field: str) -> Any:
    return _SETTINGS[field].default


class ApiSettings(SettingsModel):
    """Everything ``create_app`` needs; immutable."""

    SERVICE: ClassVar[str] = "api"

    database_url: str = ""  # required to serve; empty: not set (check() says so)
    host: str = _default("host")
    port: int = Field(default=_default("port"), ge=0, le=65535)
    auth: bool = _default("auth")
    tokens_file: Path | None = None
    tokens: str | None = None
    write_wait_ms: int = Field(default=_default("write_wait_ms"), ge=0, le=600_000)
    require_reason: bool = _default("require_reason")
    max_body: int = Field(default=_default("max_body"), ge=1024, le=64 * 1024 * 1024)
    ready_max_lag: int = Field(default=_default("ready_max_lag"), ge=0)
    ready_max_lag_seconds: float = Field(default=_default("ready_max_lag_seconds"), ge=0)
    poll_interval_ms: int = Field(default=_default("poll_interval_ms"), ge=10, le=600_000)
    sse_heartbeat_s: float = Field(default=_default("sse_heartbeat_s"), gt=0, le=3600)
    pg_pool_max: int = Field(default=_default("pg_pool_max"), ge=1, le=200)
    follow_history: int = Field(default=_default("follow_history"), ge=1, le=100_000)
    workers: int = Field(default=_default("workers"), ge=1, le=64)
    reuse_port: bool = _default("reuse_port")
    keepalive_timeout_s: float = Field(default=_default("keepalive_timeout_s"), gt=0, le=3600)
    header_timeout_s: float = Field(default=_default("header_timeout_s"), gt=0, le=3600)
    body_timeout_s: float = Field(default=_default("body_timeout_s"), gt=0, le=3600)
    max_connections_per_client: int = Field(default=_default("max_connections_per_client"), ge=0, le=1_000_000)
    cors_origins: str = _default("cors_origins")
    access_log: bool = _default("access_log")
    log_format: str = Field(default=_default("log_format"), pattern="^(text|json)$")
    ledger: LedgerSettings = LedgerSettings()

    FIELDS: ClassVar[Mapping[str, Setting]] = _SETTINGS
    NESTED: ClassVar[Mapping[str, type[SettingsModel]]] = {"ledger": LedgerSettings}

    @field_validator("auth", "require_reason", "reuse_port", "access_log", mode="before")
    @classmethod
    def _flags(cls, value: Any) -> Any:
        return _flag(value)

    @property
    def write_wait(self) -> float:
        return self.write_wait_ms / 1000

    @property
    def cors(self) -> frozenset[str]:
        return frozenset(o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip())

    @property
    def poll_interval(self) -> float:
        return self.poll_interval_ms / 1000

    def check(self) -> None:
        """Refuse combinations that cannot work (called by ``create_app``)."""
        if self.auth and not (self.tokens_file or (self.tokens and self.tokens.strip())):
            raise UsageError(
                "API_AUTH is on but no tokens are configured: set API_TOKENS_FILE or API_TOKENS "
                "(or API_AUTH=off for the embedded dev stack only)"
            )
        if not self.database_url:
            raise UsageError("DATABASE_URL is not set: the API reads the projection from PostgreSQL")
