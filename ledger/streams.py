"""Stream provisioning from ``streams.yaml``: validate, diff against the server, apply.

Applying is idempotent: a stream that does not exist is created; one that differs is updated
with its *full* config (a partial update would reset omitted fields) and the drift is reported;
one that matches is left alone. Settings that would break the ledger are refused before any
server is contacted, with a message naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import NotFoundError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import StreamConfigError

__all__ = ["StreamSpec", "StreamsFile", "load_streams_file", "StreamChange", "plan_stream", "apply_streams"]


class StreamSpec(BaseModel):
    """One stream as declared in streams.yaml (a subset of JetStream's StreamConfig)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    subjects: list[str] = Field(min_length=1)
    storage: Literal["file", "memory"] = "file"
    retention: Literal["limits"] = "limits"
    discard: Literal["old", "new"] = "new"
    max_msgs_per_subject: int = -1
    max_msgs: int = -1
    max_bytes: int = -1
    max_age: float = 0
    max_msg_size: int = 1024 * 1024
    duplicate_window: float = 120
    num_replicas: int = Field(1, ge=1, le=5)
    allow_direct: bool = True
    deny_delete: bool = True
    deny_purge: bool = True
    allow_rollup_hdrs: bool = False
    allow_atomic: bool = False
    persist_mode: Literal["default", "sync", "async"] | None = None
    # "ledger": keeps everything (the checks below); "bounded": a stream of latest states that
    # must be bounded in age and per subject (apply acknowledgements).
    role: Literal["ledger", "bounded"] = "ledger"

    @model_validator(mode="after")
    def _ledger_safe(self) -> StreamSpec:
        if self.role == "bounded":
            return self._bounded()
        problems = []
        if self.max_msgs_per_subject != -1:
            problems.append("max_msgs_per_subject must be -1 (any limit trims a service's history)")
        for name in ("max_msgs", "max_bytes"):
            if getattr(self, name) != -1:
                problems.append(f"{name} must be -1 (the ledger keeps every event)")
        if self.max_age != 0:
            problems.append("max_age must be 0 (the ledger keeps every event)")
        if self.allow_rollup_hdrs:
            problems.append("allow_rollup_hdrs must be false (a rollup purges history)")
        if self.persist_mode == "async":
            problems.append("persist_mode must not be async (acknowledged writes could be lost)")
        if not self.deny_delete:
            problems.append("deny_delete must be true (events are never deleted)")
        if not self.deny_purge:
            problems.append("deny_purge must be true (history is never purged)")
        if not self.allow_direct:
            problems.append("allow_direct must be true (reads use direct get)")
        if problems:
            raise ValueError(f"stream {self.name}: " + "; ".join(problems))
        return self

    def _bounded(self) -> StreamSpec:
        problems = []
        if self.max_age <= 0:
            problems.append("max_age must be > 0 (a bounded stream forgets silent subjects)")
        if self.max_msgs_per_subject < 1:
            problems.append("max_msgs_per_subject must be >= 1 (a bounded stream keeps the latest only)")
        if not self.allow_direct:
            problems.append("allow_direct must be true (reads use direct get)")
        if problems:
            raise ValueError(f"stream {self.name}: " + "; ".join(problems))
        return self

    def to_nats(self) -> js_api.StreamConfig:
        return js_api.StreamConfig(
            name=self.name,
            description=self.description,
            subjects=list(self.subjects),
            storage=js_api.StorageType(self.storage),
            retention=js_api.RetentionPolicy(self.retention),
            discard=js_api.DiscardPolicy(self.discard),
            max_msgs_per_subject=self.max_msgs_per_subject,
            max_msgs=self.max_msgs,
            max_bytes=self.max_bytes,
            max_age=self.max_age,
            max_msg_size=self.max_msg_size,
            duplicate_window=self.duplicate_window,
            num_replicas=self.num_replicas,
            allow_direct=self.allow_direct,
            deny_delete=self.deny_delete,
            deny_purge=self.deny_purge,
            allow_rollup_hdrs=self.allow_rollup_hdrs,
            allow_atomic=self.allow_atomic or None,
        )

    def comparable(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if k not in ("name", "persist_mode", "role")}


def _server_view(cfg: js_api.StreamConfig) -> dict[str, Any]:
    """The fields of a server-side config that StreamSpec manages, in StreamSpec's terms."""

    def enum_value(value: Any, default: str) -> str:
        if value is None:
            return default
        return str(getattr(value, "value", value))

    return {
        "description": cfg.description,
        "subjects": list(cfg.subjects or []),
        "storage": enum_value(cfg.storage, "file"),
        "retention": enum_value(cfg.retention, "limits"),
        "discard": enum_value(cfg.discard, "old"),
        "max_msgs_per_subject": cfg.max_msgs_per_subject,
        "max_msgs": cfg.max_msgs,
        "max_bytes": cfg.max_bytes,
        "max_age": float(cfg.max_age or 0),
        "max_msg_size": cfg.max_msg_size,
        "duplicate_window": float(cfg.duplicate_window or 0),
        "num_replicas": cfg.num_replicas,
        "allow_direct": bool(cfg.allow_direct),
        "deny_delete": bool(cfg.deny_delete),
        "deny_purge": bool(cfg.deny_purge),
        "allow_rollup_hdrs": bool(cfg.allow_rollup_hdrs),
        "allow_atomic": bool(cfg.allow_atomic),
    }


class StreamsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    streams: list[StreamSpec] = Field(min_length=1)


def load_streams_file(path: str | Path, *, replicas: int | None = None) -> StreamsFile:
    """Read and validate streams.yaml; every problem is a StreamConfigError naming the field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StreamConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise StreamConfigError(f"{path}{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if replicas is not None and isinstance(raw, dict):
        for stream in raw.get("streams") or []:
            if isinstance(stream, dict):
                stream["num_replicas"] = replicas
    try:
        return StreamsFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        msg = str(first.get("ctx", {}).get("error") or first["msg"])
        raise StreamConfigError(f"{path}: {loc}: {msg}") from None


@dataclass
class StreamChange:
    name: str
    action: Literal["created", "updated", "unchanged", "would create", "would update"]
    drift: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (server, file)

    def describe(self) -> str:
        lines = [f"stream {self.name}: {self.action}"]
        for key, (old, new) in sorted(self.drift.items()):
            lines.append(f"  {key}: {old!r} -> {new!r}")
        return "\n".join(lines)


def plan_stream(spec: StreamSpec, existing: js_api.StreamConfig | None) -> dict[str, tuple[Any, Any]]:
    """Drift between the server's config and the spec; {} when they match."""
    if existing is None:
        return {}
    have = _server_view(existing)
    want = spec.comparable()
    return {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}


async def apply_streams(
    js: JetStreamContext,
    spec_file: StreamsFile,
    *,
    dry_run: bool = False,
    report: Callable[[str], None] | None = None,
) -> list[StreamChange]:
    """Create or update every stream of ``spec_file``; returns what happened to each."""
    from nats.js.errors import APIError

    changes: list[StreamChange] = []
    for spec in spec_file.streams:
        try:
            info = await js.stream_info(spec.name)
            existing: js_api.StreamConfig | None = info.config
        except NotFoundError:
            existing = None
        if existing is None:
            change = StreamChange(spec.name, "would create" if dry_run else "created")
            if not dry_run:
                await js.add_stream(spec.to_nats())
        else:
            drift = plan_stream(spec, existing)
            if "storage" in drift:
                raise StreamConfigError(
                    f"stream {spec.name}: storage cannot change from {drift['storage'][0]} "
                    f"to {drift['storage'][1]} on an existing stream"
                )
            if not drift:
                change = StreamChange(spec.name, "unchanged")
            else:
                change = StreamChange(spec.name, "would update" if dry_run else "updated", drift)
                if not dry_run:
                    try:
                        await js.update_stream(spec.to_nats())
                    except APIError as exc:
                        raise StreamConfigError(
                            f"stream {spec.name}: server refused the update: {exc.description}"
                        ) from None
        changes.append(change)
        if report:
            report(change.describe())
    return changes
