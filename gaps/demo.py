"""Demo care gaps for `manage.py seed_demo`: deterministic, spread over the whole lifecycle.

Gaps are created for the measures each demo patient's age and sex make them due for, as the
engine and a payer list would report them, and placed in every workflow state so each screen
and filter has something to show. (Demo patients have no clinical records, so the engine itself
has nothing to evaluate.)
"""

import datetime as dt
import random

from django.utils import timezone

from carehub.history import bulk_create_with_history, bulk_update_with_history, get_system_user
from gaps.care_gaps import CareGap, GapEvidence, GapSource, GapState, SourceKind
from gaps.measures import MEASURE_WEIGHTS, pick_version
from gaps.services import sync_catalogue
from gaps.workflow import NEXT_STEP
from patients.models import Organization, Patient

REASON = "demo data (seed_demo)"
SEED = 4_2026
STATES = [
    (GapState.IDENTIFIED, 35),
    (GapState.IN_REVIEW, 12),
    (GapState.VALIDATED, 10),
    (GapState.OUTREACH, 15),
    (GapState.SCHEDULED, 7),
    (GapState.COMPLETED, 5),
    (GapState.CLOSED, 6),
    (GapState.NOT_A_GAP, 3),
    (GapState.NEEDS_REVIEW, 3),
    (GapState.DECLINED, 2),
    (GapState.UNREACHABLE, 2),
]

S = GapState
_TO_OUTREACH = [S.IN_REVIEW, S.VALIDATED, S.OUTREACH]
# The steps a gap took to reach its demo state, so its history (and so the supervisor's funnel
# and rates, which count transitions) reads like a gap worked through the workflow.
PATH = {
    S.IDENTIFIED: [],
    S.IN_REVIEW: [S.IN_REVIEW],
    S.VALIDATED: [S.IN_REVIEW, S.VALIDATED],
    S.OUTREACH: _TO_OUTREACH,
    S.SCHEDULED: [*_TO_OUTREACH, S.SCHEDULED],
    S.COMPLETED: [*_TO_OUTREACH, S.SCHEDULED, S.COMPLETED],
    S.CLOSED: [*_TO_OUTREACH, S.SCHEDULED, S.COMPLETED, S.CLOSED],
    S.NOT_A_GAP: [S.IN_REVIEW, S.NOT_A_GAP],
    S.NEEDS_REVIEW: [S.NEEDS_REVIEW],
    S.DECLINED: [*_TO_OUTREACH, S.DECLINED],
    S.UNREACHABLE: [*_TO_OUTREACH, S.UNREACHABLE],
}
# What a step sets; the last step restores the demo state's own values.
STEP_FIELDS = (
    "state",
    "next_step",
    "next_step_due",
    "scheduled_for",
    "completed_on",
    "closed_at",
    "not_a_gap_reason",
)


def _walk_to_final_states(gaps: list[CareGap], *, actor, today: dt.date) -> None:
    """Create the gaps identified, then move them step by step (one history row per step)."""
    final = {id(gap): {f: getattr(gap, f) for f in STEP_FIELDS} for gap in gaps}
    for gap in gaps:
        gap.state = S.IDENTIFIED
        gap.next_step, gap.next_step_due = NEXT_STEP[S.IDENTIFIED][0], today
        gap.scheduled_for = gap.completed_on = gap.closed_at = None
        gap.not_a_gap_reason = ""
    bulk_create_with_history(gaps, actor=actor, reason=REASON)
    depth = 0
    while moving := [g for g in gaps if len(PATH[final[id(g)]["state"]]) > depth]:
        for gap in moving:
            path = PATH[final[id(gap)]["state"]]
            if depth == len(path) - 1:
                for field, value in final[id(gap)].items():
                    setattr(gap, field, value)
            else:
                gap.state = path[depth]
                gap.next_step, gap.next_step_due = NEXT_STEP[path[depth]][0], today
        bulk_update_with_history(moving, STEP_FIELDS, actor=actor, reason=REASON)
        depth += 1


def _due_measures(patient: Patient, year: int, rng: random.Random) -> list[str]:
    age = year - patient.birth_date.year
    found = []
    if 46 <= age <= 75:
        found.append("CMS130")
    if patient.sex == Patient.Sex.FEMALE and 52 <= age <= 74:
        found.append("CMS125")
    if patient.sex == Patient.Sex.FEMALE and 24 <= age <= 64 and rng.random() < 0.5:
        found.append("CMS124")
    if 18 <= age <= 75 and rng.random() < 0.15:
        found.append("CMS122")
    if 18 <= age <= 85 and rng.random() < 0.3:
        found.append("CMS165")
    if age >= 65 and rng.random() < 0.6:
        found.append("AWV")
    return found


# States that mean somebody contacted the patient.
CONTACTED = frozenset(
    {
        GapState.OUTREACH,
        GapState.SCHEDULED,
        GapState.COMPLETED,
        GapState.DECLINED,
        GapState.UNREACHABLE,
    }
)


def uncontactable_patients(patients) -> set[int]:
    """Patients no channel may reach with general content (the time of day aside)."""
    from consent.models import Channel, ContentClass
    from consent.policy import TIME_REASONS, check_contacts

    noon = timezone.now().replace(hour=17, minute=0, second=0, microsecond=0)  # midday in the US
    reachable: set[int] = set()
    for channel in Channel.values:
        decisions = check_contacts(
            patients, channel=channel, content_class=ContentClass.GENERAL, at=noon
        )
        reachable |= {pk for pk, d in decisions.items() if not set(d.reasons) - TIME_REASONS}
    return set(patients.values_list("pk", flat=True)) - reachable


def seed_demo_gaps(organizations: list[Organization], *, year: int | None = None) -> int:
    actor = get_system_user()
    rng = random.Random(SEED)
    now = timezone.now()
    today = timezone.localdate()
    year = year or today.year
    start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
    catalogue = sync_catalogue()
    states, weights = zip(*STATES, strict=True)
    gaps, list_reported = [], []
    patients = Patient.objects.filter(organization__in=organizations, status="active")
    unreachable = uncontactable_patients(patients)
    for patient in patients.order_by("pk"):
        for code in _due_measures(patient, year, rng):
            state = rng.choices(states, weights)[0]
            if state in CONTACTED and patient.pk in unreachable:
                # Nobody may contact this patient (do-not-contact, portal-only without the
                # portal, no channel): their gap waits for a coordinator, as the policy says.
                state = GapState.NEEDS_REVIEW
            definition, _ = pick_version(code, year)
            gap = CareGap(
                organization_id=patient.organization_id,
                patient=patient,
                measure_code=code,
                measure=catalogue[definition.key],
                period_start=start,
                period_end=end,
                primary_source=SourceKind.ENGINE,
                state=state,
                state_changed_at=now,
                due_date=end,
                measure_weight=MEASURE_WEIGHTS.get(code, 1),
            )
            if state in NEXT_STEP:
                gap.next_step = NEXT_STEP[state][0]
                gap.next_step_due = today + dt.timedelta(days=rng.randint(-10, 20))
            if state == GapState.SCHEDULED:
                gap.scheduled_for = gap.next_step_due = today + dt.timedelta(rng.randint(1, 30))
            if state == GapState.COMPLETED:
                gap.completed_on = today - dt.timedelta(days=rng.randint(1, 25))
                gap.next_step_due = gap.completed_on + dt.timedelta(days=14)
            if state == GapState.CLOSED:
                gap.closed_at = now
            if state == GapState.NOT_A_GAP:
                gap.not_a_gap_reason = rng.choice(["done_elsewhere", "excluded", "data_error"])
            gaps.append(gap)
            if rng.random() < 0.3:
                list_reported.append(gap)
    _walk_to_final_states(gaps, actor=actor, today=today)
    sources = [
        GapSource(gap=g, kind=SourceKind.ENGINE, name="engine", due_date=end, reported_at=now)
        for g in gaps
    ]
    sources += [
        GapSource(
            gap=g,
            kind=SourceKind.PAYER_LIST,
            name="Blue Horizon MA",
            due_date=end,
            missing="screening not on file",
            reported_at=now,
        )
        for g in list_reported
    ]
    bulk_create_with_history(sources, actor=actor, reason=REASON)
    evidence = [
        GapEvidence(
            organization_id=g.organization_id,
            gap=g,
            kind=GapEvidence.Kind.LAB_RESULT,
            service_date=today - dt.timedelta(30),
            reference=f"ACC-{g.patient_id:06d}-{g.measure_code}",
            added_by=actor,
            added_at=now,
        )
        for g in gaps
        if g.state == GapState.CLOSED
    ]
    bulk_create_with_history(evidence, actor=actor, reason=REASON)
    return len(gaps)
