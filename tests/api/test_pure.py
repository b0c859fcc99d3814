"""The pure pieces: diff (with properties), parameter parsing, error mapping, the stream follower."""

from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api import apply_diff, diff
from api.errors import PARSE_RULES, BadRequest, status_of
from api.follower import StreamFollower
from api.params import (
    decode_cursor,
    encode_cursor,
    if_none_match_hits,
    parse_if_match,
    parse_instant,
    parse_version_or_instant,
)
from ledger import (
    InvalidConfig,
    InvalidServiceName,
    Ledger,
    LedgerSettings,
    NotFound,
    StoreTimeout,
    Unavailable,
    VersionConflict,
)
from ledger.errors import InvalidChange, InvalidInstant, LedgerError, ProjectionDiverged
from ledger.event import Event, Replace, new_event
from ledger.nats_io import StoredMsg

_keys = st.text(alphabet="ab/~.c", min_size=0, max_size=3)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False), st.text(max_size=3))
_values = st.recursive(_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(_keys, c, max_size=3), max_leaves=10)
_docs = st.dictionaries(_keys, _values, max_size=4)


@settings(max_examples=300)
@given(old=st.one_of(st.none(), _docs), new=_docs)
def test_applying_the_diff_rebuilds_the_new_document(old, new) -> None:
    before = copy.deepcopy(old)
    d = diff(old, new)
    assert old == before  # inputs untouched
    assert apply_diff(old, d) == new
    for kind in ("added", "removed", "changed"):
        paths = [item["path"] for item in d[kind]]
        assert paths == sorted(paths)


@settings(max_examples=200)
@given(doc=_docs)
def test_a_document_has_no_diff_with_itself(doc) -> None:
    assert diff(doc, copy.deepcopy(doc)) == {"added": [], "removed": [], "changed": []}


def test_diff_examples() -> None:
    assert diff({"a": 1}, {"a": 1.0})["changed"] == [{"path": "/a", "from": 1, "to": 1.0}]
    assert diff({"a": 1}, {"a": True})["changed"] == [{"path": "/a", "from": 1, "to": True}]
    assert diff({"a/b": {"~": 1}}, {"a/b": {"~": 2}})["changed"][0]["path"] == "/a~1b/~0"
    assert diff({"l": [1, 2]}, {"l": [1, 3]})["changed"] == [{"path": "/l", "from": [1, 2], "to": [1, 3]}]
    assert diff(None, {"x": {}})["added"] == [{"path": "/x", "value": {}}]
    assert diff({"x": {"y": 1}}, None)["removed"] == [{"path": "/x", "value": {"y": 1}}]


def test_params() -> None:
    assert parse_if_match('"7"') == 7 and parse_if_match("7") == 7 and parse_if_match('W/"7"') == 7
    assert parse_if_match("*") == "*" and parse_if_match(None) is None
    for bad in ('"a"', '"1", "2"', "", '"99999999999"'):
        with pytest.raises(BadRequest):
            parse_if_match(bad)
    assert if_none_match_hits('"1", "2"', '"2"') and if_none_match_hits("*", '"5"')
    assert not if_none_match_hits('"12"', '"1"') and not if_none_match_hits(None, '"1"')
    assert parse_instant("2026-11-28T10:30:45Z") == datetime(2026, 11, 28, 10, 30, 45, tzinfo=UTC)
    assert parse_instant("2026-11-28T12:30:45 02:00") == datetime(2026, 11, 28, 10, 30, 45, tzinfo=UTC)
    for bad in ("2026-11-28", "2026-11-28T10:30:45", "now", "9999-12-31T23:59:59-23:59"):
        with pytest.raises(InvalidInstant):  # a UsageError: 400 with rule instant.*
            parse_instant(bad)
    assert parse_version_or_instant("3", "from") == 3
    assert isinstance(parse_version_or_instant("2026-11-28T10:30:45Z", "from"), datetime)
    assert decode_cursor(encode_cursor(41)) == 41
    for bad in ("", "eyJ4IjoxfQ", "e30", "bm90IGpzb24"):
        with pytest.raises(BadRequest):
            decode_cursor(bad)


def test_status_mapping() -> None:
    assert status_of(InvalidServiceName("X")) == 400
    for rule in PARSE_RULES:
        assert status_of(InvalidConfig(rule, "x")) == 400
    assert status_of(InvalidConfig("secret.key_name", "x")) == 422
    assert status_of(InvalidChange("x")) == 422
    assert status_of(NotFound("x")) == 404
    assert status_of(VersionConflict("s", 1, 2)) == 409
    assert status_of(Unavailable("x")) == 503 and status_of(StoreTimeout("x")) == 503
    assert status_of(ProjectionDiverged("x")) == 503 and status_of(LedgerError("x")) == 503


class _Nc:
    is_connected = True

    def jetstream(self, **_: object) -> None:
        return None

    def new_inbox(self) -> str:
        return "_INBOX.x"


def _stored(event: Event, seq: int) -> StoredMsg:
    settings = LedgerSettings()
    return StoredMsg(subject=settings.subject(event.service), seq=seq, data=event.to_bytes(),
                     stored_at=datetime(2026, 1, 1, tzinfo=UTC), headers={})


def _chain(service: str, n: int) -> list[Event]:
    out: list[Event] = []
    for i in range(1, n + 1):
        out.append(new_event(out[-1] if out else None, service, Replace({"v": i}), actor="a", reason="",
                             occurred_at=datetime(2026, 1, 1, tzinfo=UTC), event_id=str(uuid.uuid4())))
    return out


def test_follower_keeps_current_documents_recent_versions_and_wakes_watchers() -> None:
    led = Ledger(_Nc(), LedgerSettings())  # type: ignore[arg-type]
    follower = StreamFollower(led, history=3)
    wake = follower.subscribe("a")
    a, b = _chain("a", 5), _chain("b", 1)
    follower.apply(_stored(a[1], 10))  # the initial load starts at the last version (2)
    follower.apply(_stored(b[0], 11))
    assert follower.seq == 11 and follower.get("a").etag == '"2"' and wake.is_set()
    assert follower.versions_after("a", 1) == [follower.version("a", 2)]
    assert follower.versions_after("a", 0) is None  # version 1 was never seen here: ask the stream
    assert follower.versions_after("a", 2) == [] and follower.versions_after("zz", 0) == []
    for seq, event in zip((12, 13, 14), a[2:], strict=True):
        follower.apply(_stored(event, seq))
    assert [v.version for v in follower.versions_after("a", 2)] == [3, 4, 5]
    assert follower.versions_after("a", 1) is None  # only the last 3 are kept
    assert follower.get("a").version.version == 5
    follower.apply(StoredMsg(subject=led.subject("a"), seq=15, data=b"{}", stored_at=datetime.now(UTC), headers={}))
    assert follower.seq == 15 and follower.skipped == 1 and follower.get("a").version.version == 5


async def test_follower_wait_for_wakes_when_the_sequence_arrives() -> None:
    led = Ledger(_Nc(), LedgerSettings())  # type: ignore[arg-type]
    follower = StreamFollower(led)
    waiting = asyncio.ensure_future(follower.wait_for(1, 30))
    await asyncio.sleep(0)
    assert not waiting.done()
    follower.apply(_stored(_chain("a", 1)[0], 1))
    assert await waiting is True
    assert await follower.wait_for(2, 0) is False
