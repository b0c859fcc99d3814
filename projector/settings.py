"""Projector settings: one frozen model, read through the project's layered settings
(``ledger.settings.SettingsModel``: defaults < ``$INFRA_CONFIG_DIR`` files < variables)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field, field_validator

from ledger.settings import (
    DATABASE_URL,
    LEDGER_STREAM,
    LEDGER_SUBJECT_PREFIX,
    NATS_URL,
    LedgerSettings,
    Setting,
    SettingsModel,
)

__all__ = ["ProjectorSettings"]

_BATCH_SIZE = Setting("projector.batch_size", "PROJECTOR_BATCH_SIZE", 500, "events per transaction, at most")
_BATCH_DELAY_MS = Setting("projector.batch_delay_ms", "PROJECTOR_BATCH_DELAY_MS", 20, "wait to fill a batch")
_HEARTBEAT_MS = Setting("projector.heartbeat_ms", "PROJECTOR_HEARTBEAT_MS", 1000, "status row refresh")
_LOCK_POLL_MS = Setting("projector.lock_poll_ms", "PROJECTOR_LOCK_POLL_MS", 200, "standby's leader lock poll")
_RETRY_MAX_MS = Setting("projector.retry_max_ms", "PROJECTOR_RETRY_MAX_MS", 1500, "outage backoff cap")


class ProjectorSettings(SettingsModel):
    """Where to read (NATS stream), where to write (PostgreSQL), and how to batch.

    ``ProjectorSettings.from_env(os.environ)`` in the composition root; tests pass dicts.
    """

    SERVICE: ClassVar[str] = "projector"

    database_url: str
    nats_url: str = NATS_URL.default
    stream: str = Field(default=LEDGER_STREAM.default, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    subject_prefix: str = Field(default=LEDGER_SUBJECT_PREFIX.default, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    batch_size: int = Field(default=_BATCH_SIZE.default, ge=1, le=10_000)
    batch_delay_ms: int = Field(default=_BATCH_DELAY_MS.default, ge=0, le=60_000)
    heartbeat_ms: int = Field(default=_HEARTBEAT_MS.default, ge=50, le=60_000)
    lock_poll_ms: int = Field(default=_LOCK_POLL_MS.default, ge=10, le=10_000)
    retry_max_ms: int = Field(default=_RETRY_MAX_MS.default, ge=50, le=60_000)
    connect_timeout: float = Field(default=2.0, gt=0)

    FIELDS: ClassVar[Mapping[str, Setting]] = {
        "database_url": DATABASE_URL,
        "nats_url": NATS_URL,
        "stream": LEDGER_STREAM,
        "subject_prefix": LEDGER_SUBJECT_PREFIX,
        "batch_size": _BATCH_SIZE,
        "batch_delay_ms": _BATCH_DELAY_MS,
        "heartbeat_ms": _HEARTBEAT_MS,
        "lock_poll_ms": _LOCK_POLL_MS,
        "retry_max_ms": _RETRY_MAX_MS,
    }

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

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
