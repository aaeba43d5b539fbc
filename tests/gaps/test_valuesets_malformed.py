"""load_valuesets refuses malformed files by name: no traceback, nothing half-loaded."""

import json

import pytest
from django.core.management import CommandError

from gaps.models import ValueSet, ValueSetCode
from tests.gaps.test_valuesets import OID, load, value_set

pytestmark = pytest.mark.django_db


def with_code(**item):
    document = value_set()
    document["expansion"]["contains"] = [{"system": "http://example.org/cs", "code": "a", **item}]
    return document


def nested(depth: int) -> str:
    return json.dumps(value_set())[:-1] + ', "extension": ' + "[" * depth + "]" * depth + "}"


MALFORMED = {
    "bundle-entry-is-a-string": (
        {"resourceType": "Bundle", "entry": ["ValueSet"]},
        "vs0.json: entry[0]: must be an object, not a string",
    ),
    "nul-in-display": (
        with_code(display="Colo\x00noscopy"),
        "vs0.json: expansion.contains[0].display: contains a NUL character",
    ),
    "overflowing-timestamp": (
        value_set(timestamp="9999-12-31T23:59:59-12:00"),
        "vs0.json: expansion.timestamp: '9999-12-31T23:59:59-12:00' is out of range",
    ),
    "nested-thousands-deep": (nested(5000), "vs0.json: JSON nested deeper than 64 levels"),
    "nested-hundreds-deep": (nested(200), "vs0.json: extension[0][0]"),
    "lone-surrogate": (
        with_code(display="\ud800"),
        "vs0.json: expansion.contains[0].display: contains a lone surrogate",
    ),
    "code-over-64-characters": (
        with_code(code="9" * 65),
        "vs0.json: expansion.contains[0].code: longer than 64 characters",
    ),
    "code-as-a-number": (
        with_code(code=12345),
        "vs0.json: expansion.contains[0].code: must be a string, not a number",
    ),
    "contains-is-an-object": (
        {**value_set(), "expansion": {"contains": {"code": "a"}}},
        "vs0.json: expansion: ValueSet 9.9.9.1 has no expansion.contains",
    ),
    "nan-total": (
        json.dumps(value_set(total=float("nan"))),
        "vs0.json: expansion.total: NaN is not a JSON number",
    ),
}


@pytest.mark.parametrize("document, message", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_value_set_files_are_refused_by_name(tmp_path, document, message):
    if isinstance(document, dict):
        # ensure_ascii keeps a lone surrogate writable; the loader sees the \\ud800 escape.
        document = json.dumps(document)
    codes_before = ValueSetCode.objects.count()  # other tests' value sets may be loaded
    with pytest.raises(CommandError, match="No value set loaded"):
        load(tmp_path, document, value_set(version="2"))
    assert not ValueSet.objects.filter(oid=OID).exists()
    assert ValueSetCode.objects.count() == codes_before
    _, err = load(tmp_path, document, value_set(version="2"), partial=True)
    assert message in err
    assert list(ValueSet.objects.filter(oid=OID).values_list("version", flat=True)) == ["2"]
