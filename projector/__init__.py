"""projector package (Config Ledger): the stream projected into PostgreSQL.

The names below are loaded on first use (PEP 562), so ``python -m projector`` reaches its
``__main__`` — whose first statement installs the SIGTERM handler — before asyncpg, nats and
pydantic are imported.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from .rows import (
        CURRENT_COLUMNS,
        VERSION_COLUMNS,
        CurrentRow,
        VersionRow,
        current_row,
        version_row,
    )
    from .runner import Projector
    from .schema import NOTIFY_CHANNEL
    from .settings import ProjectorSettings
    from .status import ProjectorStatus, read_status, wait_applied
    from .verify import verify_message

_WHERE = {
    "CheckpointMoved": "errors",
    "DuplicateEvent": "errors",
    "EventMismatch": "errors",
    "LeaderLockTimeout": "errors",
    "LeadershipLost": "errors",
    "MigrationError": "errors",
    "NotMigrated": "errors",
    "StreamRegression": "errors",
    "migrate": "migrate",
    "RebuildResult": "rebuild",
    "rebuild": "rebuild",
    "CURRENT_COLUMNS": "rows",
    "VERSION_COLUMNS": "rows",
    "CurrentRow": "rows",
    "VersionRow": "rows",
    "current_row": "rows",
    "version_row": "rows",
    "Projector": "runner",
    "NOTIFY_CHANNEL": "schema",
    "ProjectorSettings": "settings",
    "ProjectorStatus": "status",
    "read_status": "status",
    "wait_applied": "status",
    "verify_message": "verify",
}

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'projector' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


class _Package(types.ModuleType):
    """Keeps ``projector.rebuild`` / ``projector.migrate`` the functions of the same name.

    Importing the submodule ``projector.rebuild`` binds it on the package (import system rule);
    with lazy names that would shadow the function. The submodules stay in ``sys.modules``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _WHERE.get(name) == name:
            globals().pop(name, None)  # resolved again, as the function, by __getattr__
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
