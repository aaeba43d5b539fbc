"""The patient's self-service preferences page: no login, one patient, signed expiring link.

It shows no clinical detail and no name (whoever holds the link sees only the organization, the
last digits of the phone and a masked e-mail), works without JavaScript, and is never cached.
The token is in the path, so the page sends a Referer only to CareHub itself ("same-origin";
"no-referrer" would make the browser send `Origin: null` and fail the CSRF check).
"""

from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from carehub.errors import DomainError
from consent.forms import SelfServiceForm
from consent.links import LinkExpired, LinkInvalid, resolve_self_service_link
from consent.models import Consent, ContactPreference
from consent.services import record_self_service_changes
from patients.phones import mask_phone


def _mask_email(email: str) -> str:
    if "@" not in email:
        return ""
    local, domain = email.split("@", 1)
    return f"{local[:1]}•••@{domain}"


def _private(response):
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def self_service_preferences(request, token: str):
    try:
        link = resolve_self_service_link(token)
    except LinkExpired:
        return _private(
            render(request, "consent/link_unusable.html", {"expired": True}, status=410)
        )
    except LinkInvalid:
        return _private(
            render(request, "consent/link_unusable.html", {"expired": False}, status=404)
        )
    patient = link.patient
    preference = ContactPreference.objects.filter(patient_id=patient.pk).first()
    now = timezone.now()
    in_force = {c.kind for c in Consent.objects.filter(patient_id=patient.pk) if c.in_force(now)}
    initial = {
        **SelfServiceForm.initial_from(preference),
        "sms_consent": Consent.Kind.SMS_TCPA in in_force,
        "email_consent": Consent.Kind.EMAIL in in_force,
    }
    form = SelfServiceForm(request.POST if request.method == "POST" else None, initial=initial)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            record_self_service_changes(
                link, consents=form.consent_choices(), **form.preference_changes(preference)
            )
        except DomainError as problem:
            error = str(problem)
        else:
            return redirect(f"{request.path}?saved=1")
    context = {
        "form": form,
        "error": error,
        "saved": request.GET.get("saved") == "1" and request.method == "GET",
        "organization": patient.organization.name,
        "phone": mask_phone(patient.phone),
        "email": _mask_email(patient.email),
        "expires_at": link.expires_at,
    }
    return _private(render(request, "consent/self_service.html", context))
