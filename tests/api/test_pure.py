"""The pure pieces: diff (with properties), parameter parsing, error mapping, the cache."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api import apply_diff, diff
from api.cache import ConfigCache
from api.errors import PARSE_RULES, BadRequest, status_of
from api.params import (
    decode_cursor,
    encode_cursor,
    if_none_match_hits,
    parse_if_match,
    parse_instant,
    parse_version_or_instant,
)
from api.repository import Version
from ledger import (
    InvalidConfig,
    InvalidServiceName,
    NotFound,
    StoreTimeout,
    Unavailable,
    VersionConflict,
)
from ledger.errors import InvalidChange, InvalidInstant, LedgerError, ProjectionDiverged

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


def _v(service: str, version: int, seq: int) -> Version:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    return Version(service, version, "replaced", None, {"v": version}, "a", "", t, t, seq, None, None, "h")


def test_cache_applies_increments_and_full_reloads() -> None:
    cache = ConfigCache()
    assert cache.seq == -1
    assert cache.apply(3, [_v("a", 1, 1), _v("b", 1, 3)], full=True) == {"a", "b"}
    assert cache.seq == 3 and cache.get("a").etag == '"1"'
    assert cache.apply(5, [_v("a", 2, 5)], full=False) == {"a"}
    assert cache.apply(5, [_v("a", 1, 1)], full=False) == set()  # never backwards
    assert cache.get("a").version.version == 2
    assert cache.apply(9, [_v("b", 1, 3)], full=True) == {"a"}  # a vanished (rebuilt projection)
    assert cache.get("a") is None and len(cache) == 1
