"""Projector-specific branches of the one error hierarchy (``ledger.errors``).

Fail-stop conditions are ``ProjectionDiverged`` subclasses: the projector records them in
``projector_status`` and stops. ``LeadershipLost`` is not a fail-stop: the instance goes back to
standby and retries.
"""

from __future__ import annotations

from ledger.errors import ProjectionDiverged, Unavailable, UsageError, WorldError

__all__ = [
    "OPERATOR_HINT",
    "StreamRegression",
    "EventMismatch",
    "DuplicateEvent",
    "LeadershipLost",
    "CheckpointMoved",
    "LeaderLockTimeout",
    "MigrationError",
    "NotMigrated",
    "DatabaseRefused",
]

# Appended to every fail-stop reason stored in projector_status and printed by the CLI.
OPERATOR_HINT = (
    "projector stopped (fail-stop); PostgreSQL keeps everything applied before this point. "
    "Fix: repair or restore the stream, then run `python -m projector rebuild`"
)


class StreamRegression(ProjectionDiverged):
    """The stream ends before the checkpoint: it lost events, or NATS points at another store."""

    code = "stream_regression"


class EventMismatch(ProjectionDiverged):
    """The stream holds a different event at a sequence the projection already applied."""

    code = "event_mismatch"


class DuplicateEvent(ProjectionDiverged):
    """An event_id or (service, version) the projection already holds arrived again."""

    code = "duplicate_event"


class LeadershipLost(WorldError):
    """This instance no longer holds the leader lock (its lock session ended): back to standby."""

    code = "leadership_lost"


class CheckpointMoved(LeadershipLost):
    """The checkpoint is not where this instance left it: another writer advanced it."""

    code = "checkpoint_moved"


class LeaderLockTimeout(WorldError, TimeoutError):
    """The leader lock was not handed over in time (rebuild waiting for the active projector)."""

    code = "leader_lock_timeout"


class MigrationError(UsageError):
    """A migration file is malformed, or an applied migration was edited afterwards."""

    code = "migration_error"


class NotMigrated(Unavailable):
    """The projector's tables do not exist yet: nothing ran ``projector.migrate`` on this database.

    For the API this is the projection being unavailable (503); for the projector's CLI a
    world error to report (status, rebuild) or to fix by migrating (run migrates first).
    """

    code = "not_migrated"


class DatabaseRefused(WorldError):
    """PostgreSQL refused the database or the credentials named by ``DATABASE_URL``.

    A setting to fix, not a retry: the projector exits with the usage code; the API answers 503
    (the caller's request is not at fault).
    """

    code = "database_refused"
