"""The closure workflow of a care gap (domain.md 2.3): one transition table, one service each.

    identified -> in_review -> validated -> outreach -> scheduled -> completed -> closed
                     |            |            |            |            |
                     +-> not_a_gap (done elsewhere / excluded / data error, with evidence)
    outreach -> declined | unreachable        scheduled --no-show--> outreach
    any open state -> needs_review (a coordinator decides the next step)

Corrections are transitions too (nothing is deleted): a declined or unreachable patient can be
reached again (-> outreach), a not-a-gap found wrong goes back to review, a questioned closure
goes to needs_review. Leaving needs_review is the coordinator's or supervisor's decision
(`gaps.review_caregap`). The engine may close or exclude a gap from any state but closed
(gaps.sync), outside this table, because new clinical data outranks the worklist.

Every service locks the gap, checks the table, sets the next step and its due date (every open
gap has both, a database constraint says so), and saves with the actor and the reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from carehub import events
from carehub.errors import Conflict, DomainError, NotAllowed
from carehub.history import save_with_history
from carehub.permissions import require_organization_access
from gaps.care_gaps import (
    DOCUMENTATION_DAYS,
    CareGap,
    GapEvidence,
    GapSource,
    GapState,
    NextStep,
    NotAGapReason,
    SourceKind,
)
from gaps.evidence_files import content_type_of
from gaps.measures import MEASURE_CODES, MEASURE_WEIGHTS, pick_version
from gaps.measures.windows import closure_window
from gaps.services import sync_catalogue

S = GapState


@dataclass(frozen=True)
class Transition:
    service: str
    source: frozenset[str]
    target: str
    permission: str = "gaps.change_caregap"


REVIEW_PERMISSION = "gaps.review_caregap"
_WORKED = frozenset({S.IDENTIFIED, S.IN_REVIEW, S.VALIDATED, S.OUTREACH, S.SCHEDULED, S.COMPLETED})

# The one table. (A source of needs_review needs REVIEW_PERMISSION; see allowed_transition.)
TRANSITIONS: tuple[Transition, ...] = (
    Transition("start_review", frozenset({S.IDENTIFIED, S.NOT_A_GAP, S.NEEDS_REVIEW}), S.IN_REVIEW),
    Transition("validate_gap", frozenset({S.IN_REVIEW}), S.VALIDATED),
    Transition(
        "mark_not_a_gap",
        frozenset({S.IN_REVIEW, S.VALIDATED, S.OUTREACH, S.NEEDS_REVIEW}),
        S.NOT_A_GAP,
    ),
    Transition(
        "record_outreach_started",
        frozenset({S.VALIDATED, S.NEEDS_REVIEW, S.DECLINED, S.UNREACHABLE}),
        S.OUTREACH,
    ),
    Transition("mark_scheduled", frozenset({S.OUTREACH}), S.SCHEDULED),
    Transition("mark_completed", frozenset({S.SCHEDULED}), S.COMPLETED),
    Transition("close_gap", frozenset({S.COMPLETED, S.NEEDS_REVIEW}), S.CLOSED),
    Transition("flag_for_review", _WORKED | {S.CLOSED}, S.NEEDS_REVIEW),
    Transition("mark_declined", frozenset({S.OUTREACH, S.SCHEDULED, S.NEEDS_REVIEW}), S.DECLINED),
    Transition("mark_unreachable", frozenset({S.OUTREACH, S.NEEDS_REVIEW}), S.UNREACHABLE),
    Transition("reopen_after_no_show", frozenset({S.SCHEDULED}), S.OUTREACH),
)
BY_SERVICE = {t.service: t for t in TRANSITIONS}

# What comes next in each open state, and in how many days it is due by default.
NEXT_STEP = {
    S.IDENTIFIED: (NextStep.REVIEW_RECORDS, 2),
    S.IN_REVIEW: (NextStep.REVIEW_RECORDS, 2),
    S.VALIDATED: (NextStep.FIRST_OUTREACH, 1),
    S.OUTREACH: (NextStep.NEXT_ATTEMPT, 3),
    S.SCHEDULED: (NextStep.ATTEND_VISIT, 0),
    S.COMPLETED: (NextStep.OBTAIN_DOCUMENTATION, 14),
    S.NEEDS_REVIEW: (NextStep.COORDINATOR_REVIEW, 2),
}


def allowed_transition(gap: CareGap, service: str, user=None) -> Transition | None:
    """The transition `service` would make from the gap's state, if the table allows it (and
    the user may make it, when a user is given)."""
    transition = BY_SERVICE[service]
    if gap.state not in transition.source:
        return None
    if user is not None and not can_make(user, transition, gap.state):
        return None
    return transition


def can_make(user, transition: Transition, from_state: str) -> bool:
    if not user.has_perm(transition.permission):
        return False
    return from_state != S.NEEDS_REVIEW or user.has_perm(REVIEW_PERMISSION)


def available_transitions(gap: CareGap, user) -> list[Transition]:
    return [t for t in TRANSITIONS if allowed_transition(gap, t.service, user) is not None]


def today() -> dt.date:
    return timezone.localdate()


def _begin(gap: CareGap, service: str, actor) -> tuple[CareGap, Transition]:
    if actor is None:
        raise ValueError("Every transition needs an acting user")
    locked = CareGap.objects.select_for_update().select_related("measure", "patient").get(pk=gap.pk)
    require_organization_access(actor, locked.organization_id, what="this gap")
    transition = BY_SERVICE[service]
    if locked.state not in transition.source:
        allowed = ", ".join(sorted(transition.source))
        raise Conflict(
            f"Cannot {service.replace('_', ' ')}: the gap is {locked.get_state_display().lower()}"
            f" ({locked.state}); allowed from {allowed}"
        )
    if not actor.is_system and not can_make(actor, transition, locked.state):
        raise NotAllowed(f"Your role may not {service.replace('_', ' ')} this gap")
    return locked, transition


def _finish(
    gap: CareGap,
    target: str,
    *,
    actor,
    reason: str,
    due: dt.date | None = None,
    step: str | None = None,
) -> CareGap:
    previous_state = gap.state
    gap.state = target
    gap.state_changed_at = timezone.now()
    if target in NEXT_STEP:
        default_step, days = NEXT_STEP[target]
        gap.next_step = step or default_step
        gap.next_step_due = due or today() + dt.timedelta(days=days)
    else:
        gap.next_step, gap.next_step_due = "", None
    save_with_history(gap, actor=actor, reason=reason)
    # Work items follow the gap in this same transaction (worklists subscribes).
    events.publish(
        events.GAP_TRANSITIONED, gap=gap, previous_state=previous_state, actor=actor, reason=reason
    )
    return gap


def _require(text: str, what: str) -> str:
    text = (text or "").strip()
    if not text:
        raise DomainError(f"{what} is required")
    return text


# -- evidence ---------------------------------------------------------------------------------


def check_attachment(upload: UploadedFile) -> tuple[str, str]:
    """(content type, sha256) of an acceptable file, or a DomainError naming the problem."""
    limit = settings.CAREHUB_EVIDENCE_MAX_BYTES
    if upload.size > limit:
        raise DomainError(f"The attachment is {upload.size:,} bytes; the limit is {limit:,} bytes")
    upload.seek(0)
    data = upload.read()  # whole: the checks read the structure to the end (bounded above)
    upload.seek(0)
    return content_type_of(data), hashlib.sha256(data).hexdigest()


def add_evidence(
    gap: CareGap,
    *,
    actor,
    kind: str,
    service_date: dt.date | None = None,
    reference: str = "",
    attachment: UploadedFile | None = None,
    reason: str = "Evidence added",
    result_values: dict | None = None,
) -> GapEvidence:
    require_organization_access(actor, gap.organization_id, what="this gap")
    if kind not in GapEvidence.Kind.values:
        raise DomainError(f"Unknown evidence type {kind!r}")
    reference = (reference or "").strip()
    if not reference and attachment is None:
        raise DomainError("Evidence needs a reference (accession, claim or document id) or a file")
    evidence = GapEvidence(
        organization_id=gap.organization_id,
        gap=gap,
        kind=kind,
        service_date=service_date,
        reference=reference[:300],
        added_by=actor,
        added_at=timezone.now(),
        **(result_values or {}),
    )
    if attachment is not None:
        evidence.attachment_type, evidence.attachment_sha256 = check_attachment(attachment)
        evidence.attachment_size = attachment.size
        # Every check has passed before the file is written; should the row still fail, the
        # file goes too (callers validate before calling, so nothing later rolls back).
        evidence.attachment.save("evidence", attachment, save=False)
        try:
            save_with_history(evidence, actor=actor, reason=reason)
        except Exception:
            evidence.attachment.delete(save=False)
            raise
        return evidence
    save_with_history(evidence, actor=actor, reason=reason)
    return evidence


def open_evidence_file(evidence: GapEvidence, *, actor):
    """The evidence's attachment, opened for download by a user of the gap's organization."""
    require_organization_access(actor, evidence.organization_id, what="this evidence")
    if not evidence.attachment:
        raise DomainError("This evidence has no file")
    return evidence.attachment.open("rb")


def window_for(gap: CareGap) -> tuple[dt.date, dt.date]:
    definition, _ = pick_version(gap.measure_code, gap.period_end.year, gap.measure.version)
    return closure_window(definition, gap.period_start, gap.period_end, gap.patient.birth_date)


def check_service_date(gap: CareGap, service_date: dt.date | None) -> None:
    if service_date is None:
        raise DomainError("The date of service is required")
    if service_date > today():
        raise DomainError(f"The date of service {service_date} is in the future")
    first, last = window_for(gap)
    if not first <= service_date <= last:
        raise DomainError(
            f"A service on {service_date} does not count for {gap.measure_code} in the period "
            f"{gap.period_start} to {gap.period_end}: it must be between {first} and {last}"
        )


# Measures whose numerator is a result value: their closure records the value and must meet it.
BP_CONTROLLED_BELOW = (140, 90)  # CMS165: most recent BP < 140/90 mmHg
HBA1C_POOR_ABOVE = Decimal("9.0")  # CMS122 (inverse): HbA1c > 9% is the gap


def check_result(
    gap: CareGap,
    *,
    systolic_bp: int | None = None,
    diastolic_bp: int | None = None,
    hba1c_percent: Decimal | None = None,
) -> dict:
    """The result fields a closure of this gap records, or a DomainError saying what is wrong."""
    code = gap.measure_code
    if code == "CMS165":
        if systolic_bp is None or diastolic_bp is None:
            raise DomainError(
                "CMS165 closes on a blood pressure: give the systolic and diastolic values (mmHg)"
            )
        if not (50 <= systolic_bp <= 300 and 20 <= diastolic_bp <= 200):
            raise DomainError(
                f"{systolic_bp}/{diastolic_bp} mmHg is not a plausible blood pressure"
            )
        if systolic_bp >= BP_CONTROLLED_BELOW[0] or diastolic_bp >= BP_CONTROLLED_BELOW[1]:
            raise DomainError(
                f"A blood pressure of {systolic_bp}/{diastolic_bp} mmHg is not controlled (the "
                "measure needs below 140/90): the gap stays open"
            )
        return {"systolic_bp": systolic_bp, "diastolic_bp": diastolic_bp}
    if code == "CMS122":
        if hba1c_percent is None:
            raise DomainError("CMS122 closes on an HbA1c result: give the value in %")
        if not Decimal("3") <= hba1c_percent <= Decimal("25"):
            raise DomainError(f"An HbA1c of {hba1c_percent}% is not a plausible result")
        if hba1c_percent > HBA1C_POOR_ABOVE:
            raise DomainError(
                f"An HbA1c of {hba1c_percent}% is above 9%: the patient still counts as poorly "
                "controlled, so the gap stays open"
            )
        return {"hba1c_percent": hba1c_percent}
    if systolic_bp is not None or diastolic_bp is not None or hba1c_percent is not None:
        raise DomainError(f"{code} does not close on a result value (only CMS165 and CMS122 do)")
    return {}


# -- the transitions --------------------------------------------------------------------------


@transaction.atomic
def open_gap(
    patient,
    *,
    measure_code: str,
    actor,
    reason: str,
    year: int | None = None,
    due_date: dt.date | None = None,
    missing: str = "",
) -> CareGap:
    """A gap staff found themselves (source: manual); one per patient, measure and period."""
    require_organization_access(actor, patient.organization_id, what="this patient")
    reason = _require(reason, "A reason (what shows the service is due)")
    if measure_code not in MEASURE_CODES:
        raise DomainError(f"Unknown measure {measure_code!r}; known: {', '.join(MEASURE_CODES)}")
    year = year or today().year
    start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
    existing = CareGap.objects.filter(
        patient=patient, measure_code=measure_code, period_start=start, period_end=end
    ).first()
    if existing is not None:
        raise Conflict(f"This patient already has a {measure_code} gap for {year}: #{existing.pk}")
    definition, _ = pick_version(measure_code, year)
    step, days = NEXT_STEP[S.IDENTIFIED]
    gap = CareGap(
        organization_id=patient.organization_id,
        patient=patient,
        measure_code=measure_code,
        measure=sync_catalogue()[definition.key],
        period_start=start,
        period_end=end,
        primary_source=SourceKind.MANUAL,
        state=S.IDENTIFIED,
        state_changed_at=timezone.now(),
        next_step=step,
        next_step_due=today() + dt.timedelta(days=days),
        due_date=due_date or end,
        missing=missing[:200],
        measure_weight=MEASURE_WEIGHTS.get(measure_code, 1),
    )
    save_with_history(gap, actor=actor, reason=reason)
    save_with_history(
        GapSource(
            gap=gap,
            kind=SourceKind.MANUAL,
            name=actor.get_username()[:100],
            due_date=gap.due_date,
            missing=gap.missing,
            reported_at=timezone.now(),
        ),
        actor=actor,
        reason=reason,
    )
    events.publish(events.GAP_OPENED, gap=gap, actor=actor)
    return gap


@transaction.atomic
def start_review(gap: CareGap, *, actor, reason: str = "") -> CareGap:
    gap, _ = _begin(gap, "start_review", actor)
    if gap.state == S.NOT_A_GAP:
        _require(reason, "A reason to review a not-a-gap again")
        gap.not_a_gap_reason = ""
    return _finish(gap, S.IN_REVIEW, actor=actor, reason=reason or "Records review started")


@transaction.atomic
def validate_gap(gap: CareGap, *, actor, reason: str = "") -> CareGap:
    gap, _ = _begin(gap, "validate_gap", actor)
    return _finish(
        gap, S.VALIDATED, actor=actor, reason=reason or "Records reviewed: the service is still due"
    )


@transaction.atomic
def mark_not_a_gap(
    gap: CareGap,
    *,
    actor,
    not_a_gap_reason: str,
    reason: str,
    evidence_kind: str = "",
    service_date: dt.date | None = None,
    reference: str = "",
    attachment: UploadedFile | None = None,
) -> CareGap:
    """Done elsewhere (with the evidence), excluded, or a data error; nobody calls the patient."""
    gap, _ = _begin(gap, "mark_not_a_gap", actor)
    if not_a_gap_reason not in NotAGapReason.values:
        raise DomainError("Say why it is not a gap: done elsewhere, excluded or data error")
    reason = _require(reason, "A note on why it is not a gap")
    if not_a_gap_reason == NotAGapReason.DONE_ELSEWHERE:
        check_service_date(gap, service_date)
        add_evidence(
            gap,
            actor=actor,
            kind=evidence_kind or GapEvidence.Kind.OUTSIDE_RECORD,
            service_date=service_date,
            reference=reference,
            attachment=attachment,
            reason=reason,
        )
    elif reference or attachment is not None:
        add_evidence(
            gap,
            actor=actor,
            kind=evidence_kind or GapEvidence.Kind.OUTSIDE_RECORD,
            service_date=service_date,
            reference=reference,
            attachment=attachment,
            reason=reason,
        )
    gap.not_a_gap_reason = not_a_gap_reason
    return _finish(
        gap,
        S.NOT_A_GAP,
        actor=actor,
        reason=f"Not a gap ({NotAGapReason(not_a_gap_reason).label}): {reason}",
    )


@transaction.atomic
def record_outreach_started(
    gap: CareGap,
    *,
    actor,
    channel: str,
    next_attempt_on: dt.date | None = None,
    reason: str = "",
) -> CareGap:
    """Outreach on a named channel, which the contact policy must permit (time of day aside: a
    planned send waits for allowed hours). outreach.services.start_outreach is the caller that
    also plans the contact and sends a patient nobody may contact to review instead."""
    from consent.models import Channel, ContentClass
    from consent.policy import TIME_REASONS, ContactRefused, check_contact

    gap, _ = _begin(gap, "record_outreach_started", actor)
    if channel not in Channel.values:
        raise DomainError(f"Name the channel: one of {', '.join(Channel.values)}")
    if next_attempt_on is not None and next_attempt_on < today():
        raise DomainError("The next attempt cannot be in the past")
    decision = check_contact(
        gap.patient, channel=channel, content_class=ContentClass.GENERAL, at=timezone.now()
    )
    refused = [code for code in decision.reasons if code not in TIME_REASONS]
    if refused:
        raise ContactRefused(
            f"The patient may not be contacted by {Channel(channel).label.lower()}: "
            + " ".join(message for code, message in decision.reason_pairs if code in refused),
            refused,
        )
    return _finish(
        gap,
        S.OUTREACH,
        actor=actor,
        due=next_attempt_on,
        reason=reason or f"Outreach started ({Channel(channel).label.lower()})",
    )


def set_next_attempt(gap: CareGap, *, actor, due: dt.date, reason: str) -> CareGap:
    """A gap in outreach keeps its state; its next attempt gets a new due date (after a contact)."""
    with transaction.atomic():
        locked = CareGap.objects.select_for_update().get(pk=gap.pk)
        require_organization_access(actor, locked.organization_id, what="this gap")
        if locked.state != S.OUTREACH:
            raise Conflict(f"The gap is {locked.get_state_display().lower()}, not in outreach")
        locked.next_step = NextStep.NEXT_ATTEMPT
        locked.next_step_due = due
        save_with_history(
            locked, actor=actor, reason=reason, update_fields=["next_step", "next_step_due"]
        )
        # The outreach work item takes the new due date (same state: previous = current).
        events.publish(
            events.GAP_TRANSITIONED,
            gap=locked,
            previous_state=S.OUTREACH,
            actor=actor,
            reason=reason,
        )
        return locked


BOOKING_HORIZON_DAYS = 731


@transaction.atomic
def mark_scheduled(gap: CareGap, *, actor, appointment_on: dt.date, reason: str = "") -> CareGap:
    gap, _ = _begin(gap, "mark_scheduled", actor)
    if appointment_on is None:
        raise DomainError("The appointment date is required")
    if appointment_on < today():
        raise DomainError("The appointment cannot be in the past")
    if appointment_on > today() + dt.timedelta(days=BOOKING_HORIZON_DAYS):
        # 9999-12-31 is a placeholder, not a booking: it would park the gap for good.
        raise DomainError(
            f"An appointment on {appointment_on} is more than two years ahead; check the date"
        )
    gap.scheduled_for = appointment_on
    return _finish(
        gap,
        S.SCHEDULED,
        actor=actor,
        due=appointment_on,
        reason=reason or f"Appointment booked for {appointment_on}",
    )


@transaction.atomic
def mark_completed(
    gap: CareGap, *, actor, completed_on: dt.date | None = None, reason: str = ""
) -> CareGap:
    gap, _ = _begin(gap, "mark_completed", actor)
    completed_on = completed_on or today()
    if completed_on > today():
        raise DomainError("The service cannot be completed in the future")
    if gap.scheduled_for is not None and completed_on < gap.scheduled_for:
        raise DomainError(
            f"The appointment is on {gap.scheduled_for}: the service cannot be done before it"
        )
    gap.completed_on = completed_on
    return _finish(
        gap,
        S.COMPLETED,
        actor=actor,
        due=completed_on + dt.timedelta(days=DOCUMENTATION_DAYS),
        reason=reason or "Service done; waiting for the documentation",
    )


@transaction.atomic
def close_gap(
    gap: CareGap,
    *,
    actor,
    service_date: dt.date,
    evidence_kind: str,
    reference: str = "",
    attachment: UploadedFile | None = None,
    reason: str = "",
    systolic_bp: int | None = None,
    diastolic_bp: int | None = None,
    hba1c_percent: Decimal | None = None,
) -> CareGap:
    """Closure with evidence (and the result value where the measure is one); refused with the
    reason when the date or the value does not count."""
    gap, _ = _begin(gap, "close_gap", actor)
    if evidence_kind in ("", None):
        raise DomainError("The evidence type is required to close a gap")
    if evidence_kind == GapEvidence.Kind.ENGINE_RESOURCE:
        raise DomainError("Engine evidence is recorded by the engine, not by hand")
    check_service_date(gap, service_date)
    result_values = check_result(
        gap, systolic_bp=systolic_bp, diastolic_bp=diastolic_bp, hba1c_percent=hba1c_percent
    )
    add_evidence(
        gap,
        actor=actor,
        kind=evidence_kind,
        service_date=service_date,
        reference=reference,
        attachment=attachment,
        reason="Closure evidence",
        result_values=result_values,
    )
    gap.closed_at = timezone.now()
    gap.closed_by_engine = False
    gap.needs_coordination = False
    gap.coordination_due = None
    return _finish(
        gap,
        S.CLOSED,
        actor=actor,
        reason=reason or f"Closed: {GapEvidence.Kind(evidence_kind).label} of {service_date}",
    )


@transaction.atomic
def flag_for_review(gap: CareGap, *, actor, reason: str) -> CareGap:
    gap, _ = _begin(gap, "flag_for_review", actor)
    reason = _require(reason, "A reason for the coordinator")
    return _finish(gap, S.NEEDS_REVIEW, actor=actor, reason=reason)


@transaction.atomic
def mark_declined(gap: CareGap, *, actor, reason: str) -> CareGap:
    gap, _ = _begin(gap, "mark_declined", actor)
    reason = _require(reason, "What the patient said")
    return _finish(gap, S.DECLINED, actor=actor, reason=f"Declined: {reason}")


@transaction.atomic
def mark_unreachable(gap: CareGap, *, actor, reason: str) -> CareGap:
    gap, _ = _begin(gap, "mark_unreachable", actor)
    reason = _require(reason, "Which attempts were made")
    return _finish(gap, S.UNREACHABLE, actor=actor, reason=f"Unreachable: {reason}")


@transaction.atomic
def reopen_after_no_show(
    gap: CareGap, *, actor, next_attempt_on: dt.date | None = None, reason: str = ""
) -> CareGap:
    gap, _ = _begin(gap, "reopen_after_no_show", actor)
    gap.scheduled_for = None
    # Recovery outreach is due within 24 hours of the missed visit (domain.md 4).
    return _finish(
        gap,
        S.OUTREACH,
        actor=actor,
        due=next_attempt_on or today() + dt.timedelta(days=1),
        reason=reason or "No-show: back to outreach",
    )


SERVICES = {
    "start_review": start_review,
    "validate_gap": validate_gap,
    "mark_not_a_gap": mark_not_a_gap,
    "record_outreach_started": record_outreach_started,
    "mark_scheduled": mark_scheduled,
    "mark_completed": mark_completed,
    "close_gap": close_gap,
    "flag_for_review": flag_for_review,
    "mark_declined": mark_declined,
    "mark_unreachable": mark_unreachable,
    "reopen_after_no_show": reopen_after_no_show,
}
