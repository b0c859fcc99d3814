"""Opt-in: ConfigClient.require_schema keeps the last good config when a document fails."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from client import LastKnownGood
from ledger import InvalidConfig, Ledger, Replace
from tests.support.waiting import wait_for

from .conftest import MakeClient

SCHEMA = {"type": "object", "properties": {"batch_size": {"type": "integer", "minimum": 1}},
          "required": ["batch_size"]}


async def test_a_document_failing_the_schema_is_rejected_and_the_last_good_one_stays(
    ledger: Ledger, stream_client: MakeClient, lkg_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await ledger.append("svc", Replace({"batch_size": 10}), actor="ops")
    client = stream_client("svc")
    client.require_schema(SCHEMA)
    seen: list[int] = []
    client.on_config_update(lambda c: seen.append(c["batch_size"]))
    await client.init_async()
    assert await client.get_config() == {"batch_size": 10}
    with caplog.at_level(logging.ERROR, logger="client"):
        await ledger.append("svc", Replace({"batch_size": 0}), actor="ops")  # v2 fails: minimum
        await ledger.append("svc", Replace({"batch_size": 20}), actor="ops")  # v3
        await wait_for(lambda: client.version == 3, timeout=5, what="version 3")
    rejected = [r.getMessage() for r in caplog.records if "rejected version 2" in r.getMessage()]
    assert rejected and "/batch_size (minimum)" in rejected[0]
    await ledger.append("svc", Replace({"size": "x"}), actor="ops")  # v4 fails: required
    await wait_for(lambda: any("rejected version 4" in r.getMessage() for r in caplog.records),
                   timeout=5, what="version 4 seen (and rejected)")
    assert client.version == 3 and await client.get_config() == {"batch_size": 20}
    await wait_for(lambda: seen == [10, 20], timeout=5, what="callbacks for the good versions only")
    await client.shutdown()
    saved = LastKnownGood(lkg_dir / "svc.json", "svc").load()
    assert saved is not None and saved.version == 3


async def test_an_invalid_schema_or_failing_defaults_are_refused_up_front(stream_client: MakeClient) -> None:
    client = stream_client("svc2", safe_defaults={"batch_size": 0})
    with pytest.raises(InvalidConfig) as bad:
        client.require_schema({"type": "nope"})
    assert bad.value.rule == "schema.invalid"
    with pytest.raises(InvalidConfig) as defaults:
        client.require_schema(SCHEMA)
    assert defaults.value.rule == "schema"
