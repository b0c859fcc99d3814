"""ledger.blame agrees with a naive fold of the history (Hypothesis) and with hand-made cases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.blame import Blame, Origin, leaves
from ledger.canonical import dumps
from ledger.event import merge_patch

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def origin(v: int) -> Origin:
    return Origin(v, T0, T0, f"actor{v}", f"reason {v}", None)


def _value_at(doc: Any, pointer: str) -> tuple[bool, Any]:
    node = doc
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def naive(history: list[dict[str, Any] | None]) -> dict[str, int]:
    """For each leaf of the last document: walk back while the leaf held the same JSON value."""
    last = history[-1]
    if last is None:
        return {}
    out = {}
    for pointer, value in leaves(last):
        v = len(history)
        while v > 1:
            prev = history[v - 2]
            ok, old = _value_at(prev, pointer) if prev is not None else (False, None)
            is_leaf = ok and not (isinstance(old, dict | list) and old)
            if not (is_leaf and dumps(old) == dumps(value)):
                break
            v -= 1
        out[pointer] = v
    return out


def fast(history: list[dict[str, Any] | None], patches: list[Any] | None = None) -> dict[str, int]:
    """The fold; a version with a patch is folded from its merge patch alone."""
    fold = Blame()
    for i, doc in enumerate(history, start=1):
        patch = patches[i - 1] if patches else None
        if patch is not None:
            fold.advance_patch(i, patch, origin(i))
            assert fold.config == doc
        else:
            fold.advance(i, doc, origin(i))
    return {p: o.version for p, o in fold.lines().items()}


scalars = st.one_of(st.integers(-3, 3), st.sampled_from([True, False, None, 1.0, 0.5, "a", "b"]))
keys = st.sampled_from(["a", "b", "c/d", "e~f"])
docs = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                    st.dictionaries(keys, kids, max_size=3)), max_leaves=8)
documents = st.dictionaries(keys, docs, max_size=4)


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any] | None]:
    """Documents that drift (small edits of the previous one), with deletions now and then."""
    out: list[dict[str, Any] | None] = [draw(documents)]
    for _ in range(draw(st.integers(0, 12))):
        prev = out[-1]
        step = draw(st.sampled_from(["edit", "edit", "edit", "new", "delete", "repeat"]))
        if step == "delete" and prev is not None:
            out.append(None)
        elif step == "new" or prev is None:
            out.append(draw(documents))
        elif step == "repeat":
            out.append(dict(prev))
        else:
            nxt = dict(prev)
            nxt[draw(keys)] = draw(docs)
            if draw(st.booleans()) and nxt:
                nxt.pop(draw(st.sampled_from(sorted(nxt))))
            out.append(nxt)
    return out


@settings(max_examples=200, deadline=None)
@given(histories())
def test_blame_agrees_with_a_naive_fold(history: list[dict[str, Any] | None]) -> None:
    assert fast(history) == naive(history)


patches = st.recursive(st.one_of(scalars, st.none()),
                       lambda kids: st.dictionaries(keys, kids, max_size=3), max_leaves=6)


@st.composite
def patched_histories(draw: st.DrawFn) -> tuple[list[dict[str, Any] | None], list[Any]]:
    """Merge-patch histories (with replaces and deletions between): docs and the patch of each."""
    docs: list[dict[str, Any] | None] = [draw(documents)]
    applied: list[Any] = [None]
    for _ in range(draw(st.integers(1, 12))):
        step = draw(st.sampled_from(["patch", "patch", "patch", "replace", "delete"]))
        if step == "patch" and docs[-1] is not None:
            patch = draw(st.dictionaries(keys, patches, min_size=1, max_size=3))
            docs.append(merge_patch(docs[-1], patch))
            applied.append(patch)
        elif step == "delete" and docs[-1] is not None:
            docs.append(None)
            applied.append(None)
        else:
            docs.append(draw(documents))
            applied.append(None)
    return docs, applied


@settings(max_examples=200, deadline=None)
@given(patched_histories())
def test_blame_from_merge_patches_agrees_with_a_naive_fold(case: tuple[list[Any], list[Any]]) -> None:
    history, applied = case
    assert fast(history, applied) == naive(history)


def test_json_types_are_told_apart() -> None:
    assert fast([{"x": 1}, {"x": 1.0}, {"x": True}, {"x": True}]) == {"/x": 3}


def test_a_deletion_breaks_every_run() -> None:
    assert fast([{"x": 1}, None, {"x": 1}]) == {"/x": 3}


def test_unchanged_leaves_keep_their_origin_and_rewrites_do_not_take_blame() -> None:
    history = [{"a": {"b": 1, "c": [1, 2]}}, {"a": {"b": 1, "c": [1, 3]}, "d": {}}, {"a": {"b": 1, "c": [1, 3]}, "d": {}}]
    assert fast(history) == {"/a/b": 1, "/a/c/0": 1, "/a/c/1": 2, "/d": 2}
