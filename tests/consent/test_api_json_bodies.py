"""JSON bodies the API cannot store or walk are a 400 naming the problem, never a 500."""

import pytest

from consent.models import ContactPreference

pytestmark = pytest.mark.django_db

BODIES = {
    "nested-thousands-deep": (
        b'{"reason": "x", "opted_out_channels": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        "JSON nested deeper than 64 levels",
    ),
    "nul-in-a-string": (
        b'{"reason": "a\\u0000b", "opted_out_channels": ["sms"]}',
        "reason: contains a NUL character",
    ),
    "lone-surrogate": (
        b'{"reason": "x\\ud800", "opted_out_channels": ["sms"]}',
        "reason: contains a lone surrogate",
    ),
    "nan": (b'{"reason": "x", "contact_days": [NaN]}', "contact_days[0]: NaN is not a JSON number"),
}


@pytest.mark.parametrize("body, message", BODIES.values(), ids=BODIES.keys())
def test_a_preferences_patch_with_unsafe_json_is_a_400(client, agent_a, patient_a, body, message):
    client.force_login(agent_a)
    response = client.patch(
        f"/api/patients/{patient_a.pk}/preferences/", data=body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]
    assert not ContactPreference.objects.filter(
        patient=patient_a, opted_out_channels=["sms"]
    ).exists()
