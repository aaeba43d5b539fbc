"""Services refuse an actor without access to the record's organization (defense in depth).

The admin and the API scope every read, so these calls never happen through them; the services
refuse too, so a command, a task or a future screen that forgets the scope still cannot reach
another client. Background work acting as the system user still works.
"""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from carehub.errors import NotAllowed
from carehub.permissions import may_access_organization, require_organization_access
from consent.links import create_self_service_link, revoke_self_service_link
from consent.models import Consent
from consent.services import grant_consent, revoke_consent, update_preferences
from gaps import workflow
from gaps.care_gaps import CareGap, GapEvidence, GapListImport, GapState
from gaps.gap_lists import apply_gap_list, import_gap_list, receive_gap_list
from tests.gaps.factories import IN_MEASUREMENT_YEAR, CareGapFactory
from tests.gaps.test_gap_workflow import arguments

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(IN_MEASUREMENT_YEAR, tick=True)]

# A state from which each service is allowed, so only the organization check can refuse it.
FROM_STATE = {
    "start_review": GapState.IDENTIFIED,
    "validate_gap": GapState.IN_REVIEW,
    "mark_not_a_gap": GapState.IN_REVIEW,
    "record_outreach_started": GapState.VALIDATED,
    "mark_scheduled": GapState.OUTREACH,
    "mark_completed": GapState.SCHEDULED,
    "close_gap": GapState.COMPLETED,
    "flag_for_review": GapState.OUTREACH,
    "mark_declined": GapState.OUTREACH,
    "mark_unreachable": GapState.OUTREACH,
    "reopen_after_no_show": GapState.SCHEDULED,
}
LIST = "mrn,measure,due_date\nA100,CMS130,2026-12-31\n"


@pytest.fixture
def supervisor_b(persona, org_b):
    return persona("supervisor", org_b)


def test_every_service_has_a_case():
    assert set(FROM_STATE) == set(workflow.SERVICES)


@pytest.mark.parametrize("service", sorted(workflow.SERVICES))
def test_a_transition_on_another_organizations_gap_is_refused(service, patient_a, supervisor_b):
    gap = CareGapFactory(patient=patient_a, state=FROM_STATE[service])
    versions = gap.history.count()
    with pytest.raises(NotAllowed, match="no access to the organization"):
        workflow.SERVICES[service](gap, actor=supervisor_b, **arguments(service))
    gap.refresh_from_db()
    assert gap.state == FROM_STATE[service]
    assert gap.history.count() == versions


@pytest.mark.parametrize("service", sorted(workflow.SERVICES))
def test_the_system_user_makes_every_transition(service, patient_a, system_user):
    gap = CareGapFactory(patient=patient_a, state=FROM_STATE[service])
    workflow.SERVICES[service](gap, actor=system_user, **arguments(service))
    gap.refresh_from_db()
    assert gap.state == workflow.BY_SERVICE[service].target
    assert gap.history.latest().history_user == system_user


def test_moving_the_next_attempt_of_another_organizations_gap_is_refused(patient_a, supervisor_b):
    gap = CareGapFactory(patient=patient_a, state=GapState.OUTREACH)
    due = gap.next_step_due
    with pytest.raises(NotAllowed):
        workflow.set_next_attempt(
            gap, actor=supervisor_b, due=due + dt.timedelta(days=3), reason="called"
        )
    gap.refresh_from_db()
    assert gap.next_step_due == due


def test_opening_a_gap_for_another_organizations_patient_is_refused(patient_a, supervisor_b):
    with pytest.raises(NotAllowed):
        workflow.open_gap(patient_a, measure_code="CMS130", actor=supervisor_b, reason="saw it")
    assert not CareGap.objects.filter(patient=patient_a).exists()


def test_evidence_is_neither_added_nor_downloaded_across_organizations(
    patient_a, supervisor_a, supervisor_b
):
    gap = CareGapFactory(patient=patient_a, state=GapState.OUTREACH)
    with pytest.raises(NotAllowed):
        workflow.add_evidence(gap, actor=supervisor_b, kind="lab_result", reference="ACC-9")
    assert not GapEvidence.objects.filter(gap=gap).exists()
    evidence = workflow.add_evidence(
        gap,
        actor=supervisor_a,
        kind="lab_result",
        attachment=SimpleUploadedFile("result.txt", b"HbA1c 6.1%\n"),
    )
    with workflow.open_evidence_file(evidence, actor=supervisor_a) as handle:
        assert handle.read() == b"HbA1c 6.1%\n"
    with pytest.raises(NotAllowed):
        workflow.open_evidence_file(evidence, actor=supervisor_b)


def test_a_gap_list_for_another_organization_is_neither_received_nor_applied(
    org_a, patient_a, supervisor_a, supervisor_b
):
    patient_a.mrn = "A100"
    patient_a.save()
    with pytest.raises(NotAllowed):
        import_gap_list(
            org_a,
            content=LIST.encode(),
            file_name="list.csv",
            source_name="Payer",
            source_kind="payer_list",
            actor=supervisor_b,
        )
    assert not GapListImport.objects.exists()
    record = receive_gap_list(
        org_a,
        content=LIST.encode(),
        file_name="list.csv",
        source_name="Payer",
        source_kind="payer_list",
        actor=supervisor_a,
    )
    with pytest.raises(NotAllowed):
        apply_gap_list(record, actor=supervisor_b)
    record.refresh_from_db()
    assert record.status == GapListImport.Status.PREVIEWED
    assert not CareGap.objects.exists()


def test_the_system_user_imports_a_gap_list(org_a, patient_a, system_user):
    patient_a.mrn = "A100"
    patient_a.save()
    record = import_gap_list(
        org_a,
        content=LIST.encode(),
        file_name="list.csv",
        source_name="Payer",
        source_kind="payer_list",
        actor=system_user,
    )
    assert record.counts["opened"] == 1


def test_consent_preferences_and_links_refuse_another_organization(
    patient_a, agent_a, agent_b, system_user
):
    with pytest.raises(NotAllowed):
        grant_consent(patient_a, kind="email", method="written_form", actor=agent_b)
    with pytest.raises(NotAllowed):
        revoke_consent(patient_a, kind="email", method="written_form", actor=agent_b)
    with pytest.raises(NotAllowed):
        update_preferences(
            patient_a, actor=agent_b, path="admin", reason="asked", do_not_contact=True
        )
    with pytest.raises(NotAllowed):
        create_self_service_link(patient_a, actor=agent_b)
    link, _ = create_self_service_link(patient_a, actor=agent_a)
    with pytest.raises(NotAllowed):
        revoke_self_service_link(link, actor=agent_b)
    link.refresh_from_db()
    assert link.revoked_at is None
    assert not Consent.objects.filter(patient=patient_a).exists()
    # Background work (the system user) acts for every organization.
    grant_consent(patient_a, kind="email", method="written_form", actor=system_user)


def test_the_helper(org_a, org_b, agent_a, system_user):
    assert may_access_organization(agent_a, org_a.pk)
    assert not may_access_organization(agent_a, org_b.pk)
    assert may_access_organization(system_user, org_b.pk)
    assert not may_access_organization(None, org_a.pk)
    agent_a.is_active = False  # a disabled user reaches nothing
    assert not may_access_organization(agent_a, org_a.pk)
    with pytest.raises(NotAllowed, match="organization of this thing"):
        require_organization_access(agent_a, org_a.pk, what="this thing")
