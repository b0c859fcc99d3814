"""API test fixtures: a running stack (NATS, PostgreSQL, projector subprocess) and app clients.

- ``stack`` (session): one private nats-server, one fresh database on the session's PostgreSQL
  with the projector's migrations applied, and the projector running as a subprocess
  (``python -m projector run``).
  Tests on it use unique service names, so they do not see each other's data.
- ``make_stack`` (function): the same on servers of the test's own, for tests that kill them.
- ``make_client(stack, **settings)``: ``create_app`` behind aiohttp's ``TestServer`` + ``TestClient``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api import create_app
from ledger import LedgerSettings
from ops.embedded import NatsServer

from .helpers import Stack, bring_up, create_database

MakeClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture(scope="session")
def stack(work_dir: Path, pg_cluster: str) -> Iterator[Stack]:
    server = NatsServer(work_dir / f"nats-api-{uuid.uuid4().hex[:6]}").start()
    db = asyncio.run(create_database(pg_cluster))
    s = Stack(LedgerSettings(nats_url=server.url), db, work_dir)
    try:
        asyncio.run(bring_up(s))
        yield s
    finally:
        s.stop_projector()
        server.kill()


@pytest.fixture
async def make_stack(work_dir: Path) -> AsyncIterator[Callable[[str, str], Awaitable[Stack]]]:
    """Build a stack on servers the test owns (``nats_server``, ``private_pg``)."""
    made: list[Stack] = []

    async def make(nats_url: str, pg_admin_url: str) -> Stack:
        db = await create_database(pg_admin_url)
        s = Stack(LedgerSettings(nats_url=nats_url), db, work_dir)
        made.append(s)
        await bring_up(s)
        return s

    yield make
    for s in made:
        s.stop_projector()


# --- clients ---------------------------------------------------------------------------------


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[TestClient] = []

    async def make(on: Stack, **overrides: Any) -> TestClient:
        app = create_app(on.api_settings(**overrides))
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        await client.close()


@pytest.fixture
async def api(stack: Stack, make_client: MakeClient) -> TestClient:
    """The app with auth on and the test tokens."""
    return await make_client(stack)


@pytest.fixture
def svc() -> str:
    """A service name no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


