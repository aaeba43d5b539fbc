"""Reading untrusted JSON, once, before any code walks or stores it.

`load_json` refuses what Python's json module accepts but the rest of CareHub cannot store or
walk safely: NaN and Infinity (not JSON), integers past 64 bits (they overflow float()), NUL
characters (PostgreSQL text cannot hold them), lone surrogates (not encodable as UTF-8) and
nesting deeper than any real document (recursive code would overflow the stack). The message
names the path of the offending value, e.g. `entry[3].resource.name[0].family`.

Used by the FHIR import, load_valuesets and every JSON body the API parses.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from itertools import accumulate

# Real bundles (the eCQM test decks, DEQM examples, VSAC files) nest at most ~15 levels; a
# Bundle inside Parameters inside a Bundle adds a handful. 64 leaves room and stays far below
# Python's recursion limit for the code that walks the result.
MAX_DEPTH = 64
_INT_LIMIT = 2**63


class UnsafeJSON(ValueError):
    """Not JSON CareHub can take; the message names where and why."""


def load_json(raw: bytes | str) -> object:
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as error:
        raise UnsafeJSON(f"not UTF-8 text (byte {error.start})") from None
    try:
        try:
            # Fast path: hooks on the numbers and byte scans of the text prove a document
            # clean without walking it in Python (the walk cost three times the parse).
            document = _DECODER.decode(text)
            clean = _clean_text(raw if isinstance(raw, bytes) else raw.encode("utf-8", "replace"))
        except _Suspect:
            clean = False
        if not clean:
            document = json.loads(text)
    except RecursionError:
        raise UnsafeJSON(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:  # JSONDecodeError, or an integer with thousands of digits
        raise UnsafeJSON(f"malformed JSON ({error})") from None
    if not clean:
        _check(document)  # the exact walk, which names where the problem is
    return document


class _Suspect(Exception):
    """A value the fast path cannot vouch for: the exact walk decides and names it."""


def _int(digits: str) -> int:
    value = int(digits)
    if not -_INT_LIMIT < value < _INT_LIMIT:
        raise _Suspect
    return value


def _float(digits: str) -> float:
    value = float(digits)
    if not math.isfinite(value):  # 1e400 parses as infinity
        raise _Suspect
    return value


def _constant(name: str):  # NaN, Infinity, -Infinity
    raise _Suspect


# Built once: json.loads with hooks would build a decoder (and its scanner) on every call.
_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_constant)

# A NUL or a lone surrogate can only come in as a \u escape (raw ones are refused by the
# UTF-8 decoder or by json's strict mode); an escaped surrogate pair also goes to the walk.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_NOT_STRUCTURE = bytes(set(range(256)) - set(b'[]{}"'))
_STRING = re.compile(rb'"[^"]*"')
_NESTING = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes


def _clean_text(raw: bytes) -> bool:
    """True when the UTF-8 text of a parsed document has no NUL or surrogate escape and nests
    at most MAX_DEPTH deep; False means "walk it" (not necessarily bad). Byte operations only:
    multi-byte UTF-8 characters have no byte below 128, so they cannot pass for syntax."""
    if b"\\" in raw:
        if _SUSPECT_ESCAPE.search(raw):
            return False
        # Escaped backslashes first, then escaped quotes: the quotes left delimit the strings.
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Brackets and quotes only: a string without brackets is an empty pair "" (dropped), the
    # few that hold one (units such as "mm[Hg]") are then cut out whole.
    structure = raw.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in structure:
        structure = _STRING.sub(b"", structure)
    steps = array("b", structure.translate(_NESTING))
    return max(accumulate(steps), default=0) <= MAX_DEPTH


def _check(document: object) -> None:
    # Iterative walk: recursion is what deep nesting must not be allowed to break. Paths are
    # linked (parent, key) pairs, spelled out only when something is wrong.
    stack: list[tuple[object, tuple | None, int]] = [(document, None, 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, dict):
            if depth >= MAX_DEPTH:
                raise UnsafeJSON(f"{_spell(path)}: nested deeper than {MAX_DEPTH} levels")
            for key, item in value.items():
                problem = _string_problem(key)
                if problem:
                    raise UnsafeJSON(f"{_spell((path, key))}: the name {problem}")
                stack.append((item, (path, key), depth + 1))
        elif isinstance(value, list):
            if depth >= MAX_DEPTH:
                raise UnsafeJSON(f"{_spell(path)}: nested deeper than {MAX_DEPTH} levels")
            stack.extend((item, (path, index), depth + 1) for index, item in enumerate(value))
        elif isinstance(value, str):
            problem = _string_problem(value)
            if problem:
                raise UnsafeJSON(f"{_spell(path)}: {problem}")
        elif isinstance(value, float):
            if not math.isfinite(value):
                spelled = "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
                raise UnsafeJSON(f"{_spell(path)}: {spelled} is not a JSON number")
        elif isinstance(value, int) and not -_INT_LIMIT < value < _INT_LIMIT:
            raise UnsafeJSON(f"{_spell(path)}: the number is out of range")


def _string_problem(text: str) -> str:
    if "\x00" in text:
        return "contains a NUL character"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (not valid Unicode)"
    return ""


def _spell(path: tuple | None) -> str:
    keys = []
    while path is not None:
        path, key = path
        keys.append(key)
    spelled = ""
    for key in reversed(keys):
        spelled += f"[{key}]" if isinstance(key, int) else (f".{key}" if spelled else str(key))
    if len(spelled) > 120:
        spelled = spelled[:120] + "…"
    return spelled or "(the document)"
