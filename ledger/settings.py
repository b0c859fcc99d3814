"""Ledger settings: one frozen model built from an injected environment mapping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import UsageError
from .validate import Limits

__all__ = ["LedgerSettings", "settings_error"]


def settings_error(exc: ValidationError, env_names: Mapping[str, str]) -> UsageError:
    """Turn a pydantic error into one line naming the environment variable."""
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    return UsageError(f"{env_names.get(field, field)}: {first['msg']}")


class LedgerSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    nats_url: str = "nats://127.0.0.1:4222"
    stream: str = "CONFIG_LEDGER"
    subject_prefix: str = "config.events"
    schema_subject_prefix: str = ""  # "" = the sibling of subject_prefix: config.events -> config.schemas
    max_document_bytes: int = 256 * 1024
    max_depth: int = 32
    secrets_policy: bool = True
    connect_timeout: float = 2.0
    request_timeout: float = 5.0
    # How long one append may keep retrying through a leader election or a reconnect (same
    # Nats-Msg-Id, same expected sequence) before it answers "unavailable, may be stored".
    write_deadline: float = Field(default=10.0, gt=0, le=300)

    ENV: ClassVar[dict[str, str]] = {
        "nats_url": "NATS_URL",
        "stream": "LEDGER_STREAM",
        "subject_prefix": "LEDGER_SUBJECT_PREFIX",
        "schema_subject_prefix": "LEDGER_SCHEMA_SUBJECT_PREFIX",
        "max_document_bytes": "LEDGER_MAX_DOCUMENT_BYTES",
        "max_depth": "LEDGER_MAX_DEPTH",
        "secrets_policy": "LEDGER_SECRETS_POLICY",
        "request_timeout": "LEDGER_REQUEST_TIMEOUT",
        "write_deadline": "LEDGER_WRITE_DEADLINE",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LedgerSettings:
        values = {field: environ[var] for field, var in cls.ENV.items() if environ.get(var)}
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise settings_error(exc, cls.ENV) from None

    @property
    def limits(self) -> Limits:
        return Limits(
            max_bytes=self.max_document_bytes,
            max_depth=self.max_depth,
            secrets_policy=self.secrets_policy,
        )

    def subject(self, service: str) -> str:
        return f"{self.subject_prefix}.{service}"

    @property
    def subject_wildcard(self) -> str:
        return f"{self.subject_prefix}.>"

    def service_of(self, subject: str) -> str:
        return subject[len(self.subject_prefix) + 1 :]

    @property
    def schema_prefix(self) -> str:
        """Subjects of schema events, ``config.schemas.<service>``: a sibling of the config
        events' prefix (never under it, where it would collide with a service's subject)."""
        if self.schema_subject_prefix:
            return self.schema_subject_prefix
        head, _, last = self.subject_prefix.rpartition(".")
        return f"{head}.schemas" if head and last == "events" else f"{self.subject_prefix}_schemas"

    @property
    def schema_subject_wildcard(self) -> str:
        return f"{self.schema_prefix}.>"

    def for_schemas(self) -> LedgerSettings:
        """The same settings with the schema events' prefix: a ``Ledger`` of schemas."""
        prefix = self.schema_prefix
        return self.model_copy(update={"subject_prefix": prefix, "schema_subject_prefix": prefix})

    @property
    def is_schema_ledger(self) -> bool:
        return self.schema_prefix == self.subject_prefix
