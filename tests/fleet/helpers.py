"""Fleet test helpers: real ConfigClients with ids and labels, an in-process controller loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from client import ConfigClient
from ledger import Ledger, LedgerSettings
from ledger import fleet_steps as steps
from ledger.fleet_events import FleetKind
from ledger.fleet_log import FleetLog, candidate_of
from ledger.rollout import ChangeSpec, GateSpec, StageSpec
from rollout.controller import Controller


def fleet_client(settings: LedgerSettings, service: str, instance: str, labels: Mapping[str, str]) -> ConfigClient:
    return ConfigClient(
        service, nats_url=settings.nats_url, ledger_settings=settings, enable_nats_updates=True,
        central_hub_url="http://127.0.0.1:9", environ={}, lkg_path=False, instance_id=instance,
        labels=labels, heartbeat_s=0.3,
    )


async def start_rollout(ledger: Ledger, service: str, patch: dict[str, Any], stages: list[dict[str, Any]],
                        gate: dict[str, Any]) -> str:
    """What POST .../rollouts does (api.fleet_handlers.start_rollout), without HTTP."""
    log = FleetLog(ledger.nc, ledger.settings)
    head = await log.head(service)
    change = ChangeSpec(op="patch", patch=patch)
    base, candidate = await candidate_of(ledger, service, change.to_change())
    rollout_id = f"r{datetime.now(UTC).strftime('%H%M%S%f')}"
    state = steps.start(head.state, rollout_id=rollout_id, change=change,
                        stages=[StageSpec(**s) for s in stages], gate=GateSpec(**gate), base_version=base,
                        candidate=candidate, now=datetime.now(UTC), actor="alice", reason="test rollout")
    await log.append(head, service, FleetKind.ROLLOUT_STARTED, rollout_id, state, actor="alice", reason="test")
    return rollout_id


@contextlib.asynccontextmanager
async def controller_loop(ledger: Ledger, **kwargs: Any) -> AsyncIterator[Controller]:
    controller = Controller(ledger, **kwargs)
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            await controller.step()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    await stop.wait()

    task = asyncio.create_task(loop())
    try:
        yield controller
    finally:
        stop.set()
        await task
