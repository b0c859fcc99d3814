"""Parsing of query parameters and headers (pure; every failure is a 400 with a rule id)."""

from __future__ import annotations

import base64
import re
from datetime import datetime

import orjson

from ledger import instants
from ledger.validate import validate_service_name

from .errors import BadRequest

__all__ = [
    "MAX_VERSION",
    "parse_version",
    "parse_instant",
    "parse_version_or_instant",
    "parse_limit",
    "parse_if_match",
    "if_none_match_hits",
    "parse_min_seq",
    "parse_last_event_id",
    "encode_cursor",
    "decode_cursor",
    "service_param",
    "clean_text",
]

MAX_VERSION = 2**31 - 1
_INT = re.compile(r"^[0-9]{1,19}$")
_ETAG_ONE = re.compile(r'^(?:W/)?"([0-9]{1,10})"$|^([0-9]{1,10})$')


def service_param(name: str) -> str:
    """The ``{service}`` path segment, validated (400 with rule ``service_name``)."""
    return validate_service_name(name)


def _int(text: str, rule: str, what: str, *, low: int, high: int) -> int:
    text = text.strip()
    if not _INT.match(text):
        raise BadRequest(rule, f"{what} must be an integer from {low} to {high}")
    value = int(text)
    if not low <= value <= high:
        raise BadRequest(rule, f"{what} must be an integer from {low} to {high}")
    return value


def parse_version(text: str, what: str = "version") -> int:
    return _int(text, "query.version", what, low=1, high=MAX_VERSION)


def parse_instant(text: str, what: str = "at") -> datetime:
    """RFC 3339 with a zone (``ledger.instants``); a ``+`` decoded from a query as a space is put
    back. Raises InvalidInstant (400, rule ``instant.*``)."""
    return instants.parse_instant(text.strip().replace(" ", "+"), what)


def parse_version_or_instant(text: str, what: str) -> int | datetime:
    """``from``/``to`` of a diff: a version number or an RFC 3339 instant."""
    stripped = text.strip()
    if _INT.match(stripped):
        return parse_version(stripped, what)
    return parse_instant(stripped, what)


def parse_limit(text: str | None, *, default: int, maximum: int) -> int:
    if text is None:
        return default
    return _int(text, "query.limit", "limit", low=1, high=maximum)


def parse_if_match(value: str | None) -> int | str | None:
    """``If-Match: "7"`` → 7; ``*`` → "*"; absent → None. One value only."""
    if value is None:
        return None
    value = value.strip()
    if value == "*":
        return "*"
    match = _ETAG_ONE.match(value)
    if not match:
        raise BadRequest("header.if_match", 'If-Match must be one version ETag such as "7" (or *)')
    number = int(match.group(1) or match.group(2))
    if number > MAX_VERSION:
        raise BadRequest("header.if_match", "If-Match version is out of range")
    return number


def if_none_match_hits(header: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` names ``etag`` (weak comparison, lists, ``*``)."""
    if not header:
        return False
    for part in header.split(","):
        tag = part.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def if_none_match_version(header: str | None) -> int:
    """The newest version an ``If-None-Match`` names (0: none): the reader has seen it."""
    if not header:
        return 0
    best = 0
    for part in header.split(","):
        match = _ETAG_ONE.match(part.strip())
        if match:
            number = int(match.group(1) or match.group(2))
            if number <= MAX_VERSION:
                best = max(best, number)
    return best


def parse_min_version(query: str | None) -> int:
    """``?min_version=N``: a version the reader has seen; it never gets an older one."""
    if query is None:
        return 0
    return _int(query, "query.min_version", "min_version", low=0, high=MAX_VERSION)


def parse_min_seq(header: str | None, query: str | None) -> int:
    """``X-Min-Seq`` header or ``?min_seq=``: the stream sequence a read must reflect."""
    out = 0
    for value, what in ((header, "X-Min-Seq"), (query, "min_seq")):
        if value is not None:
            out = max(out, _int(value, "min_seq", what, low=0, high=2**63 - 1))
    return out


def parse_last_event_id(header: str | None, query: str | None) -> int | None:
    """``Last-Event-ID`` (a blank header counts as absent), else ``?last_event_id=``."""
    if header is not None and header.strip():
        return _int(header, "header.last_event_id", "Last-Event-ID", low=0, high=MAX_VERSION)
    if query is None:
        return None
    return _int(query, "query.last_event_id", "last_event_id", low=0, high=MAX_VERSION)


def encode_cursor(before_version: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"before": before_version})).decode().rstrip("=")


def decode_cursor(text: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = orjson.loads(raw)["before"]
    except Exception:  # noqa: BLE001 - any malformed cursor is the client's
        raise BadRequest("query.cursor", "cursor is not one this server issued") from None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VERSION:
        raise BadRequest("query.cursor", "cursor is not one this server issued")
    return value


def clean_text(value: str, *, what: str, limit: int) -> str:
    """A header/query text that must survive JSON and PostgreSQL: no NUL, no lone surrogates."""
    if len(value) > limit:
        raise BadRequest(f"{what}.length", f"{what} is longer than {limit} characters")
    if "\x00" in value:
        raise BadRequest(f"{what}.encoding", f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{what}.encoding", f"{what} is not valid UTF-8") from None
    return value
