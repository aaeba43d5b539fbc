"""Set-based writes skip save() and so skip history. Project code may only make them through
carehub.history, which writes the history rows itself."""

import ast
from pathlib import Path

import pytest

from carehub.history import UntrackedWriteError, update_with_history
from patients.models import Patient

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


@pytest.mark.django_db
def test_runtime_guard_refuses_update_on_a_tracked_model(patient_a):
    with pytest.raises(UntrackedWriteError, match="skips the audit history"):
        Patient.objects.filter(pk=patient_a.pk).update(status="moved")


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
