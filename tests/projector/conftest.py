"""Fixtures of the projector tests (the servers come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger import LedgerSettings
from projector import ProjectorSettings, migrate

from .helpers import Processes, connect, processes, settings_for


@pytest.fixture
def projector_settings(provisioned: LedgerSettings, database_url: str) -> ProjectorSettings:
    """Settings for the test's stream and database; quick heartbeats and retries."""
    return settings_for(provisioned, database_url, heartbeat_ms=200, retry_max_ms=500)


@pytest.fixture
async def pg(database_url: str) -> AsyncIterator[Any]:
    """A connection to the test's database, schema migrated."""
    async with connect(database_url) as conn:
        await migrate(conn)
        yield conn


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """Subprocess registry: every ``python -m projector`` started by the test is killed at the end."""
    with processes(tmp_path) as group:
        yield group
