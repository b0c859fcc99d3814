"""merge_layers: property tests against a straightforward reference merge, and provenance."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra_config import Layer, Source, merge_layers
from infra_config.explain import explain

pytestmark = pytest.mark.timeout(60)

KEYS = st.sampled_from(["a", "b", "c", "d"])  # few keys, so layers collide often
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.text("xyz", max_size=3),
    st.lists(st.integers(0, 3), max_size=3),
)
TREES = st.recursive(
    LEAVES, lambda children: st.dictionaries(KEYS, children, max_size=4), max_leaves=12
)
LAYER_DATA = st.dictionaries(KEYS, TREES, max_size=4)


def reference_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """The obvious definition: dicts merge by key, everything else replaces."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = reference_merge(out[key], value)
        else:
            out[key] = value
    return out


def layer(i: int, data: dict[str, Any], priority: int | None = None) -> Layer:
    prio = i if priority is None else priority
    return Layer(f"l{i}", prio, data, Source(f"l{i}", prio, file=f"l{i}.yaml"))


def leaves(tree: Any, path: tuple = ()):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, (*path, key))
    elif path:
        yield path, tree


def node_at(tree: Any, path: tuple) -> Any:
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return KeyError
        tree = tree[part]
    return tree


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(LAYER_DATA, max_size=5))
def test_merge_equals_reference_merge(datas):
    originals = copy.deepcopy(datas)
    merged = merge_layers([layer(i, d) for i, d in enumerate(datas)])
    expected: dict[str, Any] = {}
    for data in datas:
        expected = reference_merge(expected, data)
    assert merged.data == expected
    assert datas == originals  # inputs untouched


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(LAYER_DATA, min_size=1, max_size=5))
def test_every_leaf_is_explained_by_the_last_layer_that_set_it(datas):
    merged = merge_layers([layer(i, d) for i, d in enumerate(datas)])
    for path, value in leaves(merged.data):
        setters = [
            i
            for i, d in enumerate(datas)
            if not isinstance(node_at(d, path), dict) and node_at(d, path) is not KeyError
        ]
        why = explain(merged, merged.data, path)
        assert why.source.layer == f"l{setters[-1]}"
        assert why.value == value
        # everything it overrode came from earlier layers, newest first
        over = [int(o.source.layer[1:]) for o in why.overridden]
        assert over == sorted(over, reverse=True)
        assert all(i < setters[-1] for i in over)


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(LAYER_DATA, min_size=2, max_size=4), st.randoms())
def test_merge_sorts_by_priority_and_keeps_order_of_ties(datas, rnd):
    layers = [layer(i, d, priority=10 * (i // 2)) for i, d in enumerate(datas)]
    shuffled = layers[:]
    rnd.shuffle(shuffled)
    # a stable sort by priority of the shuffled list is what must be applied
    expected: dict[str, Any] = {}
    for lay in sorted(shuffled, key=lambda x: x.priority):
        expected = reference_merge(expected, dict(lay.data))
    assert merge_layers(shuffled).data == expected


def test_replacing_a_mapping_forgets_the_keys_below_it():
    merged = merge_layers(
        [
            layer(0, {"a": {"b": {"c": 1}}}),
            layer(1, {"a": {"b": 5}}),
            layer(2, {"a": {"b": {"c": 3}}}),
        ]
    )
    assert merged.data == {"a": {"b": {"c": 3}}}
    why = explain(merged, merged.data, ("a", "b", "c"))
    assert why.source.layer == "l2" and why.overridden == ()
    mapping = explain(merged, merged.data, ("a", "b"))
    assert mapping.merged_from == (Source("l2", 2, file="l2.yaml"),)
    assert [(o.source.layer, o.value) for o in mapping.overridden] == [
        ("l1", 5),
        ("l0", {"c": 1}),
    ]


def test_lists_are_replaced_not_concatenated():
    merged = merge_layers([layer(0, {"a": [1, 2, 3]}), layer(1, {"a": [9]})])
    assert merged.data == {"a": [9]}
