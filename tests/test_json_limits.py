"""jsoncodec.decode's limits: nesting depth (measured on the text) and long integers."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wscommands.wire.jsoncodec import MAX_INTEGER_DIGITS, JSONLimitError, decode

# Strings full of what the depth check must not count: brackets, quotes, backslashes.
tricky_text = st.text(alphabet='[]{}"\\ab\n', max_size=8)
values = st.recursive(
    st.none() | st.integers() | tricky_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(tricky_text, children, max_size=3)
    ),
    max_leaves=30,
)


def depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@given(values, st.integers(min_value=1, max_value=6))
def test_depth_limit_matches_the_nesting_of_the_value(value, limit):
    text = json.dumps(value)
    if depth(value) > limit:
        with pytest.raises(JSONLimitError) as refused:
            decode(text, limit)
        assert refused.value.details == {"limit": "MAX_JSON_DEPTH", "max": limit}
    else:
        assert decode(text, limit) == value


def test_integers_beyond_64_bits_stay_exact_and_too_long_ones_are_refused():
    assert decode('{"n": 123456789012345678901234567890}') == {"n": 123456789012345678901234567890}
    assert decode('["1234567890123456789012345"]') == ["1234567890123456789012345"]
    with pytest.raises(JSONLimitError) as refused:
        decode("[" + "7" * (MAX_INTEGER_DIGITS + 1) + "]")
    assert refused.value.details == {"limit": "MAX_INTEGER_DIGITS", "max": MAX_INTEGER_DIGITS}


def test_a_nesting_bomb_is_refused_without_recursion():
    with pytest.raises(JSONLimitError):
        decode("[" * 200_000 + "]" * 200_000, 32)
    with pytest.raises(JSONLimitError):  # not even valid JSON: refused for its depth first
        decode("[" * 200_000, 32)
