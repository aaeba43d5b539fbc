from django.urls import path
from rest_framework.routers import DefaultRouter

from consent.api import ConsentsView, ContactDecisionsView, PreferencesView
from gaps.api import CareGapsView, ImportBundleView
from patients.api import PatientViewSet

router = DefaultRouter()
router.register("patients", PatientViewSet, basename="patient")

urlpatterns = [
    *router.urls,
    # FHIR Bundle import and the $care-gaps-style DEQM report.
    path("fhir/import", ImportBundleView.as_view(), name="fhir-import"),
    path("care-gaps", CareGapsView.as_view(), name="care-gaps"),
    path("patients/<int:patient_id>/consents/", ConsentsView.as_view(), name="patient-consents"),
    path(
        "patients/<int:patient_id>/preferences/",
        PreferencesView.as_view(),
        name="patient-preferences",
    ),
    path(
        "patients/<int:patient_id>/contact-decisions/",
        ContactDecisionsView.as_view(),
        name="patient-contact-decisions",
    ),
]
