"""Channels end to end: e-mail through a real SMTP server on loopback, the SMS webhooks over
HTTP (signed, refused when not), letters printed as a PDF."""

import datetime as dt
import io
import json
import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from pypdf import PdfReader

from consent.models import Consent
from gaps.care_gaps import GapState
from outreach.models import AttemptStatus, OutboundMessage, Outcome, Step
from outreach.pdf import letters_pdf
from outreach.services import outbox
from outreach.services.letters import build_letter_batch
from outreach.webhooks import signature
from tests.outreach.conftest import IN_MEASUREMENT_YEAR, gap_for

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(IN_MEASUREMENT_YEAR, tick=True)]
SECRET = "webhook-test-secret"


class Inbox(Message):
    def __init__(self):
        super().__init__()
        self.messages = []

    def handle_message(self, message):
        self.messages.append(message)


@pytest.fixture
def smtp_server(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    yield inbox
    controller.stop()


def test_an_email_goes_through_a_real_smtp_server_once(
    templates, patient_factory, system_user, smtp_server
):
    patient = patient_factory(consents=("email",))
    attempt, _ = outbox.plan_attempt(
        patient,
        step=Step.GAP_FIRST,
        window="2026",
        channel="email",
        actor=system_user,
        gaps=[gap_for(patient, GapState.OUTREACH)],
    )
    assert outbox.send_attempt(attempt.pk) == "sent"
    assert outbox.send_attempt(attempt.pk) == "already sent"
    assert len(smtp_server.messages) == 1
    received = smtp_server.messages[0]
    assert received["To"] == patient.email
    assert (
        received["Message-ID"] == OutboundMessage.objects.get(attempt=attempt).provider_message_id
    )
    assert "due for a health screening" in received.get_payload()


def test_an_unreachable_mail_server_fails_the_attempt_without_a_message(
    templates, patient_factory, system_user, settings
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port
    patient = patient_factory(consents=("email",))
    attempt, _ = outbox.plan_attempt(
        patient, step=Step.DORMANT, window="2026-06", channel="email", actor=system_user
    )
    assert outbox.send_attempt(attempt.pk) == "failed"
    attempt.refresh_from_db()
    assert attempt.outcome == Outcome.FAILED and "unreachable" in attempt.error
    assert not OutboundMessage.objects.exists()


def post(client, name, payload, *, secret=SECRET, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    return client.post(
        f"/webhooks/sms/{name}",
        data=body,
        content_type="application/json",
        HTTP_X_CAREHUB_SIGNATURE=signature(body, secret),
    )


def test_a_delivery_report_is_recorded_and_a_bad_signature_refused(
    client, templates, patient_factory, system_user, settings
):
    settings.CAREHUB_SMS_WEBHOOK_SECRET = SECRET
    patient = patient_factory()
    attempt, _ = outbox.plan_attempt(
        patient, step=Step.DORMANT, window="2026-06", channel="sms", actor=system_user
    )
    outbox.send_attempt(attempt.pk)
    attempt.refresh_from_db()
    report = {"message_id": attempt.provider_message_id, "status": "delivered"}
    assert post(client, "status", report, secret="wrong").status_code == 401
    attempt.refresh_from_db()
    assert attempt.outcome == ""
    assert post(client, "status", report).status_code == 200
    attempt.refresh_from_db()
    assert attempt.outcome == Outcome.DELIVERED
    assert post(client, "status", {"message_id": "nope", "status": "delivered"}).status_code == 404
    assert post(client, "status", {}, raw=b"{not json").status_code == 400
    assert post(client, "status", {"message_id": "x", "status": "lost"}).status_code == 400


def test_inbound_stop_revokes_consent_and_a_question_creates_a_callback(
    client, templates, patient_factory, settings
):
    settings.CAREHUB_SMS_WEBHOOK_SECRET = SECRET
    patient = patient_factory()
    question = {"from": patient.phone, "body": "Can I come on Friday?", "at": "2026-06-19T15:00Z"}
    response = post(client, "inbound", question)
    assert response.status_code == 200, response.content
    callback = patient.outreach_follow_ups.get()
    assert callback.kind == "callback"
    assert callback.due_at == dt.datetime(2026, 6, 22, 15, 0, tzinfo=dt.UTC)  # Friday -> Monday
    assert post(client, "inbound", {"from": patient.phone, "body": " stop "}).status_code == 200
    consent = Consent.objects.get(patient=patient, kind="sms_tcpa")
    assert consent.status == Consent.Status.REVOKED
    unsigned = client.post(
        "/webhooks/sms/inbound",
        data=json.dumps({"from": patient.phone, "body": "START"}),
        content_type="application/json",
    )
    assert unsigned.status_code == 401
    consent.refresh_from_db()
    assert consent.status == Consent.Status.REVOKED


def test_an_inbound_body_with_a_nul_character_is_refused_and_records_nothing(
    client, templates, patient_factory, settings
):
    settings.CAREHUB_SMS_WEBHOOK_SECRET = SECRET
    patient = patient_factory()
    response = post(client, "inbound", {"from": patient.phone, "body": "call me\u0000 back"})
    assert response.status_code == 400
    assert "NUL" in response.json()["error"]
    assert not patient.outreach_follow_ups.exists()


def test_no_secret_configured_refuses_every_webhook(client, settings):
    settings.CAREHUB_SMS_WEBHOOK_SECRET = ""
    assert post(client, "inbound", {"from": "+16175550100", "body": "STOP"}).status_code == 401


def test_letters_are_printed_as_one_pdf(templates, patient_factory, system_user, supervisor_a):
    for _ in range(2):
        patient = patient_factory()
        attempt, _ = outbox.plan_attempt(
            patient, step=Step.DORMANT, window="2026-06", channel="letter", actor=system_user
        )
        assert outbox.send_attempt(attempt.pk) == "sent"
    batch = build_letter_batch(patient.organization, actor=supervisor_a)
    pdf = PdfReader(io.BytesIO(bytes(batch.pdf)), strict=True)
    assert batch.letter_count == 2 and len(pdf.pages) == 2
    assert all("It has been a while" in page.extract_text() for page in pdf.pages)
    assert OutboundMessage.objects.filter(letter_batch=batch).count() == 2
    assert attempt.__class__.objects.get(pk=attempt.pk).status == AttemptStatus.SENT


def test_a_letter_longer_than_a_page_runs_on_instead_of_being_cut():
    long_letter = "\n".join(f"Line {n} of the letter." for n in range(1, 121)) + "\nThe last line."
    pdf = PdfReader(io.BytesIO(letters_pdf([long_letter, "A short one."])), strict=True)
    text = "".join(page.extract_text() for page in pdf.pages)
    assert len(pdf.pages) == 4
    assert "The last line." in text and text.rstrip().endswith("A short one.")
