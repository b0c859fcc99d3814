"""Hot reload from the stream: callbacks, ordering, deletions, duplicates, forgeries, gaps."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from ledger import Delete, Event, Ledger, Patch, Replace
from ledger.event import event_hash
from tests.support.waiting import wait_for

from .conftest import MakeClient

DEFAULTS = {"operational": {"batch_size": 100}}


async def test_callback_fires_with_the_new_config(ledger: Ledger, stream_client: MakeClient) -> None:
    await ledger.append("svc", Replace({"operational": {"batch_size": 1}}), actor="ops")
    started = time.monotonic()
    client = stream_client("svc")
    await client.init_async()
    assert time.monotonic() - started < 1.0
    assert (client.source, client.version) == ("stream", 1)
    assert await client.get_config() == {"operational": {"batch_size": 1}}
    seen: list[dict[str, Any]] = []
    client.on_config_update(seen.append)
    done = await ledger.append("svc", Patch({"operational": {"batch_size": 2}}), actor="ops")
    await wait_for(lambda: seen, timeout=5, what="callback")
    assert seen == [{"operational": {"batch_size": 2}}]
    assert client.version == 2 and client.updated_at == done.event.occurred_at
    assert client.get_value("operational.batch_size") == 2


async def test_two_hundred_changes_arrive_in_order(ledger: Ledger, stream_client: MakeClient) -> None:
    await ledger.append("svc", Replace({"n": 0}), actor="ops")
    client = stream_client("svc")
    await client.init_async()
    seen: list[int] = []
    client.on_config_update(lambda config: seen.append(config["n"]))
    for n in range(1, 201):
        await ledger.append("svc", Replace({"n": n}), actor="ops")
    await wait_for(lambda: len(seen) >= 200, timeout=20, what="200 callbacks")
    assert seen == list(range(1, 201))
    assert client.version == 201


async def test_callbacks_sync_and_async_in_order_and_a_failing_one_is_logged(
    ledger: Ledger, stream_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    await ledger.append("svc", Replace({"n": 0}), actor="ops")
    client = stream_client("svc")
    await client.init_async()
    calls: list[str] = []

    def first(config: dict[str, Any]) -> None:
        calls.append(f"sync{config['n']}")

    async def second(config: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # a real await inside the callback
        calls.append(f"async{config['n']}")

    def broken(config: dict[str, Any]) -> None:
        raise RuntimeError("callback bug")

    def last(config: dict[str, Any]) -> None:
        calls.append(f"last{config['n']}")

    for callback in (first, second, broken, last):
        client.on_config_update(callback)
    with caplog.at_level(logging.ERROR, logger="client.callbacks"):
        for n in (1, 2):
            await ledger.append("svc", Replace({"n": n}), actor="ops")
        await wait_for(lambda: len(calls) == 6, timeout=5, what="callbacks")
    assert calls == ["sync1", "async1", "last1", "sync2", "async2", "last2"]
    failures = [r for r in caplog.records if "broken" in r.getMessage()]
    assert len(failures) == 2 and "svc version 2 from stream" in failures[0].getMessage()
    # the client survived its callback's failure, and keeps the config it had before (issue 16:
    # an update a callback raises on is rejected and reported so)
    await ledger.append("svc", Replace({"n": 3}), actor="ops")
    await wait_for(lambda: len(calls) == 9, timeout=5, what="next update")
    await wait_for(lambda: client.version == 1 and client.get_value("n") == 0, timeout=5, what="previous config")


async def test_callbacks_get_copies(ledger: Ledger, stream_client: MakeClient) -> None:
    await ledger.append("svc", Replace({"n": 0}), actor="ops")
    client = stream_client("svc")
    await client.init_async()
    seen: list[dict[str, Any]] = []

    def meddle(config: dict[str, Any]) -> None:
        config["n"] = "changed by a callback"
        seen.append(config)

    client.on_config_update(meddle)
    await ledger.append("svc", Replace({"n": 1}), actor="ops")
    await wait_for(lambda: seen, timeout=5, what="callback")
    assert await client.get_config() == {"n": 1}


async def test_deletion_falls_back_to_safe_defaults_and_notifies(
    ledger: Ledger, stream_client: MakeClient
) -> None:
    await ledger.append("svc", Replace({"operational": {"batch_size": 7}}), actor="ops")
    client = stream_client("svc", safe_defaults=DEFAULTS)
    await client.init_async()
    seen: list[dict[str, Any]] = []
    client.on_config_update(seen.append)
    await ledger.append("svc", Delete(), actor="ops")
    await wait_for(lambda: seen, timeout=5, what="deletion callback")
    assert seen == [DEFAULTS]
    assert (client.source, client.version) == ("defaults", 2)
    assert await client.get_config() == DEFAULTS
    await ledger.append("svc", Replace({"operational": {"batch_size": 9}}), actor="ops")
    await wait_for(lambda: len(seen) == 2, timeout=5, what="re-created config")
    assert seen[1] == {"operational": {"batch_size": 9}} and client.source == "stream"


async def test_deleted_without_defaults_is_not_found(ledger: Ledger, stream_client: MakeClient) -> None:
    await ledger.append("svc", Replace({"a": 1}), actor="ops")
    await ledger.append("svc", Delete(), actor="ops")
    client = stream_client("svc")
    with pytest.raises(ValueError, match="Config not found for service: svc"):
        await client.get_config()
    assert client.get_value("a", default="none") == "none"


async def test_an_empty_subject_means_no_config(ledger: Ledger, stream_client: MakeClient) -> None:
    client = stream_client("nobody", safe_defaults=DEFAULTS)
    await client.init_async()
    assert (client.source, client.version) == ("defaults", None)
    seen: list[dict[str, Any]] = []
    client.on_config_update(seen.append)
    await ledger.append("nobody", Replace({"x": 1}), actor="ops")
    await wait_for(lambda: seen == [{"x": 1}], timeout=5, what="first config")


async def test_duplicates_older_versions_and_altered_events_are_ignored(
    ledger: Ledger, stream_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Events published straight to the subject (no CAS): a re-sent copy, an older version,
    and a copy with its config changed but its old hash."""
    events = [(await ledger.append("svc", Replace({"n": n}), actor="ops")).event for n in (1, 2, 3)]
    client = stream_client("svc")
    await client.init_async()
    seen: list[dict[str, Any]] = []
    client.on_config_update(seen.append)
    js = ledger.nc.jetstream()
    subject = ledger.subject("svc")
    altered = events[2].model_copy(update={"version": 4, "prev_hash": events[2].hash, "config": {"n": "evil"}})
    with caplog.at_level(logging.ERROR, logger="client"):
        for forged in (events[2], events[0], altered):
            await js.publish(subject, forged.to_bytes(), stream=ledger.settings.stream)
        # a legitimate next version, chained on the last real event, published the same way
        fields = {**events[2].to_dict(), "version": 4, "prev_hash": events[2].hash, "config": {"n": 4},
                  "change": {"n": 4}, "event_id": "2f0e5d0c-0000-4000-8000-000000000004"}
        fields["hash"] = event_hash(fields)
        await js.publish(subject, Event.from_dict(fields).to_bytes(), stream=ledger.settings.stream)
        await wait_for(lambda: client.version == 4, timeout=5, what="version 4")
        await wait_for(lambda: seen, timeout=5, what="callback")
    assert seen == [{"n": 4}]
    assert any("hash does not recompute" in r.getMessage() for r in caplog.records)


async def test_a_lost_delivery_is_recovered_by_a_resync(
    ledger: Ledger, stream_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Fault injection: the watcher loses the delivery of version 3; the version gap it sees
    next makes it re-read from the last version it has, so no callback is missed."""
    await ledger.append("svc", Replace({"n": 1}), actor="ops")
    client = stream_client("svc")
    await client.init_async()
    seen: list[int] = []
    client.on_config_update(lambda config: seen.append(config["n"]))
    watcher = client._sources.watcher
    assert watcher is not None and watcher.subscriptions == 1
    deliver = watcher._queue.put_nowait
    dropped: list[int] = []

    def lossy(item: Any) -> None:
        if isinstance(item, tuple) and b'"version":3' in item[1].data and not dropped:
            dropped.append(3)
            return
        deliver(item)

    watcher._queue.put_nowait = lossy  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="client"):
        for n in (2, 3, 4, 5):
            await ledger.append("svc", Replace({"n": n}), actor="ops")
        await wait_for(lambda: client.version == 5, timeout=5, what="version 5")
        await wait_for(lambda: len(seen) == 4, timeout=5, what="callbacks")
    assert dropped == [3]
    assert seen == [2, 3, 4, 5]
    assert watcher.subscriptions == 2
    # Caught by the watcher's consumer-sequence check (ledger.consumer) or, failing that, by the
    # client's version-gap check: either re-reads from the last version the client has.
    assert any("version gap" in r.getMessage() or "consumer sequence jumped" in r.getMessage()
               for r in caplog.records)


async def test_a_gap_in_the_stream_itself_is_accepted_after_one_resync(
    ledger: Ledger, stream_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    first = (await ledger.append("svc", Replace({"n": 1}), actor="ops")).event
    client = stream_client("svc")
    await client.init_async()
    fields = {**first.to_dict(), "version": 3, "prev_hash": first.hash, "config": {"n": 3},
              "change": {"n": 3}, "event_id": "2f0e5d0c-0000-4000-8000-000000000003"}
    fields["hash"] = event_hash(fields)
    with caplog.at_level(logging.WARNING, logger="client"):
        await ledger.nc.jetstream().publish(
            ledger.subject("svc"), Event.from_dict(fields).to_bytes(), stream=ledger.settings.stream
        )
        await wait_for(lambda: client.version == 3, timeout=5, what="version 3")
    messages = [r.getMessage() for r in caplog.records]
    assert any("re-reading" in m for m in messages)
    assert any("the stream itself skips from version 1 to 3" in m for m in messages)
    assert client._sources.watcher is not None and client._sources.watcher.subscriptions == 2


async def test_without_hot_reload_the_stream_is_read_per_cache_period(
    ledger: Ledger, stream_client: MakeClient
) -> None:
    await ledger.append("svc", Replace({"n": 1}), actor="ops")
    client = stream_client("svc", enable_nats_updates=False, cache_ttl_seconds=300)
    await client.init_async()
    assert (client.source, client.version) == ("stream", 1)
    await ledger.append("svc", Replace({"n": 2}), actor="ops")
    assert await client.get_config() == {"n": 1}  # cached
    assert await client.get_config(force_refresh=True) == {"n": 2}
    seen: list[dict[str, Any]] = []
    client.on_config_update(seen.append)
    await client.subscribe_to_updates()  # hot reload on demand
    await ledger.append("svc", Replace({"n": 3}), actor="ops")
    await wait_for(lambda: seen == [{"n": 3}], timeout=5, what="hot reload after subscribe_to_updates")


async def test_concurrent_first_calls_all_wait_for_the_first_source(
    ledger: Ledger, stream_client: MakeClient
) -> None:
    await ledger.append("svc", Replace({"n": 1}), actor="ops")
    client = stream_client("svc", safe_defaults={"n": 0})
    configs = await asyncio.gather(*(client.get_config() for _ in range(5)))
    assert configs == [{"n": 1}] * 5
    assert client.source == "stream"
