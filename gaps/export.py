"""Exports of measure results: the gap CSV and DEQM gaps-in-care document Bundles."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet
from django.utils import timezone

from carehub import csvsafe
from gaps.models import MeasureResult
from patients.models import Organization

CSV_COLUMNS = [
    "patient_id",
    "mrn",
    "cms",
    "measure_version",
    "status",
    "ip",
    "denom",
    "denex",
    "numer",
    "evidence",
]
DEQM = "http://hl7.org/fhir/us/davinci-deqm"
GAP_STATUS_URL = f"{DEQM}/StructureDefinition/extension-gapStatus"
GAP_STATUS_SYSTEM = f"{DEQM}/CodeSystem/gaps-status"
CMS_MEASURE_URL = "https://madie.cms.gov/Measure/{cms}FHIR"


def results_for(organization: Organization, start: dt.date, end: dt.date) -> QuerySet:
    return (
        MeasureResult.objects.filter(organization=organization, period_start=start, period_end=end)
        .select_related("patient", "measure")
        .order_by("patient__source_id", "patient_id", "measure__cms", "measure__version")
    )


def _evidence_text(evidence: list[dict]) -> str:
    parts = []
    for item in evidence:
        text = item.get("criterion", "")
        if item.get("resource"):
            text += f" {item['resource']}"
        if item.get("date"):
            text += f" {item['date']}"
        parts.append(text.strip())
    return "; ".join(parts)


def csv_rows(results: Iterable[MeasureResult]) -> Iterator[list[str]]:
    yield CSV_COLUMNS
    for r in results:
        yield [
            r.patient.source_id,
            r.patient.mrn,
            r.measure.cms,
            r.measure.version,
            r.status,
            str(int(r.ip)),
            str(int(r.denom)),
            str(int(r.denex)),
            str(int(r.numer)),
            _evidence_text(r.evidence),
        ]


def write_csv(results: Iterable[MeasureResult], out) -> int:
    writer = csvsafe.writer(out, lineterminator="\n")
    count = -1
    for row in csv_rows(results):
        writer.writerow(row)
        count += 1
    return count


def _population(code: str, value: bool) -> dict:
    return {
        "code": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/measure-population",
                    "code": code,
                }
            ]
        },
        "count": int(value),
    }


def deqm_bundles(results: Iterable[MeasureResult], organization: Organization) -> Iterator[dict]:
    """One gaps-in-care document Bundle per patient (structure of the DEQM STU5 examples)."""
    by_patient: dict[int, list[MeasureResult]] = {}
    for r in results:
        by_patient.setdefault(r.patient_id, []).append(r)
    now = timezone.now().isoformat()
    for rows in by_patient.values():
        patient = rows[0].patient
        patient_ref = f"Patient/{patient.source_id or patient.pk}"
        org_id = f"org-{organization.pk}"
        entries, sections = [], []
        patient_resource = {
            "resourceType": "Patient",
            "id": patient.source_id or str(patient.pk),
            "identifier": [{"system": "urn:carehub:mrn", "value": patient.mrn}],
            "gender": patient.sex,
            "birthDate": patient.birth_date.isoformat(),
        }
        organization_resource = {
            "resourceType": "Organization",
            "id": org_id,
            "name": organization.name,
        }
        for r in rows:
            report_id = f"mr-{r.pk}"
            issue_id = f"di-{r.pk}"
            measure_url = CMS_MEASURE_URL.format(cms=r.measure.cms)
            report = {
                "resourceType": "MeasureReport",
                "id": report_id,
                "status": "complete",
                "type": "individual",
                "measure": f"{measure_url}|{r.measure.version}",
                "subject": {"reference": patient_ref},
                "date": now,
                "reporter": {"reference": f"Organization/{org_id}"},
                "period": {"start": r.period_start.isoformat(), "end": r.period_end.isoformat()},
                "improvementNotation": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation",
                            "code": "decrease" if r.measure.inverse else "increase",
                        }
                    ]
                },
                "group": [
                    {
                        "population": [
                            _population("initial-population", r.ip),
                            _population("denominator", r.denom),
                            _population("denominator-exclusion", r.denex),
                            _population("numerator", r.numer),
                        ]
                    }
                ],
            }
            issue = {
                "resourceType": "DetectedIssue",
                "id": issue_id,
                "modifierExtension": [
                    {
                        "url": GAP_STATUS_URL,
                        "valueCodeableConcept": {
                            "coding": [{"system": GAP_STATUS_SYSTEM, "code": r.gap_status}]
                        },
                    }
                ],
                "status": "final",
                "code": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                            "code": "CAREGAP",
                            "display": "Care Gaps",
                        }
                    ]
                },
                "patient": {"reference": patient_ref},
                "evidence": [{"detail": [{"reference": f"MeasureReport/{report_id}"}]}],
            }
            entries += [report, issue]
            sections.append(
                {
                    "title": f"{r.measure.cms} {r.measure.version}",
                    "focus": {"reference": f"MeasureReport/{report_id}"},
                    "entry": [{"reference": f"DetectedIssue/{issue_id}"}],
                }
            )
        composition = {
            "resourceType": "Composition",
            "id": f"gaps-{patient.pk}",
            "status": "final",
            "type": {
                "coding": [
                    {
                        "system": "http://loinc.org",
                        "code": "96315-7",
                        "display": "Gaps in care report",
                    }
                ]
            },
            "subject": {"reference": patient_ref},
            "date": now,
            "author": [{"reference": f"Organization/{org_id}"}],
            "title": "Gaps in Care Report",
            "section": sections,
        }
        resources = [composition, patient_resource, organization_resource, *entries]
        yield {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
            "type": "document",
            "timestamp": now,
            "entry": [
                {
                    "fullUrl": f"http://carehub.local/fhir/{res['resourceType']}/{res['id']}",
                    "resource": res,
                }
                for res in resources
            ],
        }


def write_deqm(results, organization, out) -> int:
    import json

    bundles = list(deqm_bundles(results, organization))
    json.dump(
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "return", "resource": b} for b in bundles],
        },
        out,
        indent=1,
    )
    return len(bundles)


def to_text(fn, *args) -> str:
    buffer = io.StringIO()
    fn(*args, buffer)
    return buffer.getvalue()
