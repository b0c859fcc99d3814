"""Durability settings the fault scenarios rely on: fail loudly if someone relaxes them."""

from __future__ import annotations

import json
import re
import urllib.request

import asyncpg
import yaml

from ops.embedded import REPO_ROOT, SHIPPED_NATS_CONF, NatsServer


def _jetstream_block(text: str) -> str:
    without_comments = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    match = re.search(r"jetstream\s*[:=]?\s*\{([^}]*)\}", without_comments, re.S)
    assert match, "nats-server.conf has no jetstream { ... } block"
    return match.group(1)


def test_shipped_nats_conf_syncs_every_write() -> None:
    block = _jetstream_block(SHIPPED_NATS_CONF.read_text())
    settings = dict(re.findall(r"^\s*(\w+)\s*[:=]\s*(\S+)\s*$", block, re.M))
    assert settings.get("sync_interval") == "always", (
        f"nats-server.conf must set jetstream {{ sync_interval: always }}; found {settings}")


def test_running_server_reports_sync_always(nats_server: NatsServer) -> None:
    url = f"http://127.0.0.1:{nats_server.monitor_port}/varz"
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
        varz = json.load(resp)
    assert varz["jetstream"]["config"].get("sync_always") is True, varz["jetstream"]["config"]


def test_no_stream_persists_asynchronously() -> None:
    raw = yaml.safe_load((REPO_ROOT / "streams.yaml").read_text())
    streams = raw["streams"]
    assert streams, "streams.yaml declares no stream"
    for s in streams:
        assert str(s.get("persist_mode", "default")).lower() != "async", s["name"]
        assert s.get("storage", "file") == "file", f"{s['name']}: the ledger must be on file storage"


async def test_embedded_postgres_runs_with_fsync_on(pg_cluster: str) -> None:
    conn = await asyncpg.connect(pg_cluster)
    try:
        assert await conn.fetchval("SHOW fsync") == "on"
        assert await conn.fetchval("SHOW synchronous_commit") in ("on", "remote_apply", "remote_write", "local")
        assert await conn.fetchval("SHOW full_page_writes") == "on"
    finally:
        await conn.close()
