"""Auditors read everything in their organizations and change nothing."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import reverse

from carehub import roles

pytestmark = pytest.mark.django_db

# Reading that leaves the system: a PHI export is logged like any read.
READ_LIKE = {"export_patient"}


def test_the_auditor_role_holds_view_permissions_only():
    codenames = set(
        Group.objects.get(name=roles.AUDITOR).permissions.values_list("codename", flat=True)
    )
    assert codenames, "the auditor role has no permissions at all"
    assert {c for c in codenames if not c.startswith("view_")} <= READ_LIKE
    for needed in ("view_accesslog", "view_patienttimeline", "view_useractivity", "view_seal"):
        assert needed in codenames


def test_the_auditor_opens_every_list_of_the_admin_they_may_view(client, auditor_a, patient_a):
    client.force_login(auditor_a)
    opened = []
    for model, model_admin in admin.site._registry.items():
        if not model_admin.has_view_permission(_request(auditor_a)):
            continue
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = client.get(url)
        assert response.status_code == 200, url
        opened.append(opts.label_lower)
    assert {"audit.accesslog", "audit.patienttimeline", "patients.patient", "gaps.caregap"} <= set(
        opened
    )


def test_the_auditor_cannot_change_a_patient(client, auditor_a, patient_a):
    client.force_login(auditor_a)
    url = reverse("admin:patients_patient_change", args=[patient_a.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    response = client.post(url, {"given_name": "Forged", "change_reason": "x"})
    assert response.status_code == 403
    patient_a.refresh_from_db()
    assert patient_a.given_name != "Forged"


def test_the_auditor_cannot_delete_or_add_in_the_audit_screens(client, auditor_a, patient_a):
    client.force_login(auditor_a)
    for name in ("accesslog", "patienttimeline", "useractivity", "seal"):
        assert client.get(reverse(f"admin:audit_{name}_add")).status_code == 403


def _request(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request
