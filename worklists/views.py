"""The agent's and the supervisor's screens in admin: My work, get next, the case page, queues.

Thin views: each reads through worklists.selectors and changes data only by calling a service
(worklists.services, gaps.workflow), turning a DomainError into a message on the same page.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessLog
from audit.services import log_access
from carehub.errors import DomainError
from consent.models import Channel, ContentClass
from consent.policy import check_all_channels
from gaps import workflow
from gaps.gap_admin import LABELS, TRANSITION_ROUTES, transition_form
from gaps.selectors import care_gaps_for
from patients.models import Patient
from worklists import selectors, services
from worklists.queues import workable_queues
from worklists.risk import explain

# The case page's actions, in the order an agent meets them; others stay on the gap page.
CASE_ACTIONS = (
    "start_review",
    "validate_gap",
    "record_outreach_started",
    "mark_scheduled",
    "mark_completed",
    "reopen_after_no_show",
    "close_gap",
    "flag_for_review",
    "mark_declined",
)
CASE_LABELS = {
    **LABELS,
    "record_outreach_started": "Log call",
    "mark_scheduled": "Book",
    "mark_completed": "Confirm completion",
    "flag_for_review": "Escalate",
}


def _context(admin, request: HttpRequest, title: str, **extra) -> dict:
    return {
        **admin.admin_site.each_context(request),
        "opts": admin.model._meta,
        "title": title,
        **extra,
    }


def _require_view(request: HttpRequest) -> None:
    if not request.user.has_perm("worklists.view_workitem"):
        raise PermissionDenied


def my_work_view(admin, request: HttpRequest) -> HttpResponse:
    _require_view(request)
    items = list(selectors.my_open_work(request.user)[:200])
    queue_ids = list(workable_queues(request.user).values_list("pk", flat=True))
    log_access(request, items, action=AccessLog.Action.LIST)
    return TemplateResponse(
        request,
        "admin/worklists/my_work.html",
        _context(
            admin,
            request,
            "My work",
            items=items,
            counts=selectors.my_counts(request.user),
            waiting=selectors.waiting_in_my_queues(request.user, queue_ids),
            works_queues=bool(queue_ids),
            today=timezone.localdate(),
            now=timezone.now(),
        ),
    )


def get_next_view(admin, request: HttpRequest) -> HttpResponse:
    _require_view(request)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        item = services.get_next(request.user)
    except DomainError as error:
        messages.error(request, str(error))
        return redirect("admin:worklists_my_work")
    if item is None:
        messages.info(request, "Nothing is waiting in your queues right now.")
        return redirect("admin:worklists_my_work")
    return redirect("admin:worklists_case", item.patient_id)


def _decisions(patient: Patient) -> list[dict]:
    decisions = check_all_channels(patient, at=timezone.now())
    return [
        {"channel": channel, "decision": decisions[(channel.value, ContentClass.GENERAL)]}
        for channel in Channel
    ]


# Result fields belong to the measure whose numerator is a value; other gaps do not show them.
RESULT_FIELDS = {"systolic_bp": "CMS165", "diastolic_bp": "CMS165", "hba1c_percent": "CMS122"}


def _action(gap, service: str) -> tuple:
    """(service, label, form, needs_input): a step without required input is one click."""
    form = transition_form(service)(prefix=f"g{gap.pk}")
    for name, measure in RESULT_FIELDS.items():
        if name in form.fields and gap.measure_code != measure:
            del form.fields[name]
    needs_input = any(field.required for field in form.fields.values())
    return service, CASE_LABELS[service], form, needs_input


def case_view(admin, request: HttpRequest, patient_id: int) -> HttpResponse:
    _require_view(request)
    try:
        case = selectors.case_for(request.user, patient_id)
    except (Patient.DoesNotExist, ValueError):
        raise Http404("No such patient") from None
    user = request.user
    gap_actions = {
        gap.pk: [
            _action(gap, service)
            for service in CASE_ACTIONS
            if workflow.allowed_transition(gap, service, user) is not None
        ]
        for gap in case.gaps
    }
    windows = {gap.pk: workflow.window_for(gap) for gap in case.gaps}
    log_access(request, [case.patient], action=AccessLog.Action.VIEW)
    mine = [item for item in case.items if item.owner_id == user.pk]
    claimable = [item for item in case.items if item.owner_id is None]
    return TemplateResponse(
        request,
        "admin/worklists/case.html",
        _context(
            admin,
            request,
            f"Case: {case.patient.display_name}",
            case=case,
            patient=case.patient,
            risk_lines=explain(case.risk) if case.risk else [],
            gap_rows=[(gap, gap_actions[gap.pk], windows[gap.pk]) for gap in case.gaps],
            decisions=_decisions(case.patient),
            mine=mine,
            claimable=claimable,
            # Outreach's call log covers all the patient's gaps in one call (outcome, response,
            # next step, clinical concern, booking).
            may_log_call=user.has_perm("outreach.add_outreachattempt"),
            today=timezone.localdate(),
        ),
    )


def claim_case_view(admin, request: HttpRequest, patient_id: int) -> HttpResponse:
    _require_view(request)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    patient = _visible_patient(request, patient_id)
    try:
        taken = services.claim_patient(patient, actor=request.user)
    except DomainError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"You took {taken} item(s) of this patient.")
    return redirect("admin:worklists_case", patient.pk)


def _visible_patient(request: HttpRequest, patient_id: int) -> Patient:
    try:
        return selectors.patient_for(request.user, patient_id)
    except (Patient.DoesNotExist, ValueError):
        raise Http404("No such patient") from None


def case_action_view(
    admin, request: HttpRequest, patient_id: int, gap_id: int, service: str
) -> HttpResponse:
    """One action on one of the patient's gaps, from the case page, through the gap service."""
    _require_view(request)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    patient = _visible_patient(request, patient_id)
    gap = care_gaps_for(request.user).filter(pk=gap_id, patient_id=patient.pk).first()
    if gap is None or service not in CASE_ACTIONS:
        raise Http404("No such action")
    if workflow.allowed_transition(gap, service, request.user) is None:
        messages.error(request, f"Gap #{gap.pk} cannot {CASE_LABELS[service].lower()} now.")
        return redirect("admin:worklists_case", patient.pk)
    form = transition_form(service)(request.POST, request.FILES or None, prefix=f"g{gap.pk}")
    if not form.is_valid():
        errors = "; ".join(
            f"{form.fields[name].label or name}: {' '.join(errs)}"
            if name in form.fields
            else " ".join(errs)
            for name, errs in form.errors.items()
        )
        messages.error(request, f"{CASE_LABELS[service]} — {errors}")
        return redirect("admin:worklists_case", patient.pk)
    # The same route the gap page takes (outreach starts outreach through the contact policy).
    make = TRANSITION_ROUTES.get(service, workflow.SERVICES[service])
    try:
        with transaction.atomic():  # the step and the claims it keeps alive, together
            result = make(gap, actor=request.user, **form.service_kwargs())
            services.touch_patient_work(patient, actor=request.user)
    except DomainError as error:
        messages.error(request, f"{CASE_LABELS[service]}: {error}")
    else:
        note = getattr(result, "message", "")
        messages.success(
            request, f"{gap.measure_code}: {CASE_LABELS[service].lower()} — {note or 'done'}."
        )
    return redirect("admin:worklists_case", patient.pk)


def supervise_view(admin, request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("worklists.assign_workitem"):
        raise PermissionDenied
    return TemplateResponse(
        request,
        "admin/worklists/supervise.html",
        _context(
            admin,
            request,
            "Queues",
            queues=selectors.queue_overview(request.user),
            buckets=[label for label, _, _ in selectors.AGING_BUCKETS],
            changelist=reverse("admin:worklists_workitem_changelist"),
        ),
    )


class AssignForm(forms.Form):
    owner = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="— nobody: back to the queue —"
    )
    reason = forms.CharField(max_length=100, help_text="Kept in each item's history.")

    def __init__(self, *args, users, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = users


def complete_item_view(admin, request: HttpRequest, patient_id: int, item_id: int) -> HttpResponse:
    """Done with an item that is not a gap step (a callback made, a check-in held)."""
    _require_view(request)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    patient = _visible_patient(request, patient_id)
    item = (
        selectors.work_items_for(request.user)
        .filter(pk=item_id, patient_id=patient.pk, gap__isnull=True)
        .first()
    )
    if item is None:
        raise Http404("No such work item")
    try:
        services.complete_item(
            item, actor=request.user, resolution=request.POST.get("resolution", "")
        )
    except DomainError as error:
        messages.error(request, f"{item.get_kind_display()}: {error}")
    else:
        messages.success(request, f"{item.get_kind_display()} — done.")
    return redirect("admin:worklists_case", patient.pk)
