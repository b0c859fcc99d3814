"""The sources after the stream: the HTTP API (ETag, TTL cache, SSE), the LKG file, safe defaults.

The HTTP side is the in-test contract fake (``hub_contract_fake.py``), not the real API.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from client import ConfigClient, LastKnownGood, Snapshot, Source
from ledger import NotFound, Unavailable, UsageError
from tests.support.waiting import wait_for

from .conftest import MakeClient
from .hub_contract_fake import HubContractFake

DEFAULTS = {"operational": {"batch_size": 100}}
DOC = {"operational": {"batch_size": 250}}


def write_lkg(lkg_dir: Path, service: str, version: int, config: dict[str, Any] | None) -> Path:
    lkg = LastKnownGood(lkg_dir / f"{service}.json", service)
    lkg.save(Snapshot(version, config, Source.STREAM))
    return lkg.path


def write_raw(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --- hub down from the start ------------------------------------------------------------------


async def test_hub_down_with_an_lkg_file_starts_on_it(
    make_client: MakeClient, lkg_dir: Path, dead_hub_url: str, dead_nats_url: str
) -> None:
    write_lkg(lkg_dir, "svc", 7, DOC)
    client = make_client("svc", central_hub_url=dead_hub_url, nats_url=dead_nats_url,
                         enable_nats_updates=True, safe_defaults=DEFAULTS)
    started = time.monotonic()
    config = await client.get_config()
    assert time.monotonic() - started < 1.0
    assert config == DOC
    assert (client.source, client.version) == ("lkg", 7)


async def test_hub_down_without_an_lkg_file_starts_on_safe_defaults(
    make_client: MakeClient, dead_hub_url: str, dead_nats_url: str
) -> None:
    client = make_client("svc", central_hub_url=dead_hub_url, nats_url=dead_nats_url, safe_defaults=DEFAULTS)
    started = time.monotonic()
    await client.init_async()
    assert await client.get_config() == DEFAULTS
    assert time.monotonic() - started < 1.0
    assert (client.source, client.version) == ("defaults", None)
    started = time.monotonic()
    assert await client.get_config() == DEFAULTS  # no second wait on a hub known to be down
    assert time.monotonic() - started < 0.05


@pytest.mark.parametrize(
    ("content", "warning"),
    [
        (b'{"format": 1, "service": "svc", "vers', "not valid JSON"),
        (b"\x00\xff garbage", "not valid JSON"),
        (None, "checksum does not match"),  # a valid file, edited by hand
        ("foreign", "belongs to service 'other'"),
    ],
)
async def test_a_corrupt_or_foreign_lkg_file_is_ignored_with_a_warning(
    make_client: MakeClient,
    lkg_dir: Path,
    dead_hub_url: str,
    caplog: pytest.LogCaptureFixture,
    content: bytes | str | None,
    warning: str,
) -> None:
    path = lkg_dir / "svc.json"
    if content == "foreign":
        write_lkg(lkg_dir, "other", 3, DOC).rename(path)
    elif content is None:
        write_lkg(lkg_dir, "svc", 3, DOC)
        path.write_bytes(path.read_bytes().replace(b"250", b"999"))
    else:
        write_raw(path, content)
    client = make_client("svc", central_hub_url=dead_hub_url, safe_defaults=DEFAULTS)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="client.lkg"):
        assert await client.get_config() == DEFAULTS
    assert time.monotonic() - started < 1.0
    assert client.source == "defaults"
    assert any(warning in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)


async def test_no_source_and_no_defaults_raises_not_found(make_client: MakeClient, dead_hub_url: str) -> None:
    client = make_client("svc", central_hub_url=dead_hub_url)
    with pytest.raises(NotFound, match="^Config not found for service: svc$") as caught:
        await client.get_config()
    assert isinstance(caught.value, ValueError)  # as the reference's troubleshooting shows
    assert client.get_value("operational.batch_size", default=100) == 100


# --- the HTTP API -------------------------------------------------------------------------------


async def test_http_source_with_etag_and_ttl_cache(make_client: MakeClient, hub: HubContractFake) -> None:
    hub.set("svc", DOC)
    client = make_client("svc", central_hub_url=hub.url, cache_ttl_seconds=300)
    await client.init_async()
    assert (client.source, client.version) == ("api", 1)
    assert client.updated_at is not None
    assert await client.get_config() == DOC
    assert len(hub.gets("svc")) == 1  # the second read came from the cache
    assert await client.get_config(force_refresh=True) == DOC
    revalidation = hub.gets("svc")[-1]
    assert (revalidation.headers.get("If-None-Match"), revalidation.status) == ('"1"', 304)
    hub.set("svc", {"operational": {"batch_size": 300}})
    assert await client.get_config() == DOC  # still fresh for the TTL
    assert await client.get_config(force_refresh=True) == {"operational": {"batch_size": 300}}
    assert client.version == 2


async def test_expired_cache_asks_again(make_client: MakeClient, hub: HubContractFake) -> None:
    hub.set("svc", DOC)
    client = make_client("svc", central_hub_url=hub.url, cache_ttl_seconds=0)
    await client.init_async()
    seen: list[dict[str, Any]] = []
    client.on_config_update(seen.append)
    hub.set("svc", {"n": 2})
    assert await client.get_config() == {"n": 2}
    await wait_for(lambda: seen == [{"n": 2}], timeout=5, what="callback from the API path")


async def test_bearer_token_from_the_environment(make_client: MakeClient, hub: HubContractFake, lkg_dir) -> None:
    hub.token = "s3cret-token"
    hub.set("svc", DOC)
    client = make_client("svc", central_hub_url=hub.url,
                         environ={"CONFIG_LEDGER_TOKEN": "s3cret-token", "CONFIG_LEDGER_LKG_DIR": str(lkg_dir)})
    assert await client.get_config() == DOC
    assert hub.gets("svc")[0].headers["Authorization"] == "Bearer s3cret-token"


async def test_a_refused_token_falls_back_and_logs(
    make_client: MakeClient, hub: HubContractFake, caplog: pytest.LogCaptureFixture
) -> None:
    hub.token = "right"
    hub.set("svc", DOC)
    client = make_client("svc", central_hub_url=hub.url, token="wrong", safe_defaults=DEFAULTS)
    with caplog.at_level(logging.WARNING, logger="client"):
        assert await client.get_config() == DEFAULTS
    assert any("HTTP 401" in r.getMessage() for r in caplog.records)


async def test_unknown_service_is_not_found(make_client: MakeClient, hub: HubContractFake) -> None:
    client = make_client("ghost", central_hub_url=hub.url)
    with pytest.raises(NotFound, match="Config not found for service: ghost"):
        await client.get_config()
    with_defaults = make_client("ghost", central_hub_url=hub.url, safe_defaults=DEFAULTS)
    assert await with_defaults.get_config() == DEFAULTS


async def test_a_404_that_is_not_the_apis_keeps_what_the_client_holds(
    make_client: MakeClient, hub: HubContractFake, lkg_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong hub URL (or a proxy) answers 404 for everything: that says nothing about the
    service, so the last-known-good config stays."""
    write_lkg(lkg_dir, "svc", 4, DOC)
    client = make_client("svc", central_hub_url=f"{hub.url}/not-the-hub", safe_defaults=DEFAULTS)
    with caplog.at_level(logging.WARNING, logger="client"):
        assert await client.get_config() == DOC
    assert (client.source, client.version) == ("lkg", 4)
    assert any("is the hub URL right?" in r.getMessage() for r in caplog.records)


async def test_api_fetch_writes_the_lkg_file_that_a_later_start_uses(
    make_client: MakeClient, hub: HubContractFake, lkg_dir: Path, dead_hub_url: str
) -> None:
    hub.set("svc", {"old": True})
    hub.set("svc", DOC)
    first = make_client("svc", central_hub_url=hub.url)
    await first.init_async()
    await first.shutdown()  # flushes the LKG writer
    assert first.lkg_path == lkg_dir / "svc.json"
    assert files_in(lkg_dir) == ["svc.json"]  # no temporary file left behind
    second = make_client("svc", central_hub_url=dead_hub_url, safe_defaults=DEFAULTS)
    assert await second.get_config() == DOC
    assert (second.source, second.version) == ("lkg", 2)


async def test_hub_errors_keep_the_config_and_retry_later(
    make_client: MakeClient, hub: HubContractFake, lkg_dir: Path
) -> None:
    write_lkg(lkg_dir, "svc", 1, {"from": "lkg"})
    hub.fail_with = 503
    client = make_client("svc", central_hub_url=hub.url, cache_ttl_seconds=0.2)
    assert await client.get_config() == {"from": "lkg"}
    hub.fail_with = None
    hub.set("svc", {"from": "v1"})
    hub.set("svc", {"from": "hub"})
    await wait_for(client.get_config, timeout=5, what="config")  # never raises meanwhile

    async def from_hub() -> bool:
        return await client.get_config() == {"from": "hub"}

    await wait_for(from_hub, timeout=5, what="the hub's config after it recovered")
    assert (client.source, client.version) == ("api", 2)


async def test_a_deleted_service_falls_back_to_defaults_over_http(
    make_client: MakeClient, hub: HubContractFake
) -> None:
    hub.set("svc", DOC)
    client = make_client("svc", central_hub_url=hub.url, cache_ttl_seconds=0, safe_defaults=DEFAULTS)
    assert await client.get_config() == DOC
    hub.delete("svc")
    assert await client.get_config() == DEFAULTS
    assert (client.source, client.version) == ("defaults", 2)  # the 404 names the deletion


async def test_hot_reload_over_sse_without_nats(make_client: MakeClient, hub: HubContractFake) -> None:
    hub.set("svc", {"n": 1})
    client = make_client("svc", central_hub_url=hub.url, enable_nats_updates=True, safe_defaults=DEFAULTS)
    await client.init_async()
    seen: list[Any] = []
    client.on_config_update(seen.append)
    for n in (2, 3):
        hub.set("svc", {"n": n})
    await wait_for(lambda: client.version == 3, timeout=5, what="SSE updates")
    await wait_for(lambda: seen == [{"n": 2}, {"n": 3}], timeout=5, what="callbacks")
    requests_before = len(hub.gets("svc"))
    assert await client.get_config() == {"n": 3}
    assert len(hub.gets("svc")) == requests_before  # the live watch keeps the cache fresh
    hub.drop_watchers()  # the hub restarts its streams: the client resumes after version 3
    hub.set("svc", {"n": 4})
    await wait_for(lambda: client.version == 4, timeout=5, what="update after the watch reconnected")
    resumed = [r for r in hub.requests if r.path.endswith("/watch")][-1]
    assert resumed.headers.get("Last-Event-ID") in ("3", "4")
    hub.delete("svc")
    await wait_for(lambda: client.source == "defaults", timeout=5, what="deletion over SSE")
    assert seen[-1] == DEFAULTS


# --- construction -----------------------------------------------------------------------------


def test_settings_come_from_the_injected_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NATS_URL", "nats://from-os-environ:4222")
    client = ConfigClient("svc", environ={
        "CENTRAL_HUB_URL": "http://hub:7000",
        "CONFIG_LEDGER_LKG_DIR": str(tmp_path),
        "LEDGER_STREAM": "OTHER",
    })
    assert client.nats_url is None  # os.environ was not consulted
    assert client.central_hub_url == "http://hub:7000"
    assert client.lkg_path == tmp_path / "svc.json"
    assert client.settings.ledger.stream == "OTHER"
    explicit = ConfigClient("svc", "http://explicit:1", environ={"NATS_URL": "nats://n:4222"}, nats_url="",
                            lkg_path=False)
    assert (explicit.central_hub_url, explicit.nats_url, explicit.lkg_path) == ("http://explicit:1", None, None)
    with pytest.raises(UsageError, match="CONFIG_LEDGER_HTTP_TIMEOUT"):
        ConfigClient("svc", environ={"CONFIG_LEDGER_HTTP_TIMEOUT": "soon"})
    with pytest.raises(UsageError):
        ConfigClient("Not A Service!", environ={})


async def test_get_value_paths(make_client: MakeClient, hub: HubContractFake) -> None:
    hub.set("svc", {"a": {"b": [10, {"c": 3}]}, "flag": False})
    client = make_client("svc", central_hub_url=hub.url)
    await client.init_async()
    assert client.get_value("a.b.0") == 10
    assert client.get_value("a.b.1.c") == 3
    assert client.get_value("flag", default=True) is False
    assert client.get_value("a.x.y", default="d") == "d"
    assert client.get_value("a.b.9", default="d") == "d"
    client.get_value("a")["b"].append("mutated")
    assert client.get_value("a.b") == [10, {"c": 3}]


async def test_async_with_and_unavailable_hub_errors_are_translated(dead_hub_url: str) -> None:
    async with ConfigClient("svc", dead_hub_url, safe_defaults=DEFAULTS, environ={}, lkg_path=False) as client:
        assert await client.get_config() == DEFAULTS
        with pytest.raises(Unavailable):
            await client._http.fetch()
    with pytest.raises(UsageError, match="shut down"):
        await client.init_async()
    assert await client.get_config() == DEFAULTS  # still readable during a service's teardown
