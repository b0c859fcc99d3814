"""The error tree drawn in ``ledger/errors.py``'s docstring is the tree of the classes."""

from __future__ import annotations

import importlib
import re

import ledger.errors
from ledger.errors import LedgerError

# Every module that defines a branch of the tree.
MODULES = ["ledger.errors", "ledger.schema", "projector.errors", "api.errors", "client.hub_http", "ops.cli_http"]
_GLYPHS = "│├└─ "


def _drawn_parents() -> dict[str, str | None]:
    """Class name -> the class it is drawn under (None for the root)."""
    doc = ledger.errors.__doc__ or ""
    lines = doc[doc.index("    LedgerError\n") :].split("\n\n")[0].splitlines()
    entries: list[tuple[int, list[str]]] = []
    for line in lines:
        column = len(line) - len(line.lstrip(_GLYPHS))
        names_part = re.sub(r"\([^)]*\)", "", line[column:].split("  ")[0])
        if not names_part[:1].isupper():
            continue  # a description running on
        entries.append((column, re.findall(r"\b[A-Z][A-Za-z]+\b", names_part)))
    parents: dict[str, str | None] = {}
    for i, (column, names) in enumerate(entries):
        parent = next((entries[j][1][0] for j in range(i - 1, -1, -1) if entries[j][0] < column), None)
        for name in names:
            parents[name] = parent
    return parents


def _subclasses(cls: type) -> set[type]:
    out: set[type] = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


def test_every_error_class_is_drawn_under_its_parent() -> None:
    for module in MODULES:
        importlib.import_module(module)
    drawn = _drawn_parents()
    assert drawn["LedgerError"] is None
    project = {c for c in _subclasses(LedgerError) if c.__module__.split(".")[0] in {"ledger", "projector", "api", "client", "ops"}}
    for cls in project:
        parent = next(b for b in cls.__bases__ if issubclass(b, LedgerError))
        assert cls.__name__ in drawn, f"{cls.__name__} is not drawn in ledger/errors.py"
        assert drawn[cls.__name__] == parent.__name__, (cls.__name__, drawn[cls.__name__], parent.__name__)
    assert set(drawn) == {c.__name__ for c in project} | {"LedgerError"}, "drawn but not a class"
