"""Typed readers for FHIR elements: each checks one element's JSON type and raises `EntryError`
naming it, so mapping code reads fields without guessing at their shape. The file itself is read
by carehub.safejson.load_json first.
"""

from __future__ import annotations


class EntryError(Exception):
    """One problem in one entry; collected so a report lists every bad entry of a file."""


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
