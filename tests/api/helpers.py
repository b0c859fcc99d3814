"""Helpers shared by the API tests: tokens, the ``Stack`` (servers + projector), small requests."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import nats
from aiohttp.test_utils import TestClient

from api import ApiSettings
from ledger import Ledger, LedgerSettings, Replace
from ledger.streams import StreamsFile, apply_streams, load_streams_file
from ops.embedded import REPO_ROOT
from projector import migrate
from tests.support.waiting import wait_for

TOKENS = {
    "admin": "admin-token-0123456789abcdef",
    "auditor": "auditor-token-0123456789abcdef",
    "svc-a": "service-a-token-0123456789abcdef",
    "svc-b": "service-b-token-0123456789abcdef",
}
IDENTITIES = {"admin": "alice", "auditor": "audrey", "svc-a": "svc-a-bot", "svc-b": "svc-b-bot"}
ROLES = {"admin": "admin", "auditor": "auditor", "svc-a": "service:svc-a", "svc-b": "service:svc-b"}
TOKENS_YAML = "\n".join(
    f"- {{token: {TOKENS[k]}, identity: {IDENTITIES[k]}, role: '{ROLES[k]}'}}" for k in TOKENS
)


def bearer(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who]}"}


ADMIN = bearer("admin")


# --- the stack -------------------------------------------------------------------------------


PROJECTOR_COMMAND = [sys.executable, "-m", "projector", "run"]


async def apply_migrations(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()


async def provision(settings: LedgerSettings) -> None:
    shipped = load_streams_file(REPO_ROOT / "streams.yaml")
    spec = shipped.streams[0].model_copy(
        update={"name": settings.stream, "subjects": [settings.subject_wildcard, settings.schema_subject_wildcard,
                                                      settings.rollout_wildcard]}
    )
    acks = shipped.streams[1].model_copy(update={"name": settings.acks_stream, "subjects": [settings.acks_wildcard()]})
    nc = await nats.connect(settings.nats_url)
    try:
        await apply_streams(nc.jetstream(), StreamsFile(streams=[spec, acks]))
    finally:
        await nc.close()


async def create_database(admin_url: str) -> str:
    name = f"api_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


@dataclass
class Stack:
    ledger_settings: LedgerSettings
    database_url: str
    log_dir: Path
    projector: subprocess.Popen[bytes] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "NATS_URL": self.ledger_settings.nats_url,
            "DATABASE_URL": self.database_url,
            "LEDGER_STREAM": self.ledger_settings.stream,
            "LEDGER_SUBJECT_PREFIX": self.ledger_settings.subject_prefix,
            "PYTHONPATH": str(REPO_ROOT),
        }

    def start_projector(self) -> None:
        log = open(self.log_dir / f"projector-{uuid.uuid4().hex[:6]}.log", "ab")  # noqa: SIM115
        self.projector = subprocess.Popen(
            PROJECTOR_COMMAND, env=self.env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def stop_projector(self) -> None:
        proc = self.projector
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.projector = None

    def api_settings(self, **overrides: Any) -> ApiSettings:
        values: dict[str, Any] = {
            "database_url": self.database_url,
            "ledger": self.ledger_settings,
            "tokens": TOKENS_YAML,
            "write_wait_ms": 5000,
            "poll_interval_ms": 500,
        }
        values.update(overrides)
        return ApiSettings(**values)

    async def projected(self, service: str, version: int) -> bool:
        conn = await asyncpg.connect(self.database_url)
        try:
            got = await conn.fetchval("SELECT version FROM config_current WHERE service = $1", service)
        finally:
            await conn.close()
        return got is not None and got >= version


async def bring_up(stack: Stack) -> None:
    await provision(stack.ledger_settings)
    await apply_migrations(stack.database_url)
    stack.start_projector()
    # Canary: one event through the whole path proves the projector is up and following.
    async with Ledger.connect(settings=stack.ledger_settings) as led:
        done = await led.append("canary", Replace({"up": True}), actor="fixture", reason="canary")
    await wait_for(lambda: stack.projected("canary", done.version), timeout=30, what="projector to start")


async def post(client: TestClient, service: str, doc: Any, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    """POST a document as admin; return the response (body read)."""
    resp = await client.post(f"/api/v1/config/{service}", json=doc, headers={**ADMIN, **(headers or {})}, **kw)
    await resp.read()
    return resp
