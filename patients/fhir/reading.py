"""Reading untrusted FHIR JSON, once, before any code walks it.

`load_json` refuses what Python's json module accepts but the rest of the import cannot store or
walk safely: NaN and Infinity (not JSON), integers past 64 bits (they overflow float()), NUL
characters (PostgreSQL text cannot hold them), lone surrogates (not encodable as UTF-8) and
nesting deeper than any real FHIR resource (recursive code would overflow the stack). The
message names the path of the offending value, e.g. `entry[3].resource.name[0].family`.

The typed readers (`read_list`, `read_object`, `read_string`) check one element's JSON type and
raise `EntryError` naming it, so mapping code reads fields without guessing at their shape.
"""

from __future__ import annotations

import json
import math

# Real bundles (the eCQM test decks, DEQM examples, VSAC files) nest at most ~15 levels; a
# Bundle inside Parameters inside a Bundle adds a handful. 64 leaves room and stays far below
# Python's recursion limit for the code that walks the result.
MAX_DEPTH = 64
_INT_LIMIT = 2**63


class EntryError(Exception):
    """One problem in one entry; collected so a report lists every bad entry of a file."""


class UnsafeJSON(ValueError):
    """The file is not JSON the import can take; the message names where and why."""


def load_json(raw: bytes | str) -> object:
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as error:
        raise UnsafeJSON(f"not UTF-8 text (byte {error.start})") from None
    try:
        document = json.loads(text)
    except RecursionError:
        raise UnsafeJSON(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:  # JSONDecodeError, or an integer with thousands of digits
        raise UnsafeJSON(f"malformed JSON ({error})") from None
    _check(document)
    return document


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


# -- typed readers ------------------------------------------------------------------------------


def json_kind(value: object) -> str:
    """How a JSON value reads in an error message: 'a string', 'an object', ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def read_list(value: object, name: str) -> list:
    """A FHIR repeating element: absent or null is empty, anything but a list is an error."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise EntryError(f"{name}: must be a list, not {json_kind(value)}")
    return value


def read_object(value: object, name: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EntryError(f"{name}: must be an object, not {json_kind(value)}")
    return value


def read_string(value: object, name: str, *, max_length: int | None = None) -> str:
    """A FHIR string/code/id; too long is an error, never cut (cut ids collide)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise EntryError(f"{name}: must be a string, not {json_kind(value)}")
    if max_length is not None and len(value) > max_length:
        raise EntryError(f"{name}: longer than {max_length} characters")
    return value
