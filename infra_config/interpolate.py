"""``${VAR}`` / ``${VAR:-default}`` substitution in file values, so secrets stay in the environment.

Pure: ``(data, environ)`` in, new data out. Rules (shell-like):

- ``${VAR}`` — the value of ``VAR``; an error naming the file, key and variable if unset.
- ``${VAR:-text}`` — the value of ``VAR``, or ``text`` when ``VAR`` is unset or empty.
- ``$${`` — a literal ``${``.

Only string values are interpolated (keys never are) and the result is always a string;
the typed models coerce it (``port: ${PG_PORT}`` becomes an int). A value that took any
text from the environment is reported in ``interpolated`` and treated as a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigFileError, MissingVariableError
from .source import KeyPath

__all__ = ["interpolate"]

_TOKEN = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def interpolate(
    data: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    filename: str,
    lines: Mapping[KeyPath, int] | None = None,
) -> tuple[dict[str, Any], frozenset[KeyPath]]:
    """Return ``(new_data, interpolated_paths)``; ``data`` is not modified."""
    found: set[KeyPath] = set()
    result = _walk(data, (), environ, filename, lines or {}, found)
    assert isinstance(result, dict)
    return result, frozenset(found)


def _walk(
    value: Any,
    path: KeyPath,
    environ: Mapping[str, str],
    filename: str,
    lines: Mapping[KeyPath, int],
    found: set[KeyPath],
) -> Any:
    if isinstance(value, Mapping):
        return {k: _walk(v, (*path, k), environ, filename, lines, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, (*path, i), environ, filename, lines, found) for i, v in enumerate(value)]
    if isinstance(value, str) and "$" in value:
        text, from_env = _substitute(value, path, environ, filename, lines)
        if from_env:
            found.add(path)
        return text
    return value


def _substitute(
    text: str,
    path: KeyPath,
    environ: Mapping[str, str],
    filename: str,
    lines: Mapping[KeyPath, int],
) -> tuple[str, bool]:
    out: list[str] = []
    pos = 0
    from_env = False
    for match in _TOKEN.finditer(text):
        out.append(text[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        if token == "$${":
            out.append("${")
            continue
        body = match.group("body")
        parsed = _BODY.fullmatch(body) if body is not None else None
        if parsed is None or "${" in (parsed.group("default") or ""):
            shown = token if body is not None else "${"
            reason = (
                "unterminated placeholder '${'"
                if body is None
                else f"malformed placeholder {shown!r} (expected ${{NAME}} or ${{NAME:-default}})"
            )
            raise ConfigFileError(filename, f"{_dotted(path)}: {reason}", _line(path, lines))
        name, default = parsed.group("name"), parsed.group("default")
        current = environ.get(name)
        if default is not None and not current:
            out.append(default)
        elif current is None:
            raise MissingVariableError(name, filename, _dotted(path), _line(path, lines))
        else:
            out.append(current)
            from_env = True
    out.append(text[pos:])
    return "".join(out), from_env


def _dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)


def _line(path: KeyPath, lines: Mapping[KeyPath, int]) -> int | None:
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
