"""The last-known-good file: checksummed, atomic, ignored when it cannot be trusted."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from client import LastKnownGood, Snapshot, Source
from client.lkg import LkgWriter
from ledger import LedgerError

from .conftest import MakeClient


def test_round_trip(tmp_path: Path) -> None:
    lkg = LastKnownGood(tmp_path / "deep" / "svc.json", "svc")
    assert lkg.load() is None  # absent: no warning, no file created
    at = datetime(2026, 11, 28, 10, 30, 45, 123456, tzinfo=UTC)
    lkg.save(Snapshot(4, {"a": [1, 2.5, "x"], "b": {"c": None}}, Source.STREAM, at, seq=99))
    loaded = lkg.load()
    assert loaded == Snapshot(4, {"a": [1, 2.5, "x"], "b": {"c": None}}, Source.LKG, at)
    doc = orjson.loads(lkg.path.read_bytes())
    assert doc["sha256"].startswith("sha256:") and doc["service"] == "svc" and doc["format"] == 1


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lkg = LastKnownGood(tmp_path / "svc.json", "svc")
    lkg.save(Snapshot(1, {"v": 1}, Source.API))

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(LedgerError, match="No space left on device"):
        lkg.save(Snapshot(2, {"v": 2}, Source.API))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["svc.json"]
    loaded = lkg.load()
    assert loaded is not None and loaded.version == 1


async def test_the_writer_coalesces_and_keeps_the_latest(tmp_path: Path) -> None:
    lkg = LastKnownGood(tmp_path / "svc.json", "svc")
    writer = LkgWriter(lkg)
    for n in range(1, 51):
        writer.submit(Snapshot(n, {"n": n}, Source.STREAM))
    await writer.flush()
    loaded = lkg.load()
    assert loaded is not None and (loaded.version, loaded.config) == (50, {"n": 50})
    await writer.close()


async def test_a_tombstone_starts_the_client_on_its_defaults(
    make_client: MakeClient, lkg_dir: Path, dead_hub_url: str
) -> None:
    LastKnownGood(lkg_dir / "svc.json", "svc").save(Snapshot(5, None, Source.STREAM))
    client = make_client("svc", central_hub_url=dead_hub_url, safe_defaults={"d": 1})
    assert await client.get_config() == {"d": 1}
    assert (client.source, client.version) == ("defaults", 5)
