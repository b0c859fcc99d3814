"""Property: for any valid sequence of changes over several services, once the projector has
caught up, config_versions equals the stream row for row and config_current holds the last event
of each service. One nats-server, one database and one running projector per test function;
fresh service names per example."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import InvalidChange, Ledger
from projector import ProjectorSettings, read_status
from tests.ledger.strategies import change_sequences
from tests.support.waiting import wait_for

from .helpers import (
    Running,
    assert_projection_equals,
    assert_versions_contiguous,
    checkpoint,
    running,
    stream_messages,
)

_counter = itertools.count()


async def _caught_up(ledger: Ledger, pg: Any) -> bool:
    last = await ledger.js.stream_info(ledger.settings.stream)
    return bool(await checkpoint(pg) == last.state.last_seq)


@pytest.fixture
async def live(projector_settings: ProjectorSettings) -> AsyncIterator[Running]:
    """One in-process projector for all the examples of the test."""
    async with running(projector_settings) as run:
        yield run
        assert not run.task.done(), run.task


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(histories=st.lists(change_sequences(max_size=6), min_size=1, max_size=4))
async def test_projection_equals_stream_for_any_valid_history(
    ledger: Ledger, projector_settings: ProjectorSettings, pg: Any, live: Running, histories: list[list[Any]]
) -> None:
    tag = f"{next(_counter)}-{uuid.uuid4().hex[:6]}"
    services = [f"p{tag}-{i}" for i in range(len(histories))]

    appended: dict[str, int] = {}

    async def write(service: str, changes: list[Any]) -> None:
        for change in changes:  # in order per service, services concurrently
            try:
                done = await ledger.append(service, change, actor="prop", reason="property")
            except InvalidChange:  # e.g. a rollback to the current version: refused, nothing appended
                continue
            appended[service] = done.version

    await asyncio.gather(*(write(s, h) for s, h in zip(services, histories, strict=True)))
    await wait_for(lambda: _caught_up(ledger, pg), timeout=30, what="the projector to catch up")
    assert not live.task.done(), live.task
    await assert_projection_equals(pg, await stream_messages(ledger.nc, projector_settings))
    await assert_versions_contiguous(pg)
    current = {r["service"]: r["version"] for r in await pg.fetch("SELECT service, version FROM config_current")}
    assert {s: current[s] for s in services} == appended
    status = await read_status(pg)
    assert status.state == "running" and status.failed_seq is None
