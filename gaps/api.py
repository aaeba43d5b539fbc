"""API: import a FHIR Bundle, and `$care-gaps`-style DEQM gaps-in-care reports."""

from __future__ import annotations

import datetime as dt

from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import AccessLog
from audit.services import log_access
from gaps.export import deqm_bundles
from gaps.models import MeasureResult
from gaps.selectors import measure_results_for
from patients.clinical import ImportRun
from patients.fhir.importer import import_documents
from patients.models import Patient
from patients.selectors import organizations_for


class HasModelPerm(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.user.is_authenticated and request.user.has_perm(view.required_perm)


def _organization(request, slug: str | None):
    if not slug:
        return None
    return organizations_for(request.user).filter(slug=slug).first()


class ImportBundleView(APIView):
    """POST a Bundle (JSON body) to `fhir/import?organization=SLUG`; all-or-nothing."""

    permission_classes = [HasModelPerm]
    required_perm = "patients.add_importrun"

    def post(self, request):
        organization = _organization(request, request.query_params.get("organization"))
        if organization is None:
            return Response({"detail": "No such organization"}, status=status.HTTP_404_NOT_FOUND)
        # The body as sent, not DRF's parse of it: the importer's own loader refuses what
        # json.loads accepts but the import cannot store (NaN, NUL, deep nesting), and the run
        # records the hash of the bytes received.
        raw = request.body
        run = import_documents(
            [("request body", raw)], organization=organization, actor=request.user, source="api"
        )
        body = {"import_run": run.pk, "status": run.status, "counts": run.counts}
        if run.status == ImportRun.Status.FAILED:
            body["errors"] = run.report.splitlines()
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response(body, status=status.HTTP_201_CREATED)


class CareGapsView(APIView):
    """GET `care-gaps?organization=SLUG&periodStart=...&periodEnd=...[&status=open-gap]`.

    Returns a FHIR Parameters resource with one DEQM gaps-in-care Bundle per patient, in the
    spirit of the Da Vinci DEQM `$care-gaps` operation.
    """

    permission_classes = [HasModelPerm]
    required_perm = "gaps.view_measureresult"

    def get(self, request):
        params = request.query_params
        organization = _organization(request, params.get("organization"))
        if organization is None:
            return Response({"detail": "No such organization"}, status=status.HTTP_404_NOT_FOUND)
        try:
            start = dt.date.fromisoformat(params.get("periodStart", ""))
            end = dt.date.fromisoformat(params.get("periodEnd", ""))
        except ValueError:
            return Response(
                {"detail": "periodStart and periodEnd are required dates (YYYY-MM-DD)"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        results = measure_results_for(request.user).filter(
            organization=organization, period_start=start, period_end=end
        )
        if start > end:
            return Response(
                {"detail": "periodStart is after periodEnd"}, status=status.HTTP_400_BAD_REQUEST
            )
        if params.get("status"):
            if params["status"] not in MeasureResult.GapStatus.values:
                # An unknown status used to filter everything out: an empty answer that looked
                # like "no gaps".
                return Response(
                    {"detail": f"status is one of {', '.join(MeasureResult.GapStatus.values)}"},
                    status=status.HTTP_400_BAD_REQUEST,
                )
            results = results.filter(gap_status=params["status"])
        results = list(results.order_by("patient_id", "measure__cms"))
        bundles = list(deqm_bundles(results, organization))
        patients = Patient.objects.filter(pk__in={r.patient_id for r in results}).only(
            "id", "organization_id"
        )
        log_access(request, patients, action=AccessLog.Action.EXPORT, channel=AccessLog.Channel.API)
        return Response(
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "return", "resource": b} for b in bundles],
            }
        )
