"""carehub.safejson's fast path (number hooks and byte scans instead of a walk of every value)
refuses exactly what the walk refuses, with the walk's message naming the place."""

import json

import pytest

from carehub.safejson import MAX_DEPTH, UnsafeJSON, load_json


def nest(depth: int, before: str = "") -> bytes:
    """An object whose `b` holds `depth - 1` nested lists (so `depth` containers in all);
    `before` is put in first, e.g. a string full of brackets that must not count."""
    return ("{" + before + '"b": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}").encode()


TRICKY_STRINGS = [
    "",
    '"a": "]]]]]]]]]]", ',  # closing brackets in a string would hide real depth
    '"a": "[[[[[[[[[[", ',  # opening ones would invent depth
    '"a": "\\"]]]\\\\", ',  # escaped quote and backslash around them
    '"a": "mm[Hg]", "c": "\\\\", "d": "\\"", ',
    '"a\\"]]": "é]}]}", ',
]


@pytest.mark.parametrize("before", TRICKY_STRINGS)
def test_depth_is_counted_on_structure_only(before):
    assert load_json(nest(MAX_DEPTH, before))["b"] is not None
    # The path is spelled out (b[0][0]...), cut at 120 characters.
    deep = rf"^b\[0\][][0]*…?: nested deeper than {MAX_DEPTH} levels"
    with pytest.raises(UnsafeJSON, match=deep):
        load_json(nest(MAX_DEPTH + 1, before))


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"v": [1, NaN]}', "v[1]: NaN is not a JSON number"),
        (b'{"v": -Infinity}', "v: -Infinity is not a JSON number"),
        (b'{"v": 1e400}', "v: Infinity is not a JSON number"),
        (b'{"v": 9223372036854775808}', "v: the number is out of range"),
        (b'{"v": -9223372036854775808}', "v: the number is out of range"),
        (b'{"v": "a\\u0000b"}', "v: contains a NUL character"),
        (b'{"v\\u0000": 1}', "v\x00: the name contains a NUL character"),
        (b'{"v": "\\ud800"}', "v: contains a lone surrogate"),
        (b'{"v": "\\udc00x"}', "v: contains a lone surrogate"),
    ],
)
def test_each_refusal_names_its_place(raw, message):
    with pytest.raises(UnsafeJSON, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_json(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"v": 9223372036854775807, "w": -9223372036854775807, "x": 1.5e308}',
        b'{"v": "\\ud83d\\ude00", "w": "\\\\u0000", "x": "NaN Infinity"}',
        b'\xef\xbb\xbf{"v": [1, 2]}',
    ],
)
def test_what_the_walk_accepts_loads_unchanged(raw):
    assert load_json(raw) == json.loads(raw.decode("utf-8-sig"))
