"""Parse YAML or JSON text into plain data, remembering the line of every mapping key.

Pure: text in, ``(data, lines)`` out. Problems become :class:`ConfigFileError` with
``file:line`` and the parser's short reason — never a parser traceback, and never the
offending source line (it might hold a secret).

Mapping keys are kept as the text written in the file (``8080:`` gives the key ``"8080"``),
so every key path is a path of strings. Duplicate keys are an error; ``<<`` merge keys work.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ConfigFileError
from .source import KeyPath

__all__ = ["ParsedDocument", "parse_document", "parse_json", "parse_yaml"]

#: ``(data, lines)``: the document as a dict, and the 1-based line of each key path.
ParsedDocument = tuple[dict[str, Any], dict[KeyPath, int]]

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def parse_document(text: str, filename: str) -> ParsedDocument:
    """Parse ``text`` as JSON if ``filename`` ends in ``.json``, else as YAML."""
    if filename.endswith(".json"):
        return parse_json(text, filename)
    return parse_yaml(text, filename)


def parse_yaml(text: str, filename: str) -> ParsedDocument:
    lines: dict[KeyPath, int] = {}
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, lines
        if not isinstance(node, MappingNode):
            raise ConfigFileError(filename, "the top level must be a mapping of keys", _line(node))
        data = _build(loader, node, (), lines, filename, set())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = ": ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise ConfigFileError(
            filename, f"invalid YAML: {reason}", mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as exc:  # reader errors: bad bytes / control characters
        raise ConfigFileError(filename, f"invalid YAML: {_short(exc)}") from None
    except RecursionError:
        raise ConfigFileError(filename, "document is nested too deeply") from None
    finally:
        loader.dispose()
    assert isinstance(data, dict)
    return data, lines


def parse_json(text: str, filename: str) -> ParsedDocument:
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigFileError(filename, f"invalid JSON: {exc.msg}", exc.lineno) from None
    except RecursionError:
        raise ConfigFileError(filename, "document is nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigFileError(filename, "the top level must be a JSON object", 1)
    # JSON values come from the json module (exact JSON semantics); key lines come from the
    # YAML composer, which reads any valid JSON once tabs (only legal as whitespace there)
    # are made spaces. Duplicate keys are found by the same walk.
    try:
        _, lines = parse_yaml(text.replace("\t", " "), filename)
    except ConfigFileError as exc:
        if exc.reason.startswith("duplicate key"):
            raise
        lines = {}
    return data, lines


def _build(
    loader: yaml.SafeLoader,
    node: Node,
    path: KeyPath,
    lines: dict[KeyPath, int],
    filename: str,
    active: set[int],
) -> Any:
    if isinstance(node, ScalarNode):
        try:
            return loader.construct_object(node, deep=True)
        except (ValueError, TypeError, OverflowError):  # e.g. `2025-13-45`, `!!int abc`
            kind = str(node.tag).rsplit(":", 1)[-1]
            raise ConfigFileError(filename, f"invalid {kind} value", _line(node)) from None
    if id(node) in active:
        raise ConfigFileError(filename, "recursive alias", _line(node))
    active.add(id(node))
    try:
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ_TAG:
                raise ConfigFileError(filename, f"unsupported tag {node.tag}", _line(node))
            return [
                _build(loader, child, (*path, i), lines, filename, active)
                for i, child in enumerate(node.value)
            ]
        assert isinstance(node, MappingNode)
        if node.tag != _MAP_TAG:
            raise ConfigFileError(filename, f"unsupported tag {node.tag}", _line(node))
        own: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = _key(key_node, filename)
            if key in own:
                raise ConfigFileError(
                    filename,
                    f"duplicate key {key!r} (first at line {own[key]})",
                    _line(key_node),
                )
            own[key] = _line(key_node)
        loader.flatten_mapping(node)  # resolves `<<:`; merged pairs come first
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _key(key_node, filename)
            child = (*path, key)
            lines[child] = _line(key_node)
            result[key] = _build(loader, value_node, child, lines, filename, active)
        return result
    finally:
        active.discard(id(node))


def _key(node: Node, filename: str) -> str:
    if not isinstance(node, ScalarNode):
        raise ConfigFileError(filename, "mapping keys must be plain scalars", _line(node))
    value = node.value
    assert isinstance(value, str)
    return value


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
