"""The import and care-gaps endpoints and the read-only admin, scoped per organization."""

import datetime as dt
import json

import pytest

from audit.models import AccessLog
from carehub import roles
from gaps.measures import oids
from gaps.models import MeasureResult
from tests.conftest import PASSWORD, make_persona
from tests.gaps.conftest import BundleBuilder, evaluate_one, needs_shared

pytestmark = pytest.mark.django_db


def bundle(pid="api-1"):
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": f"Patient/{pid}",
                "resource": {
                    "resourceType": "Patient",
                    "id": pid,
                    "gender": "female",
                    "birthDate": "1970-01-01",
                },
            }
        ],
    }


@pytest.fixture
def supervisor_a(org_a, system_user):
    return make_persona("sup-a", roles.SUPERVISOR, [org_a], system_user)


@pytest.fixture
def agent_a(org_a, system_user):
    return make_persona("agent-a", roles.AGENT, [org_a], system_user)


def post(client, user, slug, body):
    client.login(username=user.username, password=PASSWORD)
    return client.post(
        f"/api/fhir/import?organization={slug}",
        data=json.dumps(body),
        content_type="application/json",
    )


def test_a_supervisor_imports_a_bundle_for_their_organization(client, supervisor_a, org_a):
    response = post(client, supervisor_a, "org-a", bundle())
    assert response.status_code == 201, response.content
    assert response.json()["counts"]["patients_created"] == 1
    assert org_a.patients.get().history.get().history_user == supervisor_a


def test_a_bad_bundle_is_refused_with_the_report(client, supervisor_a, org_a):
    bad = bundle()
    bad["entry"][0]["resource"]["birthDate"] = "1970-02-31"
    response = post(client, supervisor_a, "org-a", bad)
    assert response.status_code == 400
    assert "birthDate" in response.json()["errors"][0]
    assert not org_a.patients.exists()


def test_import_is_refused_for_another_organization_or_an_agent(
    client, supervisor_a, agent_a, org_b
):
    assert post(client, supervisor_a, "org-b", bundle()).status_code == 404
    assert post(client, agent_a, "org-a", bundle()).status_code == 403
    assert not org_b.patients.exists()


@needs_shared
def test_care_gaps_lists_only_the_callers_organizations(
    client, agent_a, org_a, org_b, system_user, valuesets_2024
):
    for org in (org_a, org_b):
        builder = BundleBuilder(birth_date="1960-01-01")
        builder.encounter(oids.OFFICE_VISIT, "2025-03-03T09:00:00Z")
        evaluate_one(builder, org, system_user, "CMS130", 2025)
    client.login(username="agent-a", password=PASSWORD)
    url = "/api/care-gaps?periodStart=2025-01-01&periodEnd=2025-12-31&status=open-gap"
    response = client.get(url + "&organization=org-a")
    assert response.status_code == 200
    (returned,) = response.json()["parameter"]
    assert returned["resource"]["type"] == "document"
    assert client.get(url + "&organization=org-b").status_code == 404
    (logged,) = AccessLog.objects.filter(action="export", channel="api")
    assert logged.object_ids == list(org_a.patients.values_list("pk", flat=True))


@needs_shared
def test_admin_shows_results_with_evidence_only_for_granted_organizations(
    client, agent_a, org_a, org_b, system_user, valuesets_2024
):
    results = {}
    for org in (org_a, org_b):
        builder = BundleBuilder(birth_date="1960-01-01")
        builder.encounter(oids.OFFICE_VISIT, "2025-03-03T09:00:00Z")
        results[org.slug] = evaluate_one(builder, org, system_user, "CMS130", 2025)
    client.login(username="agent-a", password=PASSWORD)
    assert client.get("/admin/gaps/measureresult/").status_code == 200
    page = client.get(f"/admin/gaps/measureresult/{results['org-a'].pk}/change/")
    assert page.status_code == 200 and b"qualifying encounter" in page.content
    other = client.get(f"/admin/gaps/measureresult/{results['org-b'].pk}/change/")
    assert other.status_code == 404
    assert MeasureResult.objects.count() == 2
    assert dt.date(2025, 1, 1) == results["org-a"].period_start
