"""Ledger settings: one frozen model built from an injected environment mapping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

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
    max_document_bytes: int = 256 * 1024
    max_depth: int = 32
    secrets_policy: bool = True
    connect_timeout: float = 2.0
    request_timeout: float = 5.0

    ENV: ClassVar[dict[str, str]] = {
        "nats_url": "NATS_URL",
        "stream": "LEDGER_STREAM",
        "subject_prefix": "LEDGER_SUBJECT_PREFIX",
        "max_document_bytes": "LEDGER_MAX_DOCUMENT_BYTES",
        "max_depth": "LEDGER_MAX_DEPTH",
        "secrets_policy": "LEDGER_SECRETS_POLICY",
        "request_timeout": "LEDGER_REQUEST_TIMEOUT",
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

    # --- the fleet: rollouts and scheduled changes (same stream), apply acknowledgements ---------

    def _sibling(self, name: str) -> str:
        """``config.events`` -> ``config.<name>``: a sibling subject family of the events."""
        base = self.subject_prefix.rsplit(".", 1)[0] if "." in self.subject_prefix else self.subject_prefix
        return f"{base}.{name}"

    @property
    def rollout_prefix(self) -> str:
        return self._sibling("rollouts")

    def rollout_subject(self, service: str) -> str:
        return f"{self.rollout_prefix}.{service}"

    @property
    def rollout_wildcard(self) -> str:
        return f"{self.rollout_prefix}.>"

    @property
    def acks_stream(self) -> str:
        """The bounded stream of apply acknowledgements (declared in streams.yaml)."""
        return f"{self.stream}_ACKS"

    @property
    def acks_prefix(self) -> str:
        return self._sibling("acks")

    def ack_subject(self, service: str, instance: str) -> str:
        return f"{self.acks_prefix}.{service}.{instance}"

    def acks_wildcard(self, service: str | None = None) -> str:
        return f"{self.acks_prefix}.{service}.*" if service else f"{self.acks_prefix}.>"
