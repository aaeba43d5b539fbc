"""contact-decisions refuses an `at` it cannot place in a patient's day, with a 400."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "at",
    [
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+14:00",
        "1850-01-01T00:00:00Z",
        "2026-01-01T00:00:00",
        "yesterday",
    ],
)
def test_an_instant_out_of_range_or_without_offset_is_a_400(client, agent_a, patient_a, at):
    client.force_login(agent_a)
    response = client.get(f"/api/patients/{patient_a.pk}/contact-decisions/", {"at": at})
    assert response.status_code == 400, response.content
    assert "at must be an ISO 8601 instant with its offset" in response.json()["detail"]


def test_a_plausible_instant_is_answered(client, agent_a, patient_a):
    client.force_login(agent_a)
    response = client.get(
        f"/api/patients/{patient_a.pk}/contact-decisions/", {"at": "2030-06-01T15:00:00-05:00"}
    )
    assert response.status_code == 200
    assert response.json()["at"] == "2030-06-01T15:00:00-05:00"
