"""guard_send: the check at send time wins over the plan; blocked sends are kept."""

import datetime as dt
import threading

import pytest
from django.db import close_old_connections, transaction

from consent.models import BlockedSend
from consent.policy import check_contact, check_contacts, guard_send
from consent.services import grant_consent, revoke_consent
from patients.models import Patient
from tests.patients.factories import PatientFactory

NOON_EASTERN = dt.datetime(2026, 11, 24, 17, 0, tzinfo=dt.UTC)


def _consenting(patient, actor):
    grant_consent(
        patient,
        kind="sms_tcpa",
        method="written_form",
        actor=actor,
        evidence="form 1",
        at=NOON_EASTERN - dt.timedelta(days=3),
    )


@pytest.mark.django_db
def test_a_blocked_send_is_recorded_with_its_reasons(patient_a, system_user):
    with transaction.atomic():
        decision = guard_send(
            patient_a,
            channel="sms",
            content_class="clinical",
            actor=system_user,
            purpose="outreach.attempt:1",
            at=NOON_EASTERN,
        )
    assert not decision.allowed
    blocked = BlockedSend.objects.get()
    assert (
        blocked.reasons
        == decision.reasons
        == ["clinical_content_requires_portal", "no_tcpa_consent"]
    )
    assert blocked.purpose == "outreach.attempt:1"
    assert blocked.history.get().history_user == system_user


@pytest.mark.django_db
def test_an_allowed_send_records_nothing(patient_a, system_user):
    _consenting(patient_a, system_user)
    with transaction.atomic():
        decision = guard_send(
            patient_a, channel="sms", content_class="general", actor=system_user, at=NOON_EASTERN
        )
    assert decision.allowed
    assert not BlockedSend.objects.exists()


# Without transaction=True the test itself would run inside a transaction and hide the mistake.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_guard_send_refuses_to_run_outside_the_sending_transaction(patient_a, system_user):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        guard_send(patient_a, channel="sms", content_class="general", actor=system_user)


@pytest.mark.django_db
def test_check_contacts_costs_the_same_queries_for_one_or_fifty_patients(
    org_a, system_user, django_assert_num_queries
):
    patients = PatientFactory.create_batch(50, organization=org_a)
    for patient in patients[::3]:
        _consenting(patient, system_user)
    one = Patient.objects.filter(pk=patients[0].pk)
    every = Patient.objects.filter(organization=org_a)
    with django_assert_num_queries(2):
        check_contacts(one, channel="sms", content_class="general", at=NOON_EASTERN)
    with django_assert_num_queries(2):
        decisions = check_contacts(every, channel="sms", content_class="general", at=NOON_EASTERN)
    assert len(decisions) == 50
    for patient in patients:
        single = check_contact(patient, channel="sms", content_class="general", at=NOON_EASTERN)
        assert decisions[patient.pk].reasons == single.reasons
    assert sum(d.allowed for d in decisions.values()) == len(patients[::3])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_revoke_committed_after_planning_blocks_the_send(postgres_only, org_a, system_user):
    """Two connections: the planner saw 'allowed'; the patient's revoke commits; the send is
    blocked. Then the harder order: the revoke holds the lock while the send starts."""
    patient = PatientFactory(organization=org_a)
    _consenting(patient, system_user)
    plan = check_contact(patient, channel="sms", content_class="general", at=NOON_EASTERN)
    assert plan.allowed

    def revoke():
        try:
            revoke_consent(
                patient, kind="sms_tcpa", method="sms_keyword", actor=None, at=NOON_EASTERN
            )
        finally:
            close_old_connections()

    other = threading.Thread(target=revoke)
    other.start()
    other.join()
    with transaction.atomic():
        decision = guard_send(
            patient,
            channel="sms",
            content_class="general",
            actor=system_user,
            at=NOON_EASTERN + dt.timedelta(minutes=1),
        )
    assert decision.reasons == ["no_tcpa_consent"]

    # The revoke is in flight (lock held, not committed) when the send begins: the send waits
    # for it and then sees it.
    grant_consent(
        patient,
        kind="sms_tcpa",
        method="written_form",
        actor=system_user,
        evidence="form 2",
        at=NOON_EASTERN,
    )
    revoke_holds_lock = threading.Event()
    send_may_finish = threading.Event()
    outcome = {}

    def slow_revoke():
        try:
            with transaction.atomic():
                revoke_consent(
                    patient,
                    kind="sms_tcpa",
                    method="sms_keyword",
                    actor=None,
                    at=NOON_EASTERN + dt.timedelta(minutes=2),
                )
                revoke_holds_lock.set()
                send_may_finish.wait(timeout=10)
        finally:
            close_old_connections()

    def send():
        try:
            revoke_holds_lock.wait(timeout=10)
            with transaction.atomic():
                outcome["decision"] = guard_send(
                    patient,
                    channel="sms",
                    content_class="general",
                    actor=system_user,
                    at=NOON_EASTERN + dt.timedelta(minutes=3),
                )
        finally:
            close_old_connections()

    revoker, sender = threading.Thread(target=slow_revoke), threading.Thread(target=send)
    revoker.start()
    sender.start()
    sender.join(timeout=1)
    assert sender.is_alive(), "the send must wait for the revoke's lock"
    send_may_finish.set()
    revoker.join(timeout=10)
    sender.join(timeout=10)
    assert outcome["decision"].reasons == ["no_tcpa_consent"]
    assert BlockedSend.objects.filter(patient=patient).count() == 2
