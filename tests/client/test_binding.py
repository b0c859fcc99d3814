"""Typed binding: a pydantic model that is always the latest valid config."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from client import Bound, LastKnownGood
from ledger import InvalidConfig, Ledger, NotFound, Replace
from tests.support.waiting import wait_for

from .conftest import MakeClient


class Operational(BaseModel):
    batch_size: int = Field(gt=0)
    gap_check_interval_hours: int = 1


class Settings(BaseModel):
    operational: Operational


DEFAULTS = {"operational": {"batch_size": 100}}


async def test_an_invalid_update_is_rejected_and_the_last_good_value_stays(
    ledger: Ledger, stream_client: MakeClient, lkg_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await ledger.append("svc", Replace({"operational": {"batch_size": 10}}), actor="ops")
    client = stream_client("svc")
    await client.init_async()
    settings: Bound[Settings] = client.bind(Settings)
    assert settings.value == Settings(operational=Operational(batch_size=10))
    raw: list[dict[str, Any]] = []
    typed: list[Settings] = []
    client.on_config_update(raw.append)
    settings.on_update(typed.append)

    with caplog.at_level(logging.ERROR, logger="client"):
        await ledger.append("svc", Replace({"operational": {"batch_size": -5}}), actor="ops")  # v2: invalid
        await ledger.append("svc", Replace({"operational": {"batch_size": 20}}), actor="ops")  # v3
        await wait_for(lambda: settings.version == 3, timeout=5, what="version 3")
    rejected = [r.getMessage() for r in caplog.records if "rejected version 2" in r.getMessage()]
    assert rejected and "Settings" in rejected[0] and "operational.batch_size" in rejected[0]
    await wait_for(lambda: typed and typed[-1].operational.batch_size == 20, timeout=5, what="typed callback")
    assert [t.operational.batch_size for t in typed] == [20]  # no callback for version 2
    assert raw == [{"operational": {"batch_size": 20}}]
    assert settings.value.operational.batch_size == 20

    await ledger.append("svc", Replace({"operational": {"batch_size": "lots"}}), actor="ops")  # v4: invalid
    await wait_for(lambda: client._sources.follower.seen_version == 4, timeout=5, what="version 4 seen")
    assert settings.value.operational.batch_size == 20 and settings.version == 3
    assert await client.get_config() == {"operational": {"batch_size": 20}}
    assert client.version == 3
    await client.shutdown()
    saved = LastKnownGood(lkg_dir / "svc.json", "svc").load()
    assert saved is not None and (saved.version, saved.config) == (3, {"operational": {"batch_size": 20}})


async def test_bound_before_init_an_invalid_current_config_falls_back(
    ledger: Ledger, stream_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    await ledger.append("svc", Replace({"operational": {"batch_size": 0}}), actor="ops")
    client = stream_client("svc", safe_defaults=DEFAULTS)
    settings = client.bind(Settings)
    assert settings.value.operational.batch_size == 100  # the safe defaults until a source answers
    with pytest.raises(NotFound):
        _ = stream_client("other").bind(Settings).value  # no config, no defaults
    with caplog.at_level(logging.ERROR, logger="client"):
        await client.init_async()
    assert client.source == "defaults"
    assert settings.value.operational.batch_size == 100 and settings.version is None
    assert any("rejected version 1" in r.getMessage() for r in caplog.records)


async def test_binding_after_init_to_an_invalid_config_raises(ledger: Ledger, stream_client: MakeClient) -> None:
    await ledger.append("svc", Replace({"operational": {"batch_size": 0}}), actor="ops")
    client = stream_client("svc")
    await client.init_async()
    with pytest.raises(InvalidConfig, match="version 1 does not validate as Settings"):
        client.bind(Settings)
    with pytest.raises(InvalidConfig, match="does not validate as Settings"):
        stream_client("other", safe_defaults={"operational": {}}).bind(Settings)


async def test_deletion_moves_the_binding_to_the_defaults(ledger: Ledger, stream_client: MakeClient) -> None:
    from ledger import Delete

    await ledger.append("svc", Replace({"operational": {"batch_size": 5}}), actor="ops")
    client = stream_client("svc", safe_defaults=DEFAULTS)
    await client.init_async()
    settings = client.bind(Settings)
    await ledger.append("svc", Delete(), actor="ops")
    await wait_for(lambda: settings.version == 2, timeout=5, what="deletion")
    assert settings.value.operational.batch_size == 100
