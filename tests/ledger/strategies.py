"""Hypothesis strategies for config documents and change sequences (shared by the suites)."""

from __future__ import annotations

from hypothesis import strategies as st

from ledger import Delete, Patch, Replace, Rollback
from ledger.secrets import is_secret_key

_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(
    lambda k: not is_secret_key(k)
)
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-(2.0**53) + 1, max_value=2.0**53 - 1),
    _text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=20,
)
documents = st.dictionaries(_keys, json_values, max_size=6)
patches = st.dictionaries(_keys, st.one_of(st.none(), json_values), min_size=1, max_size=4)


@st.composite
def change_sequences(draw: st.DrawFn, max_size: int = 12) -> list:
    """A valid sequence of changes for one service (starts with a Replace)."""
    changes: list = [Replace(draw(documents))]
    versions = 1
    alive = True
    live_versions = [1]
    for _ in range(draw(st.integers(0, max_size - 1))):
        choice = draw(st.sampled_from(["replace", "patch", "rollback", "delete"]))
        if choice == "replace" or not alive:
            changes.append(Replace(draw(documents)))
            alive = True
        elif choice == "patch":
            changes.append(Patch(draw(patches)))
        elif choice == "rollback" and versions >= 2:
            changes.append(Rollback(to_version=draw(st.sampled_from(live_versions))))
        elif choice == "delete":
            changes.append(Delete())
            alive = False
        else:
            changes.append(Patch(draw(patches)))
        versions += 1
        if alive:
            live_versions.append(versions)
    return changes
