"""Onboarding a new client end to end: create_organization, a gap list, grant_access, and the new
staff member's gap list shows the client's gaps (and nothing of any other client)."""

import datetime as dt
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from guardian.models import UserObjectPermission

from carehub import roles
from gaps.care_gaps import CareGap
from gaps.selectors import care_gaps_for
from patients.models import Organization
from patients.selectors import organizations_for
from tests.gaps.factories import CareGapFactory
from tests.patients.factories import PatientFactory

pytestmark = pytest.mark.django_db


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def newcomer(db):
    return get_user_model().objects.create_user(
        "nina", password="a-long-test-password-42", is_staff=True
    )


def test_a_new_organizations_gaps_become_visible_to_its_staff(
    client, tmp_path, newcomer, patient_b, system_user
):
    run("create_organization", "hillcrest", name="Hillcrest Medical Group")
    hillcrest = Organization.objects.get(slug="hillcrest")
    PatientFactory(organization=hillcrest, mrn="H100")
    gap_list = tmp_path / "hillcrest.csv"
    due = dt.date(timezone.localdate().year, 12, 31)
    gap_list.write_text(f"mrn,measure,due_date\nH100,CMS130,{due}\n")
    run("import_gap_list", str(gap_list), organization="hillcrest", source="Hillcrest EHR")
    CareGapFactory(patient=patient_b)  # another client's gap, never shown to Nina
    assert not care_gaps_for(newcomer).exists()

    output = run("grant_access", "nina", "hillcrest", role=["agent"])

    assert "nina now works for hillcrest (Agent)" in output
    assert list(organizations_for(newcomer)) == [hillcrest]
    grant = UserObjectPermission.history.get(user=newcomer)
    assert grant.history_user == system_user
    client.force_login(newcomer)
    page = client.get(reverse("admin:gaps_caregap_changelist"))
    assert page.status_code == 200
    shown = list(page.context["cl"].result_list)
    assert [gap.organization_id for gap in shown] == [hillcrest.pk]
    assert shown == list(CareGap.objects.filter(organization=hillcrest))


def test_roles_are_named_plainly_and_checked(newcomer, org_a, org_b):
    run("grant_access", "nina", org_a.slug, role=["Care coordinator", "supervisor"])
    assert {g.name for g in newcomer.groups.all()} == {roles.COORDINATOR, roles.SUPERVISOR}
    with pytest.raises(CommandError, match="Unknown role 'boss'"):
        run("grant_access", "nina", org_a.slug, role=["boss"])
    with pytest.raises(CommandError, match="never both Auditor and Administrator"):
        run("grant_access", "nina", "org-b", role=["administrator", "auditor"])
    assert {g.name for g in newcomer.groups.all()} == {roles.COORDINATOR, roles.SUPERVISOR}
    assert list(organizations_for(newcomer)) == [org_a]  # nothing of the refused command stays


def test_unknown_user_or_organization_is_named(newcomer, org_a):
    with pytest.raises(CommandError, match="No user 'nobody'"):
        run("grant_access", "nobody", org_a.slug)
    with pytest.raises(CommandError, match="No organization with slug 'nowhere'"):
        run("grant_access", "nina", "nowhere")
    assert not organizations_for(newcomer).exists()


def test_the_readmes_example_organization_is_not_a_demo_organization():
    import re
    from pathlib import Path

    from patients.demo import DEMO_ORGANIZATIONS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    examples = set(re.findall(r"create_organization (\S+)", readme))
    assert examples, "the README shows how to create an organization"
    assert not examples & {spec["slug"] for spec in DEMO_ORGANIZATIONS}
