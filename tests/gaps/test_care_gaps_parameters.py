"""GET /api/care-gaps says which parameter is wrong with a 400 (as the README documents)."""

import pytest

pytestmark = pytest.mark.django_db

URL = "/api/care-gaps"


@pytest.mark.parametrize(
    "query, message",
    [
        ("periodStart=2025-01-01", "periodStart and periodEnd are required dates"),
        ("periodStart=2025-13-01&periodEnd=2025-12-31", "periodStart and periodEnd"),
        ("periodStart=2025-12-31&periodEnd=2025-01-01", "periodStart is after periodEnd"),
        (
            "periodStart=2025-01-01&periodEnd=2025-12-31&status=open",
            "status is one of open-gap, closed-gap, prospective-gap, not-applicable",
        ),
    ],
)
def test_bad_parameters_are_a_400_naming_them(client, agent_a, org_a, query, message):
    client.force_login(agent_a)
    response = client.get(f"{URL}?organization=org-a&{query}")
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_a_period_without_results_is_an_empty_parameters_resource(client, agent_a, org_a):
    client.force_login(agent_a)
    response = client.get(f"{URL}?organization=org-a&periodStart=2025-01-01&periodEnd=2025-12-31")
    assert response.status_code == 200
    assert response.json() == {"resourceType": "Parameters", "parameter": []}
