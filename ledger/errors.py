"""One error hierarchy for the whole project.

``LedgerError`` is the root. Two branches under it: *usage* errors (the caller sent something
wrong; retrying the same call fails the same way) and *world* errors (the servers or the data
are not as expected; a retry may succeed or an operator must act). Every adapter translates
foreign exceptions (nats, asyncpg, aiohttp) into these at its boundary.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "LedgerError",
    "UsageError",
    "InvalidConfig",
    "InvalidServiceName",
    "InvalidChange",
    "NotFound",
    "VersionConflict",
    "FleetConflict",
    "WorldError",
    "Unavailable",
    "StoreTimeout",
    "ProjectionDiverged",
    "StreamConfigError",
]


class LedgerError(Exception):
    """Root of every error this project raises on purpose."""

    code: str = "ledger_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class UsageError(LedgerError, ValueError):
    """The caller's input is wrong; the same call will fail again."""

    code = "bad_request"


class InvalidConfig(UsageError):
    """A config document breaks a validation rule. ``rule`` names the rule, ``path`` the key."""

    code = "invalid_config"

    def __init__(self, rule: str, message: str, *, path: str = "") -> None:
        where = f" at {path}" if path else ""
        super().__init__(f"[{rule}] {message}{where}", details={"rule": rule, "path": path})
        self.rule = rule
        self.path = path


class InvalidServiceName(InvalidConfig):
    code = "invalid_service_name"

    def __init__(self, name: str) -> None:
        shown = name if len(name) <= 80 else name[:77] + "..."
        super().__init__(
            "service_name",
            f"service name {shown!r} must match ^[a-z0-9][a-z0-9_-]{{0,62}}$",
        )
        self.name = name


class InvalidChange(UsageError):
    """The change cannot be applied to the current state (e.g. rollback to a missing version)."""

    code = "invalid_change"


class NotFound(UsageError, LookupError):
    code = "not_found"


class VersionConflict(LedgerError):
    """Optimistic concurrency failed: the service is not at the expected version."""

    code = "version_conflict"

    def __init__(self, service: str, expected: int, current: int) -> None:
        super().__init__(
            f"service {service!r} is at version {current}, not the expected {expected}",
            details={"service": service, "expected_version": expected, "current_version": current},
        )
        self.service = service
        self.expected = expected
        self.current = current


class FleetConflict(LedgerError):
    """A rollout or scheduled-change step that the fleet state does not allow now (HTTP 409)."""

    code = "rollout_conflict"

    def __init__(self, rule: str, message: str, **details: Any) -> None:
        super().__init__(message, details={"rule": rule, **details})
        self.rule = rule


class WorldError(LedgerError):
    """Something outside the caller's input is wrong: a server, the network, the data."""

    code = "unavailable"


class Unavailable(WorldError, ConnectionError):
    """A server (NATS, PostgreSQL) cannot be reached or did not answer."""

    code = "unavailable"


class StoreTimeout(Unavailable, TimeoutError):
    """The store did not answer in time; the operation may or may not have happened."""

    code = "timeout"


class ProjectionDiverged(WorldError):
    """The stream and the projection disagree; projecting must stop (fail-stop)."""

    code = "projection_diverged"

    def __init__(self, reason: str, *, seq: int | None = None, service: str | None = None) -> None:
        where = f" at stream sequence {seq}" if seq is not None else ""
        super().__init__(f"{reason}{where}", details={"seq": seq, "service": service})
        self.reason = reason
        self.seq = seq
        self.service = service


class StreamConfigError(UsageError):
    """streams.yaml asks for a setting that would break the ledger, or is malformed."""

    code = "stream_config"
