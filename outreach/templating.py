"""Message templates: the content-class check, the fields a body may use, rendering, preview.

A general template goes by text, e-mail, voice or letter, where anyone may read it over the
patient's shoulder; it may not name a measure, condition, test, result or medication (domain.md
3.2). The check is a word list, not understanding: it errs on the side of refusing, and it names
every word it found so the author can rephrase ("a health screening") or make the template
clinical (portal only).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from carehub.errors import DomainError
from consent.models import Channel, ContentClass

FIELDS = {
    "patient_first_name": "Maria",
    "practice_name": "Riverside Family Practice",
    "practice_phone": "+1 617 555 0100",
    "appointment_time": "Tuesday 3 March, 10:30",
    "site_name": "Riverside Main Clinic",
    "provider_name": "Dr. Chen",
    "preferences_link": "https://carehub.example.org/preferences/…/",
}
_FIELD = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")

# Names of measures, conditions, tests, results and medications that a general message must not
# carry. Phrases are matched as whole words, case-insensitively.
# Abbreviations match only as written ("FIT" the test, not "fit you in").
CLINICAL_ACRONYMS = (
    r"CMS\d+",
    "HEDIS",
    "COL",
    "BCS",
    "CCS",
    "HBD",
    "CBP",
    "CIS",
    "FIT",
    "FOBT",
    "HPV",
    "HIV",
    "COPD",
    "MRI",
    "CT",
    "A1c",
    "HbA1c",
    "A1C",
)
CLINICAL_TERMS = (
    # conditions
    "cancer",
    "colorectal",
    "colon",
    "breast",
    "cervical",
    "cervix",
    "diabetes",
    "diabetic",
    "hypertension",
    "high blood pressure",
    "blood pressure",
    "cholesterol",
    "depression",
    "hepatitis",
    "asthma",
    "obesity",
    "pregnancy",
    "pregnant",
    "tumor",
    "polyp",
    "polyps",
    # tests and procedures
    "colonoscopy",
    "sigmoidoscopy",
    "mammogram",
    "mammography",
    "pap smear",
    "pap test",
    "stool test",
    "Cologuard",
    "hemoglobin",
    "glucose",
    "biopsy",
    "lab test",
    "lab work",
    "blood test",
    "blood work",
    "x-ray",
    "ultrasound",
    "immunization",
    "immunizations",
    "vaccine",
    "vaccines",
    "vaccination",
    # results
    "result",
    "results",
    "positive",
    "negative",
    "abnormal",
    "elevated",
    "diagnosis",
    "diagnosed",
    # medications
    "medication",
    "medications",
    "medicine",
    "prescription",
    "prescriptions",
    "refill",
    "insulin",
    "metformin",
    "statin",
    "statins",
    "dose",
)


def _pattern(terms, flags=0) -> re.Pattern:
    alternatives = "|".join(t if "\\" in t else re.escape(t) for t in terms)
    return re.compile(rf"(?<![A-Za-z0-9])({alternatives})(?![A-Za-z0-9])", flags)


_CLINICAL = (_pattern(CLINICAL_TERMS, re.IGNORECASE), _pattern(CLINICAL_ACRONYMS))


class TemplateRefused(DomainError):
    pass


def clinical_words(*texts: str) -> list[str]:
    """The clinical words found in the texts, each once, in the order they appear."""
    found: list[str] = []
    matches = []
    for position, text in enumerate(texts):
        for pattern in _CLINICAL:
            matches += [(position, m.start(), m.group(1)) for m in pattern.finditer(text or "")]
    for _, _, word in sorted(matches):
        if word.lower() not in (w.lower() for w in found):
            found.append(word)
    return found


def check_template(*, channel: str, content_class: str, subject: str, body: str) -> None:
    """Refuse a template that would break the contact policy or cannot be rendered."""
    if content_class == ContentClass.CLINICAL and channel != Channel.PORTAL:
        raise TemplateRefused(
            "Clinical content may only go through the patient portal; choose the portal channel "
            "or make the template general"
        )
    unknown = sorted(set(_FIELD.findall(f"{subject}\n{body}")) - set(FIELDS))
    if unknown:
        raise TemplateRefused(
            f"Unknown field(s) {', '.join(unknown)}; available: {', '.join(FIELDS)}"
        )
    if content_class == ContentClass.GENERAL:
        words = clinical_words(subject, body)
        if words:
            quoted = ", ".join(f"'{word}'" for word in words)
            raise TemplateRefused(
                f"A general template may not name a measure, condition, test, result or "
                f"medication; it says {quoted}. Rephrase it (e.g. 'a health screening') or make "
                f"it clinical (portal only)."
            )


def render(text: str, values: Mapping[str, str]) -> str:
    return _FIELD.sub(lambda match: str(values.get(match.group(1), "")), text or "")


def preview(subject: str, body: str) -> tuple[str, str]:
    """The template filled with sample values (no patient's data)."""
    return render(subject, FIELDS), render(body, FIELDS)
