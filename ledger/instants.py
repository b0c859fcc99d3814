"""Instants: the one parser and the one formatter for every point in time the project reads or
writes (API ``?at=``/``from``/``to``/``to_time``, the CLI's ``--at``/``--to``, events, responses).

Supported range: ``0001-01-01T00:00:00Z`` … ``9999-12-31T23:59:59.999999Z`` (what RFC 3339's
four-digit year, Python and PostgreSQL all hold). Anything else is an ``InvalidInstant`` (HTTP 400)
with a rule id: ``instant.syntax`` (not RFC 3339), ``instant.zone`` (no ``Z``/offset),
``instant.range`` (outside the range above, also after applying the offset).

The format is always ``YYYY-MM-DDTHH:MM:SS.ffffffZ``: UTC, microseconds, four-digit year
(``strftime("%Y")`` writes year 999 as ``999``, which NATS and RFC 3339 parsers refuse).

NATS stream time filters (``start_time``, ``up_to_time``) are Go ``time.Time`` values that the
server turns into int64 nanoseconds since 1970: only ``NATS_MIN`` … ``NATS_MAX``
(1677-09-21 … 2262-04-11) survive. Outside it the server wraps around silently, so callers
clamp first with :func:`clamp_for_stream` (nothing was stored before 1970, and everything was
stored before 2262).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from .errors import InvalidInstant

__all__ = [
    "MIN",
    "MAX",
    "NATS_MIN",
    "NATS_MAX",
    "EXAMPLE",
    "parse_instant",
    "format_instant",
    "format_nats",
    "clamp_for_stream",
]

MIN = datetime(1, 1, 1, tzinfo=UTC)
MAX = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
# int64 nanoseconds around the Unix epoch, rounded inwards to whole microseconds
NATS_MIN = datetime(1677, 9, 21, 0, 12, 43, 145225, tzinfo=UTC)
NATS_MAX = datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=UTC)
EXAMPLE = "2026-11-28T10:30:45Z"

# RFC 3339 date-time (``T``/``t``/space separator, fraction of any length, ``Z`` or ±hh:mm).
_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d{1,9}))?"
    r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})?",
    re.ASCII,
)
_YEARS = re.compile(r"[+-]?\d{5,}-|^0000-", re.ASCII)


def parse_instant(text: str, what: str = "at") -> datetime:
    """An RFC 3339 date-time with a zone → an aware UTC datetime (microseconds; finer digits are
    truncated). Raises ``InvalidInstant`` naming ``what`` and the rule."""
    raw = text.strip() if isinstance(text, str) else ""
    match = _RFC3339.fullmatch(raw)
    if not match:
        if _YEARS.search(raw):
            raise InvalidInstant("instant.range", f"{what} is outside {_range_text()}")
        raise InvalidInstant("instant.syntax", f"{what} must be an RFC 3339 date-time, e.g. {EXAMPLE}")
    if match["zone"] is None:
        raise InvalidInstant("instant.zone", f"{what} must carry a time zone (Z or +hh:mm)")
    frac = (match["frac"] or "")[:6].ljust(6, "0")
    zone = "+00:00" if match["zone"] in ("Z", "z") else match["zone"]
    if match["date"].startswith("0000"):
        raise InvalidInstant("instant.range", f"{what} is outside {_range_text()}")
    try:
        local = datetime.fromisoformat(f"{match['date']}T{match['time']}.{frac}{zone}")
    except ValueError:
        raise InvalidInstant("instant.syntax", f"{what} is not a valid date-time, e.g. {EXAMPLE}") from None
    try:
        return local.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidInstant("instant.range", f"{what} is outside {_range_text()}") from None


def format_instant(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC: the one format of every instant the project writes."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware instant")
    t = value.astimezone(UTC)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{t.microsecond:06d}Z"
    )


def clamp_for_stream(value: datetime) -> tuple[datetime, int]:
    """``(instant within NATS_MIN…NATS_MAX, side)``: side is -1 when ``value`` was before NATS_MIN,
    1 when after NATS_MAX, 0 when representable as it is."""
    if value < NATS_MIN:
        return NATS_MIN, -1
    if value > NATS_MAX:
        return NATS_MAX, 1
    return value, 0


def format_nats(value: datetime, *, up_to: bool = False) -> str:
    """A stream time filter for NATS: nanoseconds, four-digit year, within the int64 range.

    ``up_to`` covers every message stored within the microsecond of ``value`` (``…µs999ns``):
    our instants have PostgreSQL's microsecond resolution, the server nanosecond, and "as of T"
    must mean the same on both.
    """
    clamped, _ = clamp_for_stream(value)
    text = format_instant(clamped)[:-1]
    return text + ("999Z" if up_to else "000Z")


def _range_text() -> str:
    return f"{format_instant(MIN)[:10]} … {format_instant(MAX)[:10]}"

