"""Apply acknowledgements (pure): which instance runs which version of a service's config.

A ``ConfigClient`` publishes one after every apply (``applied``) or refusal (``rejected``), and
again as a heartbeat, on ``config.acks.<service>.<instance>`` of a bounded stream that keeps
the latest message per instance. An instance whose last message is older than the TTL is dead
and leaves the view (``live``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from .errors import InvalidConfig
from .event import format_time

__all__ = ["Ack", "INSTANCE_RE", "validate_instance_id", "safe_instance_id", "live", "Summary", "summarize", "state_of"]

INSTANCE_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # one NATS subject token
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def validate_instance_id(value: str) -> str:
    if not isinstance(value, str) or not INSTANCE_RE.match(value):
        raise InvalidConfig(
            "instance.id", "an instance id is 1-128 characters of letters, digits, '_' and '-'", path="instance"
        )
    return value


def safe_instance_id(text: str) -> str:
    """``host.example-1234`` -> ``host_example-1234``: a default id made subject-safe."""
    return (_UNSAFE.sub("_", text) or "instance")[:128]


class Ack(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str
    instance: str
    labels: dict[str, str] = Field(default_factory=dict, max_length=32)
    version: int | None = Field(None, ge=0)  # what the status is about (None: no config yet)
    rollout: str | None = Field(None, max_length=64)  # set when that is a rollout's candidate
    status: Literal["applied", "rejected"]
    error: str | None = Field(None, max_length=2000)
    staged: bool = True  # follows rollouts (False: an HTTP-only client, base version only)
    at: datetime

    @field_validator("instance")
    @classmethod
    def _instance(cls, value: str) -> str:
        return validate_instance_id(value)

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, val in value.items():
            if not 1 <= len(key) <= 64 or len(val) > 256:
                raise ValueError("label keys are 1-64 characters, values at most 256")
        return value

    @field_serializer("at")
    def _ser(self, value: datetime) -> str:
        return format_time(value)


def live(acks: Iterable[Ack], now: datetime, ttl_s: float) -> list[Ack]:
    """The instances heard from within ``ttl_s``, by instance id."""
    horizon = now - timedelta(seconds=ttl_s)
    return sorted((a for a in acks if a.at >= horizon), key=lambda a: a.instance)


class Summary(BaseModel):
    target_version: int | None
    rollout: str | None
    instances: int
    applied: int
    rejected: int
    behind: int


def state_of(ack: Ack, target_version: int | None, rollout: str | None, on_candidate: bool) -> str:
    """``applied`` when the instance runs what it should (the rollout's candidate if
    ``on_candidate``, else the target version), ``rejected`` when it refused that, else ``behind``."""
    if ack.rollout != (rollout if on_candidate else None):
        return "behind"
    if ack.status == "rejected":
        return "rejected"
    return "applied" if on_candidate or ack.version == target_version else "behind"


def summarize(acks: list[Ack], target_version: int | None, rollout: str | None, wants_candidate: set[str]) -> Summary:
    """Counts against the target (``state_of`` each instance; ``wants_candidate``: the ids that
    should run the rollout's candidate)."""
    states = [state_of(a, target_version, rollout, a.instance in wants_candidate) for a in acks]
    return Summary(
        target_version=target_version,
        rollout=rollout,
        instances=len(acks),
        applied=states.count("applied"),
        rejected=states.count("rejected"),
        behind=states.count("behind"),
    )
