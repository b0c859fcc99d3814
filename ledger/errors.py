"""One error hierarchy for the whole project.

``LedgerError`` is the root. Two branches under it: *usage* errors (the caller sent something
wrong; retrying the same call fails the same way) and *world* errors (the servers or the data
are not as expected; a retry may succeed or an operator must act). Every edge translates the
foreign exceptions of its system into these: NATS in ``ledger.nats_io``, PostgreSQL in
``projector.db``, HTTP to the hub in ``client.hub_http``. The whole tree, with where each
branch is defined::

    LedgerError
    ├── UsageError (ValueError)                 the caller's input; the same call fails again
    │   ├── InvalidConfig                       a document breaks a validation rule
    │   │   ├── InvalidServiceName
    │   │   └── InvalidSchema, SchemaViolation  ledger.schema: a bad JSON Schema; a document failing one
    │   ├── InvalidInstant                      an instant out of range or not RFC 3339
    │   ├── InvalidChange                       e.g. rollback to a version that does not exist
    │   ├── NotFound (LookupError)
    │   ├── StreamConfigError                   streams.yaml asks for something unsafe
    │   ├── MigrationError                      projector.errors: an applied migration was edited
    │   └── BadRequest, Unprocessable, PayloadTooLarge, UnsupportedMediaType,
    │       RequestTimeout, Unauthorized, Forbidden     api.errors: the HTTP statuses of a bad request
    ├── VersionConflict                         optimistic concurrency: not at the expected version
    │   ├── HubConflict                         client.hub_http: a 409 without the versions
    │   └── ApiConflict                         ops.cli_http: the same, for the CLI
    ├── FleetConflict                           a rollout step that the fleet's state forbids
    └── WorldError                              servers, network or data are not as expected
        ├── Unavailable (ConnectionError)       a server cannot be reached or did not answer
        │   ├── StoreTimeout (TimeoutError)     it may or may not have happened
        │   ├── TemporarilyUnavailable          a leader election or reconnect: retried (ledger.retry)
        │   └── NotMigrated                     projector.errors: the projection tables are missing
        ├── WrongLastSequence                   a lost CAS race (10071/10164): re-read, never raised out
        ├── ProjectionDiverged                  stream and projection disagree: fail-stop
        │   └── StreamRegression, EventMismatch, DuplicateEvent      (projector.errors)
        ├── LeadershipLost                      projector.errors: back to standby
        │   └── CheckpointMoved
        ├── LeaderLockTimeout (TimeoutError)    projector.errors: the lock was not handed over
        └── DatabaseRefused                     projector.errors: DATABASE_URL names a database or
                                                credentials PostgreSQL refuses

``tests/test_errors_tree.py`` checks this drawing against the classes.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "LedgerError",
    "UsageError",
    "InvalidConfig",
    "InvalidServiceName",
    "InvalidChange",
    "InvalidInstant",
    "NotFound",
    "VersionConflict",
    "FleetConflict",
    "WorldError",
    "Unavailable",
    "StoreTimeout",
    "TemporarilyUnavailable",
    "WrongLastSequence",
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


class InvalidInstant(UsageError):
    """An instant that is not RFC 3339 with a zone, or outside 0001-01-01 … 9999-12-31
    (``ledger.instants``). ``rule``: ``instant.syntax``, ``instant.zone`` or ``instant.range``."""

    code = "bad_request"

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"[{rule}] {message}", details={"rule": rule})
        self.rule = rule


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


class TemporarilyUnavailable(Unavailable):
    """JetStream cannot answer *now* but will soon: a stream leader is being elected, nobody
    responds for the stream yet, or the server says "temporarily unavailable". A write retried
    with the same ``Nats-Msg-Id`` and expected sequence is safe (``Ledger`` does so)."""


class WrongLastSequence(WorldError):
    """JetStream refused a CAS publish: the subject is not at the expected stream sequence
    (10071 on one node, 10164 on a cluster). ``Ledger`` turns it into a re-read (and, when the
    caller gave a version, a ``VersionConflict``); it does not reach a caller of the ledger."""

    code = "version_conflict"

    def __init__(self, message: str, *, actual: int | None = None) -> None:
        super().__init__(message, details={"actual_seq": actual})
        self.actual = actual


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
