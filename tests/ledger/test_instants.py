"""ledger.instants: one parser and one formatter for every instant (API, CLI, ledger)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.params import parse_instant as api_parse
from ledger import instants
from ledger.errors import InvalidInstant, UsageError
from ledger.event import format_time
from ledger.nats_io import format_up_to
from ops.cli_args import parse_instant as cli_parse
from ops.cli_args import parse_version_or_instant as cli_version_or_instant

_utc = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999), timezones=st.just(UTC)
)


@given(_utc)
def test_format_then_parse_is_the_identity_over_the_whole_range(t: datetime) -> None:
    text = instants.format_instant(t)
    assert len(text) == 27 and text[4] == "-" and text.endswith("Z")  # always four-digit years
    assert instants.parse_instant(text) == t
    assert instants.format_instant(instants.parse_instant(text)) == text


@given(_utc, st.integers(-14 * 60, 14 * 60))
def test_offsets_are_the_same_instant(t: datetime, minutes: int) -> None:
    local = t.astimezone(timezone(timedelta(minutes=minutes))) if _fits(t, minutes) else None
    if local is None:
        return
    assert instants.parse_instant(local.isoformat()) == t


def _fits(t: datetime, minutes: int) -> bool:
    try:
        t.astimezone(timezone(timedelta(minutes=minutes)))
    except OverflowError:
        return False
    return True


def test_years_before_1000_are_written_with_four_digits() -> None:
    t = datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert instants.format_instant(t) == "0999-01-02T03:04:05.000006Z"
    assert format_time(t) == "0999-01-02T03:04:05.000006Z"  # the events' formatter is the same one


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("0000-12-31T23:59:59Z", "instant.range"),
        ("10000-01-01T00:00:00Z", "instant.range"),
        ("+12345-01-01T00:00:00Z", "instant.range"),
        ("0001-01-01T00:00:00+00:01", "instant.range"),  # 0000-12-31T23:59 in UTC
        ("9999-12-31T23:59:59-00:01", "instant.range"),  # 10000-01-01 in UTC
        ("2026-02-30T00:00:00Z", "instant.syntax"),
        ("yesterday", "instant.syntax"),
        ("2026-11-28", "instant.syntax"),
        ("2026-11-28T10:30:45", "instant.zone"),
    ],
)
def test_every_path_agrees_on_what_is_out_of_range(text: str, rule: str) -> None:
    """``?at=``, ``from``/``to``, ``to_time`` (api.params) and ``--at``/``--to`` (the CLI): one rule."""
    for parse in (instants.parse_instant, api_parse, cli_parse):
        with pytest.raises(InvalidInstant) as caught:
            parse(text)
        assert caught.value.rule == rule, parse
        assert isinstance(caught.value, UsageError)  # 400 in the API, exit 2 in the CLI
    with pytest.raises(UsageError) as caught_cli:
        cli_version_or_instant(text, what="--to")
    if rule == "instant.range":
        assert isinstance(caught_cli.value, InvalidInstant) and caught_cli.value.rule == rule


@given(st.datetimes(timezones=st.just(UTC)))
def test_stream_filters_stay_within_what_nats_represents(t: datetime) -> None:
    text = format_up_to(t)
    parsed = datetime.fromisoformat(text[:26] + "+00:00")
    assert instants.NATS_MIN <= parsed <= instants.NATS_MAX
    assert len(text.split("T")[0]) == 10  # YYYY-MM-DD


def test_fraction_beyond_microseconds_is_truncated_and_lowercase_is_accepted() -> None:
    assert instants.parse_instant("2026-11-28t10:30:45.123456789z") == datetime(
        2026, 11, 28, 10, 30, 45, 123456, tzinfo=UTC
    )
