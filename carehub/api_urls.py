from django.urls import path
from rest_framework.routers import DefaultRouter

from gaps.api import CareGapsView, ImportBundleView
from patients.api import PatientViewSet

router = DefaultRouter()
router.register("patients", PatientViewSet, basename="patient")

urlpatterns = [
    *router.urls,
    # FHIR Bundle import and the $care-gaps-style DEQM report.
    path("fhir/import", ImportBundleView.as_view(), name="fhir-import"),
    path("care-gaps", CareGapsView.as_view(), name="care-gaps"),
]
