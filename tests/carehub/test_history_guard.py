"""Set-based writes skip save() and so skip history. Project code may only make them through
carehub.history, which writes the history rows itself."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, models
from django.db.migrations.loader import MigrationLoader
from django.forms.models import model_to_dict
from django_q.models import OrmQ
from guardian.models import UserObjectPermission

from carehub.history import UntrackedWriteError, bulk_create_with_history, update_with_history
from carehub.services import grant_organization, revoke_organization
from consent.models import Consent
from gaps.care_gaps import CareGap, GapState
from patients.models import Patient, Provider
from tests.consent.factories import ConsentFactory
from tests.gaps.factories import CareGapFactory
from tests.patients.factories import PatientFactory

REPO = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = [
    "carehub",
    "patients",
    "gaps",
    "consent",
    "outreach",
    "worklists",
    "audit",
    "metrics",
]
ALLOWED = {REPO / "carehub" / "history.py"}
QUERYSET_METHODS = {
    "filter",
    "exclude",
    "all",
    "select_for_update",
    "select_related",
    "only",
    "order_by",
    "objects",
    "history",
    "using",
    "none",
}


def _is_queryset_expression(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr in QUERYSET_METHODS or _is_queryset_expression(node.value)
    if isinstance(node, ast.Call):
        return _is_queryset_expression(node.func)
    return False


def untracked_writes_in(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        if name in {"bulk_update", "bulk_create"} or (
            name == "update" and _is_queryset_expression(node.func.value)
        ):
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: .{name}()")
    return found


def project_sources() -> list[Path]:
    return [
        path
        for package in PROJECT_PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
        if "migrations" not in path.parts and path not in ALLOWED
    ]


def test_project_code_makes_no_set_based_writes_outside_the_history_helpers():
    offenders = [hit for path in project_sources() for hit in untracked_writes_in(path)]
    assert offenders == [], "use carehub.history helpers (they write history):\n" + "\n".join(
        offenders
    )


def test_the_scan_detects_a_set_based_update(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "Patient.objects.filter(status='active').update(status='moved')\n"
        "Patient.objects.bulk_update(rows, ['status'])\n"
        "settings.update(a=1)\n"
    )
    sample = sample.rename(REPO / "tests" / "carehub" / "_scan_sample.py")
    try:
        assert [hit.split(": ")[1] for hit in untracked_writes_in(sample)] == [
            ".update()",
            ".bulk_update()",
        ]
    finally:
        sample.unlink()


# --- At run time: the guard CarehubConfig.ready() installs (the suite adds none of its own) ---


@pytest.fixture
def tracked_rows(patient_a):
    """One row of each model the issue names, as the test database holds them."""
    gap = CareGapFactory(patient=patient_a)
    consent = ConsentFactory(patient=patient_a)
    return {"Patient": patient_a, "CareGap": gap, "Consent": consent}


# Each way around save(): (description, the write, the column it would change).
SET_BASED_WRITES = {
    "Patient": [
        ("filter().update()", lambda p: Patient.objects.filter(pk=p.pk).update(status="moved")),
        (
            "_base_manager.update()",
            lambda p: Patient._base_manager.filter(pk=p.pk).update(status="moved"),
        ),
        (
            "bulk_update()",
            lambda p: Patient.objects.bulk_update([_with(p, status="moved")], ["status"]),
        ),
        (
            "bulk_create()",
            lambda p: Patient.objects.bulk_create(
                [PatientFactory.build(organization=p.organization)]
            ),
        ),
        ("filter().delete()", lambda p: Patient.objects.filter(pk=p.pk).delete()),
    ],
    "CareGap": [
        (
            "filter().update(state=closed)",
            lambda g: CareGap.objects.filter(pk=g.pk).update(state=GapState.CLOSED),
        ),
        ("related manager update()", lambda g: g.patient.gaps.update(state=GapState.CLOSED)),
        (
            "bulk_update()",
            lambda g: CareGap.objects.bulk_update([_with(g, state=GapState.CLOSED)], ["state"]),
        ),
        ("filter().delete()", lambda g: CareGap.objects.filter(pk=g.pk).delete()),
    ],
    "Consent": [
        (
            "filter().update()",
            lambda c: Consent.objects.filter(pk=c.pk).update(status=Consent.Status.REVOKED),
        ),
        (
            "related manager update()",
            lambda c: c.patient.consents.update(status=Consent.Status.REVOKED),
        ),
        (
            "bulk_update()",
            lambda c: Consent.objects.bulk_update(
                [_with(c, status=Consent.Status.REVOKED)], ["status"]
            ),
        ),
        (
            "bulk_create()",
            lambda c: Consent.objects.bulk_create([ConsentFactory.build(patient=c.patient)]),
        ),
        ("filter().delete()", lambda c: Consent.objects.filter(pk=c.pk).delete()),
    ],
}


def _with(obj, **values):
    for name, value in values.items():
        setattr(obj, name, value)
    return obj


def test_the_suite_installs_no_guard_of_its_own():
    """So every refusal below is the one production runs with."""
    conftest = (REPO / "tests" / "conftest.py").read_text()
    assert "refuse_untracked_writes" not in conftest
    assert models.QuerySet.update.carehub_refuses_untracked_writes


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model_name", "way", "write"),
    [(name, way, write) for name, writes in SET_BASED_WRITES.items() for way, write in writes],
    ids=[f"{name}-{way}" for name, writes in SET_BASED_WRITES.items() for way, _ in writes],
)
def test_set_based_writes_on_tracked_models_are_refused(tracked_rows, model_name, way, write):
    row = tracked_rows[model_name]
    model = type(row)
    rows_before = model.objects.count()
    stored_before = model_to_dict(model.objects.get(pk=row.pk))
    history_before = model.history.count()

    with pytest.raises(UntrackedWriteError) as refused:
        write(row)

    message = str(refused.value)
    assert model._meta.label in message
    assert "carehub.history." in message or "service" in message
    assert model.objects.count() == rows_before
    assert model_to_dict(model.objects.get(pk=row.pk)) == stored_before
    assert model.history.count() == history_before


def test_outside_pytest_a_production_process_refuses_them(tmp_path):
    """A real `manage.py shell` with production settings (DEBUG off): the refusal comes before
    any SQL, so an empty database file shows it; an untracked model's update reaches SQLite."""
    script = (
        "from carehub.history import UntrackedWriteError\n"
        "from patients.models import Patient\n"
        "from gaps.care_gaps import CareGap\n"
        "from consent.models import Consent\n"
        "from gaps.models import MeasureResult\n"
        "writes = [lambda: Patient.objects.filter(pk=1).update(status='moved'),\n"
        "          lambda: CareGap.objects.filter(pk=1).update(state='closed'),\n"
        "          lambda: Consent.objects.filter(pk=1).update(status='revoked'),\n"
        "          lambda: MeasureResult.objects.filter(pk=1).update(status='numer')]\n"
        "for write in writes:\n"
        "    try:\n"
        "        write()\n"
        "    except UntrackedWriteError as error:\n"
        "        print('REFUSED', str(error).split(':')[0])\n"
        "    except Exception as error:\n"
        "        print('REACHED THE DATABASE', type(error).__name__)\n"
    )
    environment = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "x" * 60,
        "ALLOWED_HOSTS": "carehub.example.org",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
    }
    environment.pop("MIGRATION_DATABASE_URL", None)
    finished = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.splitlines() == [
        "REFUSED patients.Patient",
        "REFUSED gaps.CareGap",
        "REFUSED consent.Consent",
        "REACHED THE DATABASE OperationalError",
    ]


@pytest.mark.django_db
def test_migrations_historical_models_are_not_refused(patient_a):
    """RunPython gets models rebuilt from migration state: no history, nothing to refuse."""
    state_apps = MigrationLoader(connection).project_state().apps
    HistoricalPatient = state_apps.get_model("patients", "Patient")
    assert HistoricalPatient.objects.filter(pk=patient_a.pk).update(status="moved") == 1
    patient_a.refresh_from_db()
    assert patient_a.status == "moved"


@pytest.mark.django_db
def test_models_without_history_keep_their_set_based_writes(patient_a):
    tasks_before = OrmQ.objects.count()
    OrmQ.objects.bulk_create([OrmQ(key="default", payload="x", lock=None)])
    assert OrmQ.objects.filter(key="default").update(payload="y") == 1
    OrmQ.objects.filter(key="default").delete()
    assert OrmQ.objects.count() == tasks_before


@pytest.mark.django_db
def test_one_row_still_deletes_with_history(org_a, system_user):
    """Revoking a grant deletes one row through the model (the refusal is for querysets)."""
    user = get_user_model().objects.create_user(username="leaver", password=None)
    grant_organization(user, org_a, actor=system_user, reason="joined")
    revoke_organization(user, org_a, actor=system_user, reason="left")
    latest = UserObjectPermission.history.latest()
    assert (latest.history_type, latest.history_change_reason) == ("-", "left")


@pytest.mark.django_db
def test_update_with_history_writes_one_history_row_per_changed_row(patient_a, system_user):
    before = patient_a.history.count()
    changed = update_with_history(
        Patient.objects.filter(pk=patient_a.pk),
        actor=system_user,
        reason="moved away",
        status=Patient.Status.MOVED,
    )
    assert changed == 1
    latest = patient_a.history.latest()
    assert patient_a.history.count() == before + 1
    assert (latest.status, latest.history_user, latest.history_change_reason) == (
        "moved",
        system_user,
        "moved away",
    )


@pytest.mark.django_db
def test_bulk_create_with_history_writes_one_history_row_per_created_row(org_a, system_user):
    providers = [
        Provider(organization=org_a, given_name="Ada", family_name=f"Doctor {n}") for n in range(3)
    ]
    created = bulk_create_with_history(providers, actor=system_user, reason="roster import")
    assert all(provider.pk for provider in created)
    history = Provider.history.filter(id__in=[p.pk for p in created]).order_by("id")
    assert [
        (h.id, h.family_name, h.history_type, h.history_user, h.history_change_reason)
        for h in history
    ] == [(p.pk, p.family_name, "+", system_user, "roster import") for p in created]
