"""Config Ledger core: the event model, canonical JSON, validation and the JetStream ledger.

    from ledger import Ledger, Replace, Patch
    async with Ledger.connect("nats://127.0.0.1:4222") as led:
        done = await led.append("billing", Replace({"operational": {"batch_size": 200}}),
                                actor="alice", reason="backfill")
"""

from .errors import (
    InvalidChange,
    InvalidConfig,
    InvalidServiceName,
    LedgerError,
    NotFound,
    ProjectionDiverged,
    StoreTimeout,
    StreamConfigError,
    Unavailable,
    UsageError,
    VersionConflict,
    WorldError,
)
from .event import Change, Delete, Event, EventKind, Patch, Replace, Rollback, apply, merge_patch
from .fold import ChainReport, fold, verify_chain
from .ledger import Appended, Entry, Ledger
from .settings import LedgerSettings
from .validate import Limits, validate_document, validate_service_name

__all__ = [
    "Appended",
    "ChainReport",
    "Change",
    "Delete",
    "Entry",
    "Event",
    "EventKind",
    "InvalidChange",
    "InvalidConfig",
    "InvalidServiceName",
    "Ledger",
    "LedgerError",
    "LedgerSettings",
    "Limits",
    "NotFound",
    "Patch",
    "ProjectionDiverged",
    "Replace",
    "Rollback",
    "StoreTimeout",
    "StreamConfigError",
    "Unavailable",
    "UsageError",
    "VersionConflict",
    "WorldError",
    "apply",
    "fold",
    "merge_patch",
    "validate_document",
    "validate_service_name",
    "verify_chain",
]
