"""Client fixtures: the HTTP contract fake, a client factory that shuts its clients down, dead URLs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from client import ConfigClient
from ledger import LedgerSettings
from ops.embedded import free_port

from .hub_contract_fake import HubContractFake

MakeClient = Callable[..., ConfigClient]


@pytest.fixture
async def hub() -> AsyncIterator[HubContractFake]:
    fake = await HubContractFake().start()
    yield fake
    await fake.close()


@pytest.fixture
def dead_hub_url() -> str:
    """An HTTP URL nobody listens on: connection refused at once."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def dead_nats_url() -> str:
    return f"nats://127.0.0.1:{free_port()}"


@pytest.fixture
def lkg_dir(tmp_path: Path) -> Path:
    return tmp_path / "lkg"


@pytest.fixture
async def make_client(lkg_dir: Path) -> AsyncIterator[MakeClient]:
    """``make_client(service, **kwargs)``: a ConfigClient with an isolated environment
    (``environ`` defaults to just ``CONFIG_LEDGER_LKG_DIR``), shut down after the test."""
    made: list[ConfigClient] = []

    def make(service: str, **kwargs: Any) -> ConfigClient:
        kwargs.setdefault("environ", {"CONFIG_LEDGER_LKG_DIR": str(lkg_dir)})
        client = ConfigClient(service, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.shutdown()


@pytest.fixture
def stream_client(make_client: MakeClient, provisioned: LedgerSettings) -> MakeClient:
    """``stream_client(service, **kwargs)``: a client on the test's stream, hot reload on, no hub."""

    def make(service: str, **kwargs: Any) -> ConfigClient:
        kwargs.setdefault("nats_url", provisioned.nats_url)
        kwargs.setdefault("ledger_settings", provisioned)
        kwargs.setdefault("enable_nats_updates", True)
        kwargs.setdefault("central_hub_url", f"http://127.0.0.1:{free_port()}")
        return make_client(service, **kwargs)

    return make
