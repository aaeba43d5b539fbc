"""The measure catalogue: CMS130, CMS125, CMS124, CMS122, CMS165, CMS117 (MP2025 and MP2026) and
our Annual Wellness Visit rule, written as data (see ../../../shared/spec/measures.md).
"""

from __future__ import annotations

from dataclasses import replace

from gaps.measures import oids as vs
from gaps.measures.base import (
    CPT,
    CVX,
    FINAL,
    HCPCS,
    ICD10PCS,
    LOINC,
    ORDER_FAMILY,
    SNOMED,
    Criterion,
    MeasureDefinition,
    RecordRules,
    code,
)

RULES_2025 = RecordRules(
    encounter_statuses=frozenset({"finished", "arrived", "triaged", "in-progress", "onleave"}),
    lab_needs_category=True,
    study_needs_imaging=False,
    assessment_needs_survey=True,
    medication_intents=frozenset({"order"}),
    medication_reference=False,
    device_intents=frozenset({"order"}),
    device_checks_do_not_perform=True,
    service_intents=frozenset({"order"}),
    verified_conditions=False,
    sex_from_extension=False,
)
RULES_2026 = RecordRules(
    encounter_statuses=frozenset({"finished"}),
    lab_needs_category=False,
    study_needs_imaging=True,
    assessment_needs_survey=False,
    medication_intents=ORDER_FAMILY,
    medication_reference=True,
    device_intents=ORDER_FAMILY,
    device_checks_do_not_perform=False,
    service_intents=ORDER_FAMILY,
    verified_conditions=True,
    sex_from_extension=True,
)
# CMS117 MP2026 pins Hospice 6.15 / Status 1.13: hospice orders must be exactly `order` and no
# condition is filtered on verificationStatus.
RULES_2026_CMS117 = replace(
    RULES_2026, service_intents=frozenset({"order"}), verified_conditions=False
)

CUTOFF = {"MP2025": "2025-03-31", "MP2026": None}

HOSPICE = Criterion(
    "hospice",
    {
        "inpatient_vs": vs.ENCOUNTER_INPATIENT,
        "discharge_codes": [code(SNOMED, "428361000124107"), code(SNOMED, "428371000124100")],
        "encounter_vs": vs.HOSPICE_ENCOUNTER,
        "assessment_vs": code(LOINC, "45755-6"),
        "yes_code": code(SNOMED, "373066001"),
        "order_vs": vs.HOSPICE_CARE_AMBULATORY,
        "diagnosis_vs": vs.HOSPICE_DIAGNOSIS,
    },
    "hospice",
)
PALLIATIVE = Criterion(
    "palliative",
    {
        "assessment_vs": code(LOINC, "71007-9"),
        "diagnosis_vs": vs.PALLIATIVE_DIAGNOSIS,
        "encounter_vs": vs.PALLIATIVE_ENCOUNTER,
        "procedure_vs": vs.PALLIATIVE_INTERVENTION,
    },
    "palliative care",
)
_FRAILTY = {
    "device_vs": vs.FRAILTY_DEVICE,
    "equipment_vs": code(LOINC, "98181-1"),
    "diagnosis_vs": vs.FRAILTY_DIAGNOSIS,
    "encounter_vs": vs.FRAILTY_ENCOUNTER,
    "symptom_vs": vs.FRAILTY_SYMPTOM,
    "illness_vs": vs.ADVANCED_ILLNESS,
    "dementia_vs": vs.DEMENTIA_MEDICATIONS,
}
FRAILTY_A = Criterion("frailty", {**_FRAILTY, "rule": "A"}, "advanced illness and frailty")
FRAILTY_B = Criterion("frailty", {**_FRAILTY, "rule": "B"}, "advanced illness and frailty")
NURSING_HOME = Criterion(
    "nursing_home",
    {"housing_vs": code(LOINC, "71802-3"), "nursing_home_code": code(SNOMED, "160734000")},
    "long-term nursing home",
)


def _versions(base: MeasureDefinition, **mp2026_changes) -> list[MeasureDefinition]:
    mp2025 = replace(base, version="MP2025", first_year=2025, valueset_cutoff=CUTOFF["MP2025"])
    changes = {"rules": RULES_2026, **mp2026_changes}
    mp2026 = replace(
        base, version="MP2026", first_year=2026, valueset_cutoff=CUTOFF["MP2026"], **changes
    )
    return [mp2025, mp2026]


def _lab(vss, years_back, label, **extra) -> Criterion:
    return Criterion("lab_result", {"vss": list(vss), "years_back": years_back, **extra}, label)


CMS130 = MeasureDefinition(
    cms="CMS130",
    version="",
    title="Colorectal Cancer Screening",
    first_year=0,
    inverse=False,
    rules=RULES_2025,
    age=(46, 75),
    female_only=False,
    encounters=vs.ADULT_OUTPATIENT,
    ip_criteria=(),
    exclusions=(
        HOSPICE,
        Criterion(
            "condition_starts_by_end",
            {"vs": vs.MALIGNANT_NEOPLASM_COLON, "instant": False},
            "colorectal cancer",
        ),
        Criterion(
            "procedure_ends_by_end", {"vs": vs.TOTAL_COLECTOMY, "instant": False}, "colectomy"
        ),
        FRAILTY_A,
        NURSING_HOME,
        PALLIATIVE,
    ),
    numerator=Criterion(
        "any_of",
        {
            "alternatives": [
                _lab([vs.FOBT], 0, "FOBT"),
                _lab([vs.SDNA_FIT], 2, "FIT-DNA"),
                Criterion(
                    "procedure_end_within",
                    {"vs": vs.FLEXIBLE_SIGMOIDOSCOPY, "years_back": 4},
                    "flexible sigmoidoscopy",
                ),
                Criterion(
                    "study_end_within",
                    {"vs": vs.CT_COLONOGRAPHY, "years_back": 4, "month": 1},
                    "CT colonography",
                ),
                Criterion(
                    "procedure_end_within",
                    {"vs": vs.COLONOSCOPY, "years_back": 9},
                    "colonoscopy",
                ),
            ]
        },
        "colorectal screening",
    ),
)

_MASTECTOMY = Criterion(
    "mastectomy_both_sides",
    {
        "sides": [
            {
                "condition_vs": vs.STATUS_POST_RIGHT_MASTECTOMY,
                "unspecified_vs": vs.UNILATERAL_MASTECTOMY_UNSPECIFIED,
                "body_site": code(SNOMED, "24028007"),
                "procedure_vs": vs.UNILATERAL_MASTECTOMY_RIGHT,
            },
            {
                "condition_vs": vs.STATUS_POST_LEFT_MASTECTOMY,
                "unspecified_vs": vs.UNILATERAL_MASTECTOMY_UNSPECIFIED,
                "body_site": code(SNOMED, "7771000"),
                "procedure_vs": vs.UNILATERAL_MASTECTOMY_LEFT,
            },
        ]
    },
    "right and left mastectomy",
)

CMS125 = MeasureDefinition(
    cms="CMS125",
    version="",
    title="Breast Cancer Screening",
    first_year=0,
    inverse=False,
    rules=RULES_2025,
    age=(52, 74),
    female_only=True,
    encounters=vs.ADULT_OUTPATIENT,
    ip_criteria=(),
    exclusions=(
        HOSPICE,
        _MASTECTOMY,
        Criterion(
            "condition_starts_by_end",
            {"vs": vs.HISTORY_BILATERAL_MASTECTOMY, "instant": True},
            "history of bilateral mastectomy",
        ),
        Criterion(
            "procedure_ends_by_end",
            {"vs": vs.BILATERAL_MASTECTOMY, "instant": True},
            "bilateral mastectomy",
        ),
        FRAILTY_A,
        NURSING_HOME,
        PALLIATIVE,
    ),
    numerator=Criterion(
        "study_end_within",
        {"vs": vs.MAMMOGRAPHY, "years_back": 2, "month": 10},
        "mammography",
    ),
)

CMS124 = MeasureDefinition(
    cms="CMS124",
    version="",
    title="Cervical Cancer Screening",
    first_year=0,
    inverse=False,
    rules=RULES_2025,
    age=(24, 64),
    female_only=True,
    encounters=(
        vs.OFFICE_VISIT,
        vs.PREVENTIVE_ESTABLISHED_18,
        vs.PREVENTIVE_INITIAL_18,
        vs.HOME_HEALTHCARE,
        vs.TELEPHONE,
        vs.VIRTUAL,
    ),
    ip_criteria=(),
    exclusions=(
        HOSPICE,
        Criterion(
            "procedure_ends_by_end",
            {"vs": vs.HYSTERECTOMY_NO_CERVIX, "instant": True},
            "hysterectomy",
        ),
        Criterion(
            "condition_starts_by_end",
            {"vs": vs.ABSENCE_OF_CERVIX, "instant": True},
            "absence of cervix",
        ),
        PALLIATIVE,
    ),
    numerator=Criterion(
        "any_of",
        {
            "alternatives": [
                _lab([vs.PAP_TEST], 2, "cervical cytology"),
                _lab([vs.HPV_TEST], 4, "HPV test", min_age=30),
            ]
        },
        "cervical screening",
    ),
)

CMS122 = MeasureDefinition(
    cms="CMS122",
    version="",
    title="Diabetes: Glycemic Status Assessment Greater Than 9%",
    first_year=0,
    inverse=True,
    rules=RULES_2025,
    age=(18, 75),
    female_only=False,
    encounters=vs.ADULT_OUTPATIENT,
    ip_criteria=(
        Criterion(
            "condition_overlaps",
            {"vs": vs.DIABETES, "window": "mp", "instant": False},
            "diabetes",
        ),
    ),
    exclusions=(HOSPICE, NURSING_HOME, FRAILTY_A, PALLIATIVE),
    numerator=Criterion(
        "glycemic_poor_control",
        {"vss": [vs.HBA1C_LAB, code(LOINC, "97506-0")], "threshold": 9.0},
        "glycemic status > 9% or missing",
    ),
)

CMS165 = MeasureDefinition(
    cms="CMS165",
    version="",
    title="Controlling High Blood Pressure",
    first_year=0,
    inverse=False,
    rules=RULES_2025,
    age=(18, 85),
    female_only=False,
    encounters=vs.ADULT_OUTPATIENT,
    ip_criteria=(
        Criterion(
            "condition_overlaps",
            {"vs": vs.ESSENTIAL_HYPERTENSION, "window": "first_half", "instant": True},
            "essential hypertension",
        ),
    ),
    exclusions=(
        HOSPICE,
        Criterion(
            "condition_overlaps",
            {
                "vss": [vs.PREGNANCY, vs.ESRD, vs.KIDNEY_TRANSPLANT_RECIPIENT, vs.CKD_STAGE_5],
                "window": "mp",
                "instant": True,
            },
            "pregnancy, ESRD, CKD 5 or kidney transplant",
        ),
        Criterion(
            "procedure_ends_by_end",
            {"vss": [vs.KIDNEY_TRANSPLANT, vs.DIALYSIS_SERVICES], "instant": True},
            "kidney transplant or dialysis",
        ),
        Criterion(
            "encounter_starts_by_end", {"vs": vs.ESRD_MONTHLY, "instant": True}, "ESRD services"
        ),
        FRAILTY_B,
        NURSING_HOME,
        PALLIATIVE,
    ),
    numerator=Criterion(
        "bp_controlled",
        {
            "panel_vs": code(LOINC, "85354-9"),
            "systolic": code(LOINC, "8480-6"),
            "diastolic": code(LOINC, "8462-4"),
            "excluded_classes": ["EMER", "IMP", "ACUTE", "NONAC", "PRENC", "SS"],
            "inpatient_vs": vs.ENCOUNTER_INPATIENT,
            "ed_vs": vs.ED_VISIT,
            "union_2026": False,
        },
        "blood pressure < 140/90",
    ),
)


def _component(name, imm, proc, window, minimum, conditions=(), **extra) -> dict:
    return {
        "name": name,
        "schedules": [{"imm_vss": list(imm), "proc_vss": list(proc), "min": minimum}],
        "window": window,
        "condition_vss": list(conditions),
        **extra,
    }


CMS117 = MeasureDefinition(
    cms="CMS117",
    version="",
    title="Childhood Immunization Status",
    first_year=0,
    inverse=False,
    rules=RULES_2025,
    age=(2, 2),
    female_only=False,
    encounters=(
        vs.OFFICE_VISIT,
        vs.HOME_HEALTHCARE,
        vs.PREVENTIVE_ESTABLISHED_0_17,
        vs.PREVENTIVE_INITIAL_0_17,
        vs.VIRTUAL,
        vs.TELEPHONE,
        # The published measure names this one code itself (a direct-reference code, "Office
        # or other outpatient visit"), outside every value set: it is measure logic, not a
        # customer's VSAC expansion, so it lives here like CVX 119 and LOINC 97506-0 do.
        code(CPT, "99211"),
    ),
    ip_criteria=(),
    exclusions=(
        HOSPICE,
        Criterion(
            "condition_starts_in_childhood",
            {
                "vss": [
                    vs.SCID,
                    vs.IMMUNE_DISORDERS,
                    vs.HIV,
                    vs.LYMPHATIC_NEOPLASM,
                    vs.INTUSSUSCEPTION,
                ]
            },
            "immunodeficiency, HIV, lymphatic cancer or intussusception",
        ),
    ),
    numerator=Criterion(
        "childhood_immunizations",
        {
            "components": [
                _component(
                    "DTaP",
                    [vs.DTAP_VACCINE],
                    [vs.DTAP_ADMINISTERED],
                    "W42",
                    4,
                    [vs.ANAPHYLAXIS_DTAP, vs.ENCEPHALITIS_DTP],
                ),
                _component(
                    "IPV",
                    [vs.IPV_VACCINE],
                    [vs.IPV_ADMINISTERED],
                    "W42",
                    3,
                    [code(SNOMED, "471321000124106")],
                ),
                _component(
                    "MMR",
                    [vs.MMR_VACCINE],
                    [vs.MMR_ADMINISTERED],
                    "Y1-2",
                    1,
                    [code(SNOMED, "471331000124109")],
                    all_conditions_vss=[vs.MEASLES, vs.MUMPS, vs.RUBELLA],
                ),
                {
                    "name": "Hib",
                    "schedules": [
                        {
                            "imm_vss": [vs.HIB3_VACCINE],
                            "proc_vss": [vs.HIB3_ADMINISTERED],
                            "min": 3,
                        },
                        {
                            "imm_vss": [vs.HIB4_VACCINE],
                            "proc_vss": [vs.HIB4_ADMINISTERED],
                            "min": 4,
                        },
                    ],
                    "window": "W42",
                    "condition_vss": [code(SNOMED, "433621000124101")],
                },
                _component(
                    "HepB",
                    [vs.HEPB_VACCINE],
                    [vs.HEPB_ADMINISTERED],
                    "Y0-2",
                    3,
                    [code(SNOMED, "428321000124101"), vs.HEPATITIS_B],
                    newborn_procedure_vs=code(ICD10PCS, "3E0234Z"),
                ),
                _component(
                    "VZV",
                    [vs.VZV_VACCINE],
                    [vs.VZV_ADMINISTERED],
                    "Y1-2",
                    1,
                    [vs.VARICELLA_ZOSTER, code(SNOMED, "471341000124104")],
                ),
                _component(
                    "PCV",
                    [vs.PCV_VACCINE],
                    [vs.PCV_ADMINISTERED],
                    "W42",
                    4,
                    [code(SNOMED, "471141000124102")],
                ),
                _component(
                    "HepA",
                    [vs.HEPA_VACCINE],
                    [vs.HEPA_ADMINISTERED],
                    "Y1-2",
                    1,
                    [vs.HEPATITIS_A, code(SNOMED, "471311000124103")],
                ),
                {
                    "name": "Rotavirus",
                    "schedules": [
                        {
                            "imm_vss": [code(CVX, "119")],
                            "proc_vss": [vs.RV2_ADMINISTERED],
                            "min": 2,
                        },
                        {"imm_vss": [vs.RV3_VACCINE], "proc_vss": [vs.RV3_ADMINISTERED], "min": 3},
                    ],
                    "window": "W42",
                    "condition_vss": [code(SNOMED, "428331000124103")],
                },
                {
                    "name": "Influenza",
                    "schedules": [
                        {
                            "imm_vss": [vs.CHILD_FLU_VACCINE],
                            "proc_vss": [vs.CHILD_FLU_ADMINISTERED],
                            "min": 2,
                        }
                    ],
                    "window": "W42",
                    # A flu vaccine recorded as a Procedure counts from day 180 only.
                    "procedure_window": "W180",
                    "laiv_imm_vss": [vs.LAIV_VACCINE],
                    "laiv_proc_vss": [vs.LAIV_ADMINISTERED],
                    "condition_vss": [code(SNOMED, "471361000124100")],
                },
            ]
        },
        "all ten vaccine series",
    ),
)

AWV = MeasureDefinition(
    cms="AWV",
    version="",
    title="Annual Wellness Visit (CareHub rule, Medicare 65+)",
    first_year=0,
    inverse=False,
    rules=RULES_2025,
    age=(0, None),
    female_only=False,
    encounters=(),
    ip_criteria=(
        Criterion(
            "medicare_or_65",
            {"medicare_vs": code("https://nahdo.org/sopt", "1"), "min_age": 65},
            "65 or older, or Medicare",
        ),
    ),
    exclusions=(replace(HOSPICE, params={**HOSPICE.params, "window": "last_12_months"}),),
    numerator=Criterion(
        "wellness_visit",
        {
            "encounter_vs": vs.ANNUAL_WELLNESS,
            "procedure_vss": [code(HCPCS, "G0438"), code(HCPCS, "G0439"), code(HCPCS, "G0402")],
        },
        "wellness visit in the last 12 months",
    ),
    description="Open when no AWV/IPPE in the 12 months up to the period end (measures.md 6).",
)


def _cms122_2026_encounters() -> tuple[str, ...]:
    return (
        vs.OFFICE_VISIT,
        vs.ANNUAL_WELLNESS,
        vs.PREVENTIVE_ESTABLISHED_18,
        vs.PREVENTIVE_INITIAL_18,
        vs.HOME_HEALTHCARE,
        vs.NUTRITION_SERVICES,
        vs.TELEPHONE,
        # The measure's three direct CPT codes (medical nutrition therapy) are members of
        # Nutrition Services, so the value set covers them.
        code(HCPCS, "G0270"),
        code(HCPCS, "G0271"),
    )


def _bp_2026() -> Criterion:
    return replace(CMS165.numerator, params={**CMS165.numerator.params, "union_2026": True})


MEASURES: list[MeasureDefinition] = [
    *_versions(CMS130),
    *_versions(CMS125, age=(42, 74)),
    *_versions(CMS124),
    *_versions(CMS122, encounters=_cms122_2026_encounters()),
    *_versions(CMS165, numerator=_bp_2026()),
    *_versions(CMS117, rules=RULES_2026_CMS117),
    *_versions(AWV),
]
# Statuses of result records that count (shared across measures).
FINAL_STATUSES = FINAL
