"""parse_document (line tracking) and interpolate (``${VAR}``), both pure."""

from __future__ import annotations

import pytest

from infra_config import ConfigFileError, MissingVariableError
from infra_config.interpolate import interpolate
from infra_config.parse import parse_document

pytestmark = pytest.mark.timeout(10)


def test_yaml_lines_per_key_path():
    text = "# header\na:\n  b: 1\n  c:\n    - d: 2\n      e: 3\n8080: x\n"
    data, lines = parse_document(text, "f.yaml")
    assert data == {"a": {"b": 1, "c": [{"d": 2, "e": 3}]}, "8080": "x"}
    assert lines[("a",)] == 2 and lines[("a", "b")] == 3 and lines[("a", "c")] == 4
    assert lines[("a", "c", 0, "e")] == 6 and lines[("8080",)] == 7


def test_json_values_use_json_semantics_and_lines_are_tracked():
    text = '{\n  "a": {\n    "big": 1e5,\n\t"on": "on",\n    "n": null\n  }\n}'
    data, lines = parse_document(text, "f.json")
    assert data == {"a": {"big": 100000.0, "on": "on", "n": None}}
    assert lines[("a", "big")] == 3 and lines[("a", "on")] == 4


def test_empty_documents():
    assert parse_document("", "f.yaml") == ({}, {})
    assert parse_document("# only a comment\n", "f.yml") == ({}, {})
    assert parse_document("  \n", "f.json") == ({}, {})


def test_merge_key_explicit_value_wins():
    data, _ = parse_document("x: &b {p: 1, q: 2}\ny:\n  <<: *b\n  q: 3\n", "f.yaml")
    assert data["y"] == {"p": 1, "q": 3}


def test_non_mapping_key_is_rejected():
    with pytest.raises(ConfigFileError, match="f.yaml:1: mapping keys must be plain scalars"):
        parse_document("? [a, b]\n: 1\n", "f.yaml")


def test_yaml_error_hides_the_source_line():
    # the offending line could hold a literal secret; only the parser's reason is shown
    with pytest.raises(ConfigFileError) as info:
        parse_document("password: hunter2: oops\n", "f.yaml")
    assert "hunter2" not in str(info.value) and info.value.line == 1


ENV = {"HOST": "db", "EMPTY": "", "PORT": "5433"}


@pytest.mark.parametrize(
    ("raw", "expected", "secret"),
    [
        ("${HOST}", "db", True),
        ("${HOST}:${PORT}", "db:5433", True),
        ("${MISSING:-fallback}", "fallback", False),
        ("${EMPTY:-fallback}", "fallback", False),
        ("${EMPTY}", "", True),
        ("${MISSING:-}", "", False),
        ("${MISSING:-a:b c}", "a:b c", False),
        ("$${HOST}", "${HOST}", False),
        ("cost $5", "cost $5", False),
        ("no placeholders", "no placeholders", False),
    ],
)
def test_interpolation_rules(raw, expected, secret):
    data, paths = interpolate({"k": {"v": raw}}, ENV, filename="f.yaml")
    assert data == {"k": {"v": expected}}
    assert (("k", "v") in paths) is secret


def test_interpolation_in_lists_and_only_strings():
    src = {"a": ["${HOST}", 1, None, {"b": "${PORT}"}]}
    data, paths = interpolate(src, ENV, filename="f.yaml")
    assert data == {"a": ["db", 1, None, {"b": "5433"}]}
    assert paths == {("a", 0), ("a", 3, "b")}
    assert src["a"][0] == "${HOST}"  # input untouched


def test_missing_variable_error_fields():
    with pytest.raises(MissingVariableError) as info:
        interpolate({"a": {"b": "x${NOPE}"}}, ENV, filename="f.yaml", lines={("a", "b"): 9})
    assert (info.value.variable, info.value.file, info.value.key, info.value.line) == (
        "NOPE",
        "f.yaml",
        "a.b",
        9,
    )
