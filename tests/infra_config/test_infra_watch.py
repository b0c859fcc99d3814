"""The file watcher: reload on change, callbacks, iteration, failures kept non-fatal.

Every wait is on a condition with a deadline (asyncio.wait_for); no sleep synchronises.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from infra_config import ConfigUsageError, InfraConfigError, InfrastructureConfigManager

pytestmark = pytest.mark.timeout(15)

DEADLINE = 5.0
POLL = 0.01


@pytest.fixture
async def config(tmp_path):
    (tmp_path / "infrastructure.yaml").write_text("cache:\n  port: 6379\n")
    manager = InfrastructureConfigManager(
        "central-hub", "production", config_dir=tmp_path, environ={}
    )
    await manager.load_config()
    return manager


async def test_change_reloads_and_calls_async_callback(config, tmp_path):
    seen: list[dict] = []
    changed = asyncio.Event()

    async def on_change(new: dict) -> None:
        seen.append(new)
        changed.set()

    async with config.watch(on_change, interval=POLL) as watcher:
        (tmp_path / "infrastructure.yaml").write_text("cache:\n  port: 16379\n")
        await asyncio.wait_for(changed.wait(), DEADLINE)
        assert watcher.reloads == 1
    assert seen == [{"cache": {"port": 16379}}]
    assert await config.get("cache.port") == 16379


async def test_new_environment_file_is_picked_up(config, tmp_path):
    changed = asyncio.Event()
    async with config.watch(lambda _: changed.set(), interval=POLL):
        (tmp_path / "production.yml").write_text("cache:\n  host: dragonfly\n")
        await asyncio.wait_for(changed.wait(), DEADLINE)
    assert await config.get_cache_config() == {"port": 6379, "host": "dragonfly"}


async def test_failing_callback_is_logged_not_fatal(config, tmp_path, caplog):
    calls: list[int] = []
    first, second = asyncio.Event(), asyncio.Event()

    def broken(_: dict) -> None:
        raise RuntimeError("callback bug")

    def counting(new: dict) -> None:
        calls.append(new["cache"]["port"])
        (first if len(calls) == 1 else second).set()

    async with config.watch(broken, interval=POLL) as watcher:
        watcher.add_callback(counting)
        (tmp_path / "infrastructure.yaml").write_text("cache:\n  port: 1111\n")
        await asyncio.wait_for(first.wait(), DEADLINE)
        (tmp_path / "infrastructure.yaml").write_text("cache:\n  port: 22222\n")
        await asyncio.wait_for(second.wait(), DEADLINE)
    assert calls == [1111, 22222]
    failures = [r for r in caplog.records if "callback" in r.getMessage() and r.exc_info]
    assert len(failures) == 2 and failures[0].levelno == logging.ERROR


async def test_invalid_reload_keeps_previous_config(config, tmp_path, caplog):
    errors: list[InfraConfigError] = []
    failed, fixed = asyncio.Event(), asyncio.Event()

    async def on_error(exc: InfraConfigError) -> None:
        errors.append(exc)
        failed.set()

    async with config.watch(lambda _: fixed.set(), interval=POLL, on_error=on_error) as watcher:
        (tmp_path / "infrastructure.yaml").write_text("cache:\n  port: not-a-port\n")
        await asyncio.wait_for(failed.wait(), DEADLINE)
        assert await config.get("cache.port") == 6379  # the previous config stays
        assert watcher.reloads == 0
        (tmp_path / "infrastructure.yaml").write_text("cache:\n  port: 7000\n")
        await asyncio.wait_for(fixed.wait(), DEADLINE)
    assert len(errors) == 1  # the same broken file is not retried every poll
    assert errors[0].key == "cache.port"  # type: ignore[attr-defined]
    assert await config.get("cache.port") == 7000
    logged = [r for r in caplog.records if "reload failed" in r.getMessage()]
    assert logged and "cache.port" in logged[0].getMessage()


async def test_async_iteration_yields_current_then_changes(config, tmp_path):
    async with config.watch(interval=POLL) as watcher:
        updates = aiter(watcher)
        first = await asyncio.wait_for(anext(updates), DEADLINE)
        assert first == {"cache": {"port": 6379}}
        (tmp_path / "infrastructure.yaml").write_text("cache:\n  port: 6380\n")
        second = await asyncio.wait_for(anext(updates), DEADLINE)
        assert second == {"cache": {"port": 6380}}
        pending = asyncio.ensure_future(anext(updates))
    # closing the watcher ends every iteration
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, DEADLINE)


async def test_watch_loads_when_needed_and_stops_on_exit(tmp_path):
    (tmp_path / "infrastructure.yaml").write_text("a: 1\n")
    manager = InfrastructureConfigManager("hub", config_dir=tmp_path, environ={})
    watcher = manager.watch(interval=POLL)
    async with watcher:
        assert manager.loaded
        task = watcher._task
        assert task is not None and not task.done()
    assert task.done()
    with pytest.raises(ConfigUsageError):
        await watcher.start()


def test_interval_must_be_positive(tmp_path):
    manager = InfrastructureConfigManager("hub", config_dir=tmp_path, environ={})
    with pytest.raises(ConfigUsageError):
        manager.watch(interval=0)
