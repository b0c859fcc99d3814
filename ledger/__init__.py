"""Config Ledger core: the event model, canonical JSON, validation and the JetStream ledger.

    from ledger import Ledger, Replace, Patch
    async with Ledger.connect("nats://127.0.0.1:4222") as led:
        done = await led.append("billing", Replace({"operational": {"batch_size": 200}}),
                                actor="alice", reason="backfill")
"""

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from .event import (
        Change,
        Delete,
        Event,
        EventKind,
        Patch,
        Replace,
        Rollback,
        apply,
        merge_patch,
    )
    from .fold import ChainReport, fold, verify_chain
    from .ledger import Appended, Entry, Ledger
    from .settings import LedgerSettings
    from .validate import Limits, validate_document, validate_service_name

# Names are imported on first use (PEP 562), so that ``import ledger.errors`` (the CLI's
# start-up, ``ledger.exit_codes``) does not import nats, pydantic and the JetStream code.
_HOME = {
    **dict.fromkeys(
        ("InvalidChange", "InvalidConfig", "InvalidServiceName", "LedgerError", "NotFound",
         "ProjectionDiverged", "StoreTimeout", "StreamConfigError", "Unavailable", "UsageError",
         "VersionConflict", "WorldError"), "errors"),
    **dict.fromkeys(
        ("Change", "Delete", "Event", "EventKind", "Patch", "Replace", "Rollback", "apply", "merge_patch"),
        "event"),
    **dict.fromkeys(("ChainReport", "fold", "verify_chain"), "fold"),
    **dict.fromkeys(("Appended", "Entry", "Ledger"), "ledger"),
    "LedgerSettings": "settings",
    **dict.fromkeys(("Limits", "validate_document", "validate_service_name"), "validate"),
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    value = getattr(import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


class _Package(ModuleType):
    """``ledger.fold`` is the function ``fold`` (as before the names became lazy), even after the
    submodule ``ledger.fold`` is imported (the import system sets the package's attribute)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "fold" and isinstance(value, ModuleType):
            value = value.fold
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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
