"""API settings: one frozen model built from an injected environment mapping.

    settings = ApiSettings.from_env(os.environ)      # the composition root (python -m api)
    settings = ApiSettings(database_url=..., ledger=LedgerSettings(nats_url=...))   # tests

Every variable, its default and meaning:

==========================  ==========  ===========================================================
``NATS_URL``, ``LEDGER_*``  see ledger  the ledger (``LedgerSettings.from_env``)
``DATABASE_URL``            local pg    PostgreSQL holding the projector's tables
``API_HOST``                127.0.0.1   address to listen on
``API_PORT``                7000        port to listen on
``API_AUTH``                on          ``off`` only for the embedded dev stack (actor ``dev``)
``API_TOKENS_FILE``         (none)      YAML/JSON list of ``{token|token_sha256, identity, role}``
``API_TOKENS``              (none)      the same content inline (YAML flow or JSON)
``API_WRITE_WAIT_MS``       5000        how long a write waits for the projection (then 202)
``API_REQUIRE_REASON``      off         ``on``: writes without a reason are refused (422)
``API_MAX_BODY``            262144      request body limit in bytes (413 above)
``API_READY_MAX_LAG``       1000        /readyz fails when the projector is more events behind
``API_READY_MAX_LAG_SECONDS`` 30        ... or its oldest unprojected event is older than this
``API_POLL_INTERVAL_MS``    1000        safety-net refresh of the cache when no NOTIFY arrives
``API_SSE_HEARTBEAT_S``     15          SSE keep-alive comment interval
``API_PG_POOL_MAX``         10          PostgreSQL pool size
``API_CORS_ORIGINS``        (none)      comma-separated browser origins allowed (CORS), or ``*``
``API_ACCESS_LOG``          on          one structured log line per request (logger ``api.access``)
``LOG_FORMAT``              text        ``json``: every log line is a JSON object
==========================  ==========  ===========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ledger import LedgerSettings, UsageError
from ledger.settings import settings_error

__all__ = ["ApiSettings"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(value: Any) -> Any:
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    return value


class ApiSettings(BaseModel):
    """Everything ``create_app`` needs; immutable."""

    model_config = ConfigDict(frozen=True)

    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    host: str = "127.0.0.1"
    port: int = Field(7000, ge=0, le=65535)
    auth: bool = True
    tokens_file: Path | None = None
    tokens: str | None = None
    write_wait_ms: int = Field(5000, ge=0, le=600_000)
    require_reason: bool = False
    max_body: int = Field(256 * 1024, ge=1024, le=64 * 1024 * 1024)
    ready_max_lag: int = Field(1000, ge=0)
    ready_max_lag_seconds: float = Field(30.0, ge=0)
    poll_interval_ms: int = Field(1000, ge=10, le=600_000)
    sse_heartbeat_s: float = Field(15.0, gt=0, le=3600)
    pg_pool_max: int = Field(10, ge=1, le=200)
    cors_origins: str = ""
    access_log: bool = True
    log_format: str = Field("text", pattern="^(text|json)$")
    ledger: LedgerSettings = LedgerSettings()

    ENV: ClassVar[dict[str, str]] = {
        "database_url": "DATABASE_URL",
        "host": "API_HOST",
        "port": "API_PORT",
        "auth": "API_AUTH",
        "tokens_file": "API_TOKENS_FILE",
        "tokens": "API_TOKENS",
        "write_wait_ms": "API_WRITE_WAIT_MS",
        "require_reason": "API_REQUIRE_REASON",
        "max_body": "API_MAX_BODY",
        "ready_max_lag": "API_READY_MAX_LAG",
        "ready_max_lag_seconds": "API_READY_MAX_LAG_SECONDS",
        "poll_interval_ms": "API_POLL_INTERVAL_MS",
        "sse_heartbeat_s": "API_SSE_HEARTBEAT_S",
        "pg_pool_max": "API_PG_POOL_MAX",
        "cors_origins": "API_CORS_ORIGINS",
        "access_log": "API_ACCESS_LOG",
        "log_format": "LOG_FORMAT",
    }

    @field_validator("auth", "require_reason", "access_log", mode="before")
    @classmethod
    def _flags(cls, value: Any) -> Any:
        return _flag(value)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ApiSettings:
        """Build from environment variables; an invalid one raises UsageError naming it."""
        values: dict[str, Any] = {f: environ[v] for f, v in cls.ENV.items() if environ.get(v)}
        values["ledger"] = LedgerSettings.from_env(environ)
        try:
            return cls(**values)
        except ValidationError as exc:
            raise settings_error(exc, cls.ENV) from None

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
