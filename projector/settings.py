"""Projector settings: one frozen model built from an injected environment mapping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ledger.settings import LedgerSettings, settings_error

__all__ = ["ProjectorSettings"]


class ProjectorSettings(BaseModel):
    """Where to read (NATS stream), where to write (PostgreSQL), and how to batch.

    ``ProjectorSettings.from_env(os.environ)`` in the composition root; tests pass dicts.
    """

    model_config = ConfigDict(frozen=True)

    database_url: str
    nats_url: str = "nats://127.0.0.1:4222"
    stream: str = Field("CONFIG_LEDGER", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    subject_prefix: str = Field("config.events", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    batch_size: int = Field(500, ge=1, le=10_000)
    batch_delay_ms: int = Field(20, ge=0, le=60_000)
    heartbeat_ms: int = Field(1000, ge=50, le=60_000)
    lock_poll_ms: int = Field(200, ge=10, le=10_000)
    retry_max_ms: int = Field(1500, ge=50, le=60_000)
    connect_timeout: float = Field(2.0, gt=0)

    ENV: ClassVar[dict[str, str]] = {
        "database_url": "DATABASE_URL",
        "nats_url": "NATS_URL",
        "stream": "LEDGER_STREAM",
        "subject_prefix": "LEDGER_SUBJECT_PREFIX",
        "batch_size": "PROJECTOR_BATCH_SIZE",
        "batch_delay_ms": "PROJECTOR_BATCH_DELAY_MS",
        "heartbeat_ms": "PROJECTOR_HEARTBEAT_MS",
        "lock_poll_ms": "PROJECTOR_LOCK_POLL_MS",
        "retry_max_ms": "PROJECTOR_RETRY_MAX_MS",
    }

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ProjectorSettings:
        """Build from environment variables; a bad value raises UsageError naming the variable."""
        values = {field: environ[var] for field, var in cls.ENV.items() if environ.get(var)}
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise settings_error(exc, cls.ENV) from None

    @property
    def ledger(self) -> LedgerSettings:
        """The ledger's view of the same stream (subjects, service names)."""
        return LedgerSettings(nats_url=self.nats_url, stream=self.stream, subject_prefix=self.subject_prefix)

    @property
    def subject_wildcard(self) -> str:
        return f"{self.subject_prefix}.>"

    @property
    def batch_delay(self) -> float:
        return self.batch_delay_ms / 1000

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat_ms / 1000

    @property
    def lock_poll_interval(self) -> float:
        return self.lock_poll_ms / 1000

    @property
    def retry_max_delay(self) -> float:
        return self.retry_max_ms / 1000
