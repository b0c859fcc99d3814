"""Argument values: instants, version-or-instant, documents (ops/cli_args.py)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.errors import UsageError
from ops.cli_args import (
    format_instant,
    load_document,
    parse_instant,
    parse_json_object,
    parse_version_or_instant,
)


def test_instant_with_offset_is_normalised_to_utc() -> None:
    assert parse_instant("2026-11-28T11:30:00+01:00") == datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
    assert format_instant(parse_instant("2026-11-28T10:30:00.5Z")) == "2026-11-28T10:30:00.500000Z"


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01T00:00:00Z", "2026-11-28T10:30:00"])
def test_bad_or_naive_instant_is_a_usage_error_naming_the_argument(text: str) -> None:
    with pytest.raises(UsageError, match="--at"):
        parse_instant(text, what="--at")


def test_version_or_instant() -> None:
    assert parse_version_or_instant("7", what="A").version == 7
    spec = parse_version_or_instant("2026-11-28T10:30:00Z", what="A")
    assert spec.version is None and spec.query_value() == "2026-11-28T10:30:00.000000Z"
    with pytest.raises(UsageError, match="versions start at 1"):
        parse_version_or_instant("0", what="A")
    with pytest.raises(UsageError, match="neither a version"):
        parse_version_or_instant("v7", what="A")


def test_documents_from_json_yaml_and_stdin(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"operational": {"batch_size": 200}}')
    (tmp_path / "a.yaml").write_text("operational:\n  batch_size: 200\n")
    expected = {"operational": {"batch_size": 200}}
    assert load_document(str(tmp_path / "a.json"), io.BytesIO()) == expected
    assert load_document(str(tmp_path / "a.yaml"), io.BytesIO()) == expected
    assert load_document("-", io.BytesIO(b'{"operational": {"batch_size": 200}}')) == expected


def test_document_errors_are_one_line_and_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"a": ')
    (tmp_path / "list.yaml").write_text("- 1\n")
    for source, match in ((str(tmp_path / "missing.json"), "cannot read"),
                          (str(tmp_path / "bad.json"), "invalid JSON"),
                          (str(tmp_path / "list.yaml"), "expected a mapping")):
        with pytest.raises(UsageError, match=match) as info:
            load_document(source, io.BytesIO())
        assert source in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(UsageError, match="expected a JSON object"):
        parse_json_object("[1, 2]", what="merge patch")
