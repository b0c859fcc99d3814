"""The NATS edge: every nats-py error translated in one place; appends retried through a leader
election until the write deadline; a watcher whose consumer vanishes re-creates it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats.errors
import nats.js.errors
import pytest

from ledger import Ledger, LedgerSettings, Replace
from ledger.errors import (
    LedgerError,
    NotFound,
    StoreTimeout,
    TemporarilyUnavailable,
    Unavailable,
    WrongLastSequence,
)
from ledger.nats_io import JS, translate
from ledger.watch import StreamWatcher
from tests.support.waiting import wait_for


def api_error(code: int, err_code: int, description: str) -> nats.js.errors.APIError:
    """The exception nats-py raises for this JetStream error reply."""
    try:
        nats.js.errors.APIError.from_error({"code": code, "err_code": err_code, "description": description})
    except nats.js.errors.APIError as exc:
        return exc
    raise AssertionError("from_error did not raise")


@pytest.mark.parametrize("err_code", [JS.WRONG_LAST_SEQUENCE, JS.WRONG_LAST_SEQUENCE_CLUSTERED])
def test_wrong_last_sequence_on_one_node_and_on_a_cluster(err_code: int) -> None:
    got = translate(api_error(400, err_code, "wrong last sequence: 42"), "append")
    assert type(got) is WrongLastSequence and got.actual == 42


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (api_error(503, JS.TEMPORARILY_UNAVAILABLE, "stream temporarily unavailable"), TemporarilyUnavailable),
        (api_error(503, JS.CLUSTER_NOT_AVAILABLE, "JetStream system temporarily unavailable"),
         TemporarilyUnavailable),
        (api_error(503, 10999, "a 503 we do not know"), TemporarilyUnavailable),
        (nats.js.errors.NoStreamResponseError(), TemporarilyUnavailable),
        (nats.errors.NoRespondersError(), TemporarilyUnavailable),
        (nats.errors.ConnectionReconnectingError(), TemporarilyUnavailable),
        (nats.errors.TimeoutError(), StoreTimeout),
        (TimeoutError(), StoreTimeout),
        (nats.errors.ConnectionClosedError(), Unavailable),
        (ConnectionResetError(), Unavailable),
        (api_error(404, 10037, "no message found"), NotFound),
        (api_error(400, 10999, "something else"), LedgerError),
    ],
)
def test_each_error_has_one_translation(exc: BaseException, expected: type[LedgerError]) -> None:
    assert type(translate(exc, "append")) is expected


@pytest.mark.parametrize("err_code", [JS.STORAGE_RESOURCES_EXCEEDED, JS.INSUFFICIENT_RESOURCES])
def test_store_full_only_for_storage_codes(err_code: int) -> None:
    got = translate(api_error(503, err_code, "insufficient storage resources available"), "append")
    assert type(got) is Unavailable and "cannot store more" in got.message
    temporary = translate(api_error(503, JS.TEMPORARILY_UNAVAILABLE, "temporarily unavailable"), "append")
    assert "cannot store more" not in temporary.message


async def test_a_lost_race_answered_10164_is_re_read_and_retried(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    await ledger.append("svc", Replace({"a": 0}), actor="a")
    real = ledger.js.publish
    calls = 0

    async def clustered_conflict(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:  # what an R3 stream answers to a stale expected sequence
            raise api_error(400, JS.WRONG_LAST_SEQUENCE_CLUSTERED, "wrong last sequence: 1")
        return await real(*args, **kwargs)

    monkeypatch.setattr(ledger.js, "publish", clustered_conflict)
    done = await ledger.append("svc", Replace({"a": 1}), actor="a")
    assert calls == 2 and done.version == 2 and not done.duplicate


async def test_an_append_rides_through_a_leader_election(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    real = ledger.js.publish
    seen: list[dict[str, str]] = []

    async def electing(subject: str, data: bytes, **kwargs: Any) -> Any:
        seen.append(dict(kwargs["headers"]))
        if len(seen) <= 4:  # "no response from stream", then 10163, while a leader is elected
            raise nats.js.errors.NoStreamResponseError if len(seen) <= 2 else api_error(
                503, JS.TEMPORARILY_UNAVAILABLE, "stream temporarily unavailable")
        return await real(subject, data, **kwargs)

    monkeypatch.setattr(ledger.js, "publish", electing)
    done = await ledger.append("svc", Replace({"a": 1}), actor="a", idempotency_key="k")
    assert done.version == 1 and len(seen) == 5
    # every retry: the same message id and the same expected sequence
    assert len({tuple(sorted(h.items())) for h in seen}) == 1


async def test_past_the_write_deadline_it_may_be_stored(provisioned: LedgerSettings,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = provisioned.model_copy(update={"write_deadline": 0.3})
    async with Ledger.connect(settings=settings) as led:
        async def leaderless(*args: Any, **kwargs: Any) -> Any:
            raise nats.js.errors.NoStreamResponseError

        monkeypatch.setattr(led.js, "publish", leaderless)
        with pytest.raises(StoreTimeout) as info:
            await led.append("svc", Replace({"a": 1}), actor="a", idempotency_key="k")
    assert "write deadline" in info.value.message and "same idempotency key" in info.value.message


async def test_write_deadline_setting_from_the_environment() -> None:
    assert LedgerSettings.from_env({"LEDGER_WRITE_DEADLINE": "2.5"}).write_deadline == 2.5
    assert LedgerSettings().write_deadline == 10.0


async def test_a_watcher_whose_consumer_vanishes_re_creates_it_and_says_so(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    """What a watcher sees when the server holding its consumer dies while it is connected to
    another node: its consumer stops (here: deleted behind its back)."""
    await ledger.append("svc", Replace({"n": 1}), actor="a")
    watcher = StreamWatcher(ledger.nc, ledger.settings, ledger.subject("svc"), after_seq=0)
    got: list[int] = []

    async def follow() -> None:
        async for msg in watcher:
            if msg is not None:
                got.append(msg.seq)

    task = asyncio.create_task(follow())
    try:
        await wait_for(lambda: got == [1], timeout=10, what="the first message")
        js = ledger.nc.jetstream()
        for info in await js.consumers_info(ledger.settings.stream):
            await js.delete_consumer(ledger.settings.stream, info.name)
        with caplog.at_level(logging.WARNING, logger="ledger.watch"):
            await ledger.append("svc", Replace({"n": 2}), actor="a")
            await wait_for(lambda: got == [1, 2], timeout=10, what="the message after the loss")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert watcher.recovery.recoveries == 1 and watcher.subscriptions == 2
    assert sum("consumer re-created" in r.getMessage() for r in caplog.records) == 1
