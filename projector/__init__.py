"""projector package (Config Ledger)."""

from .errors import (
    CheckpointMoved,
    DuplicateEvent,
    EventMismatch,
    LeaderLockTimeout,
    LeadershipLost,
    MigrationError,
    NotMigrated,
    StreamRegression,
)
from .migrate import migrate
from .rebuild import RebuildResult, rebuild
from .rows import CURRENT_COLUMNS, VERSION_COLUMNS, CurrentRow, VersionRow, current_row, version_row
from .runner import Projector
from .settings import ProjectorSettings
from .status import NOTIFY_CHANNEL, ProjectorStatus, read_status, wait_applied
from .verify import verify_message

__all__ = [
    "CURRENT_COLUMNS",
    "CheckpointMoved",
    "CurrentRow",
    "DuplicateEvent",
    "EventMismatch",
    "LeaderLockTimeout",
    "LeadershipLost",
    "MigrationError",
    "NOTIFY_CHANNEL",
    "NotMigrated",
    "Projector",
    "ProjectorSettings",
    "ProjectorStatus",
    "RebuildResult",
    "StreamRegression",
    "VERSION_COLUMNS",
    "VersionRow",
    "current_row",
    "migrate",
    "read_status",
    "rebuild",
    "verify_message",
    "version_row",
    "wait_applied",
]
