"""Config Ledger client: a service's config from the stream, with hot reload and fallbacks.

::

    from client import ConfigClient

    async with ConfigClient("billing", nats_url="nats://127.0.0.1:4222", enable_nats_updates=True,
                            safe_defaults={"operational": {"batch_size": 100}}) as client:
        config = await client.get_config()
        client.on_config_update(lambda new: print("batch size now", new["operational"]["batch_size"]))

``ConfigClient`` follows the reference document's API (``init_async``, ``get_config``,
``get_value``, ``on_config_update``, ``subscribe_to_updates``, ``shutdown``); ``bind(Model)``
gives a typed, validated view; ``AuditReader`` replays and verifies history from the stream.

The names below load on first use (PEP 562): a program that needs only a part (the CLI uses
``client.hub_http``) does not pay for the NATS client and the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .audit import AuditReader
    from .binding import Bound
    from .config_client import ConfigClient
    from .lkg import LastKnownGood
    from .settings import ClientSettings
    from .snapshot import Snapshot, Source

_WHERE = {
    "AuditReader": "audit",
    "Bound": "binding",
    "ClientSettings": "settings",
    "ConfigClient": "config_client",
    "LastKnownGood": "lkg",
    "Snapshot": "snapshot",
    "Source": "snapshot",
}

__all__ = [
    "AuditReader",
    "Bound",
    "ClientSettings",
    "ConfigClient",
    "LastKnownGood",
    "Snapshot",
    "Source",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'client' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
