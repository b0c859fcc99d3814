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
"""

from .audit import AuditReader
from .binding import Bound
from .config_client import ConfigClient
from .lkg import LastKnownGood
from .settings import ClientSettings
from .snapshot import Snapshot, Source

__all__ = [
    "AuditReader",
    "Bound",
    "ClientSettings",
    "ConfigClient",
    "LastKnownGood",
    "Snapshot",
    "Source",
]
