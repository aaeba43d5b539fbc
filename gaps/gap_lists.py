"""Gap lists (CSV) from payers, EHRs and quality tools.

Columns (a header row; names are case-insensitive, order is free):

    mrn               the patient's MRN at the organization      } at least one of the two;
    member_id         the payer's member id                      } MRN wins when both match
    measure           CMS code (CMS130) or HEDIS analogue (COL)
    due_date          YYYY-MM-DD or MM/DD/YYYY; its year is the measurement period
    missing           what is missing, as the source words it   (optional)
    source            the source's own name for the list         (optional; --source otherwise)
    last_service_date YYYY-MM-DD or MM/DD/YYYY                   (optional)

Each good row becomes a source of the one gap per patient, measure and period (opened when the
engine has not opened it). A row our data already shows as met opens the gap in needs_review:
probably done elsewhere. Every bad row (unknown patient or measure, bad date, duplicate row) is
reported with its line number and reason, never dropped. All-or-nothing imports nothing when
any row is bad. Importing the same file again changes nothing (its hash is recorded).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from carehub.errors import DomainError
from carehub.history import bulk_create_with_history, save_with_history
from carehub.permissions import require_organization_access
from gaps.care_gaps import CareGap, GapListImport, GapSource, GapState, NextStep, SourceKind
from gaps.measures import MEASURE_CODES, MEASURE_WEIGHTS, pick_version
from gaps.models import MeasureResult
from gaps.services import sync_catalogue
from patients.models import Patient

HEDIS_ANALOGUES = {
    "COL": "CMS130",
    "BCS": "CMS125",
    "CCS": "CMS124",
    "HBD": "CMS122",
    "GSD": "CMS122",
    "CBP": "CMS165",
    "CIS": "CMS117",
}
COLUMNS = ("mrn", "member_id", "measure", "due_date", "missing", "source", "last_service_date")
LIST_KINDS = (SourceKind.PAYER_LIST, SourceKind.EHR_LIST)
# A due date in year 1 or 9999 is a typo or a placeholder that would open a gap in a
# measurement period nobody works; a service cannot have happened in the future.
EARLIEST_DATE = dt.date(1900, 1, 1)
DUE_DATE_HORIZON_DAYS = 3653  # ten years


@dataclass
class ListRow:
    line: int
    patient: Patient
    measure_code: str
    period: tuple[dt.date, dt.date]
    due_date: dt.date
    missing: str
    source: str
    last_service_date: dt.date | None


@dataclass
class ParsedList:
    rows: list[ListRow] = field(default_factory=list)
    problems: list[dict] = field(default_factory=list)
    lines: int = 0


def _date(text: str) -> dt.date:
    text = text.strip()
    for parse in (dt.date.fromisoformat, lambda t: dt.datetime.strptime(t, "%m/%d/%Y").date()):
        try:
            return parse(text)
        except ValueError:
            continue
    raise ValueError(text)


def parse_gap_list(content: bytes, organization) -> ParsedList:
    """Read and check every row; nothing is written."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DomainError("The file is not UTF-8 text (save the list as CSV UTF-8)") from None
    if "\x00" in text:  # no database text column can hold it; it is never part of a real list
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise DomainError(f"line {line}: contains a NUL character; the file is not a CSV text")
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = [name.strip().lower() for name in (reader.fieldnames or [])]
        reader.fieldnames = header
        raw_rows = list(reader)
    except csv.Error as error:  # e.g. a field past csv.field_size_limit() (128 KB)
        if "field larger than field limit" in str(error):
            reason = f"a field is longer than {csv.field_size_limit():,} characters"
        else:
            reason = str(error)
        raise DomainError(f"line {reader.reader.line_num}: {reason}") from None
    if not header:
        raise DomainError("The file is empty: expected a header row and gap rows")
    duplicates = sorted({name for name in header if name and header.count(name) > 1})
    if duplicates:
        raise DomainError(f"Duplicate column(s): {', '.join(duplicates)}; name each column once")
    missing_columns = [c for c in ("measure", "due_date") if c not in header]
    if missing_columns or not {"mrn", "member_id"} & set(header):
        needed = missing_columns + (
            [] if {"mrn", "member_id"} & set(header) else ["mrn or member_id"]
        )
        raise DomainError(
            f"Missing column(s): {', '.join(needed)}; columns are {', '.join(COLUMNS)}"
        )
    parsed = ParsedList(lines=len(raw_rows))
    # A short row leaves its missing columns None (csv's restval), not "".
    mrns = {(r.get("mrn") or "").strip() for r in raw_rows} - {""}
    members = {(r.get("member_id") or "").strip() for r in raw_rows} - {""}
    patients = Patient.objects.filter(organization=organization)
    by_mrn = {p.mrn: p for p in patients.filter(mrn__in=mrns)}
    by_member = {p.member_id: p for p in patients.filter(member_id__in=members)}
    seen: dict[tuple, int] = {}
    for number, raw in enumerate(raw_rows, start=2):  # line 1 is the header
        values = {k: (v or "").strip() for k, v in raw.items() if k}
        problem = _row_problem(values, by_mrn, by_member)
        if isinstance(problem, str):
            parsed.problems.append({"line": number, "reason": problem})
            continue
        row = problem
        row.line = number
        key = (row.patient.pk, row.measure_code, row.period)
        if key in seen:
            parsed.problems.append(
                {
                    "line": number,
                    "reason": f"duplicate of line {seen[key]} (same patient, measure and period)",
                }
            )
            continue
        seen[key] = number
        parsed.rows.append(row)
    return parsed


def _row_problem(values: dict, by_mrn: dict, by_member: dict) -> ListRow | str:
    mrn, member = values.get("mrn", ""), values.get("member_id", "")
    patient = by_mrn.get(mrn) if mrn else None
    patient = patient or (by_member.get(member) if member else None)
    if patient is None:
        if not mrn and not member:
            return "no MRN or member id"
        return (
            f"unknown patient (MRN {mrn!r}, member id {member!r})"
            if member and mrn
            else (f"unknown MRN {mrn!r}" if mrn else f"unknown member id {member!r}")
        )
    code = values.get("measure", "").upper()
    code = HEDIS_ANALOGUES.get(code, code)
    if code not in MEASURE_CODES:
        return f"unknown measure {values.get('measure', '')!r}"
    try:
        due = _date(values.get("due_date", ""))
    except ValueError:
        return f"bad due_date {values.get('due_date', '')!r} (use YYYY-MM-DD)"
    today = timezone.localdate()
    latest_due = today + dt.timedelta(days=DUE_DATE_HORIZON_DAYS)
    if not EARLIEST_DATE <= due <= latest_due:
        return f"due_date {due} is not plausible ({EARLIEST_DATE.year} to {latest_due.year})"
    last = None
    if values.get("last_service_date"):
        try:
            last = _date(values["last_service_date"])
        except ValueError:
            return f"bad last_service_date {values['last_service_date']!r} (use YYYY-MM-DD)"
        if not EARLIEST_DATE <= last <= today:
            return f"last_service_date {last} is not plausible ({EARLIEST_DATE.year} to today)"
    period = (dt.date(due.year, 1, 1), dt.date(due.year, 12, 31))
    return ListRow(
        0,
        patient,
        code,
        period,
        due,
        values.get("missing", "")[:200],
        values.get("source", "")[:100],
        last,
    )


def _hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@transaction.atomic
def receive_gap_list(
    organization,
    *,
    content: bytes,
    file_name: str,
    source_name: str,
    source_kind: str,
    actor,
    all_or_nothing: bool = False,
) -> GapListImport:
    """Record an uploaded list and what it would do (preview); `apply_gap_list` applies it."""
    require_organization_access(actor, organization.pk, what="this gap list")
    if len(content) > settings.CAREHUB_GAP_LIST_MAX_BYTES:
        raise DomainError(
            f"The file is {len(content):,} bytes; the limit is "
            f"{settings.CAREHUB_GAP_LIST_MAX_BYTES:,}"
        )
    if source_kind not in LIST_KINDS:
        raise DomainError(f"A list's source is a payer_list or ehr_list, not {source_kind!r}")
    source_name = (source_name or "").strip()
    if not source_name:
        raise DomainError("Name the list's source (e.g. the payer)")
    parsed = parse_gap_list(content, organization)
    record = GapListImport(
        organization=organization,
        source_name=source_name[:100],
        source_kind=source_kind,
        file_name=file_name[:200],
        file_sha256=_hash(content),
        content=content,
        all_or_nothing=all_or_nothing,
        status=GapListImport.Status.PREVIEWED,
        counts={"rows": parsed.lines, "good": len(parsed.rows), "bad": len(parsed.problems)},
        problems=parsed.problems,
        uploaded_by=actor,
        uploaded_at=timezone.now(),
    )
    save_with_history(record, actor=actor, reason="Gap list received")
    return record


@transaction.atomic
def apply_gap_list(record: GapListImport, *, actor) -> GapListImport:
    record = GapListImport.objects.select_for_update().get(pk=record.pk)
    require_organization_access(actor, record.organization_id, what="this gap list")
    if record.status != GapListImport.Status.PREVIEWED:
        raise DomainError(f"This list was already handled ({record.get_status_display()})")
    earlier = (
        GapListImport.objects.filter(
            organization_id=record.organization_id,
            file_sha256=record.file_sha256,
            status=GapListImport.Status.APPLIED,
        )
        .exclude(pk=record.pk)
        .first()
    )
    if earlier is not None:
        record.status = GapListImport.Status.DUPLICATE
        record.counts = {**record.counts, "duplicate_of": earlier.pk}
        return _done(record, actor, f"Same file as import #{earlier.pk}; nothing changed")
    parsed = parse_gap_list(bytes(record.content), record.organization)
    record.problems = parsed.problems
    if parsed.problems and record.all_or_nothing:
        record.status = GapListImport.Status.REJECTED
        record.counts = {
            "rows": parsed.lines,
            "good": len(parsed.rows),
            "bad": len(parsed.problems),
            "imported": 0,
        }
        return _done(record, actor, "All-or-nothing: bad rows, nothing imported")
    outcome = _reconcile(record, parsed.rows, actor)
    record.status = GapListImport.Status.APPLIED
    record.counts = {
        "rows": parsed.lines,
        "good": len(parsed.rows),
        "bad": len(parsed.problems),
        **outcome,
    }
    return _done(record, actor, "Gap list applied")


def _done(record: GapListImport, actor, reason: str) -> GapListImport:
    record.applied_at = timezone.now()
    record.content = b""  # applied: the rows live on as gap sources; the file is not kept
    save_with_history(record, actor=actor, reason=reason)
    return record


def _reconcile(record: GapListImport, rows: list[ListRow], actor) -> dict:
    """One gap per patient, measure and period; this list becomes one of its sources."""
    now = timezone.now()
    today = timezone.localdate()
    catalogue = sync_catalogue()
    outcome = {"opened": 0, "to_review": 0, "already_known": 0, "sources_added": 0}
    patient_ids = {row.patient.pk for row in rows}
    existing = {
        (g.patient_id, g.measure_code, g.period_start, g.period_end): g
        for g in CareGap.objects.select_for_update().filter(
            organization_id=record.organization_id, patient_id__in=patient_ids
        )
    }
    met = set(
        MeasureResult.objects.filter(
            organization_id=record.organization_id,
            patient_id__in=patient_ids,
            status=MeasureResult.Status.CLOSED,
        ).values_list("patient_id", "measure__cms", "period_start", "period_end")
    )
    new_gaps, review, sources_for = [], [], []
    for row in rows:
        key = (row.patient.pk, row.measure_code, *row.period)
        gap = existing.get(key)
        if gap is None:
            definition, _ = pick_version(row.measure_code, row.period[0].year)
            done_per_our_data = key in met
            gap = CareGap(
                organization_id=record.organization_id,
                patient=row.patient,
                measure_code=row.measure_code,
                measure=catalogue[definition.key],
                period_start=row.period[0],
                period_end=row.period[1],
                primary_source=record.source_kind,
                state=GapState.NEEDS_REVIEW if done_per_our_data else GapState.IDENTIFIED,
                state_changed_at=now,
                next_step=NextStep.COORDINATOR_REVIEW
                if done_per_our_data
                else NextStep.REVIEW_RECORDS,
                next_step_due=today + dt.timedelta(days=2),
                due_date=row.due_date,
                missing=row.missing,
                measure_weight=MEASURE_WEIGHTS.get(row.measure_code, 1),
            )
            existing[key] = gap
            (review if done_per_our_data else new_gaps).append(gap)
        else:
            outcome["already_known"] += 1
        sources_for.append((gap, row))
    bulk_create_with_history(
        new_gaps, actor=actor, reason=f"Reported by {record.source_name} (import #{record.pk})"
    )
    bulk_create_with_history(
        review,
        actor=actor,
        reason=f"Reported by {record.source_name} (import #{record.pk}), but our data shows it "
        "met: probably done elsewhere",
    )
    outcome["opened"], outcome["to_review"] = len(new_gaps), len(review)
    gap_ids = [gap.pk for gap, _ in sources_for]
    known_sources = set(
        GapSource.objects.filter(gap_id__in=gap_ids, kind=record.source_kind).values_list(
            "gap_id", "name"
        )
    )
    sources = [
        GapSource(
            gap=gap,
            kind=record.source_kind,
            name=row.source or record.source_name,
            list_import=record,
            line=row.line,
            due_date=row.due_date,
            missing=row.missing,
            last_service_date=row.last_service_date,
            reported_at=now,
        )
        for gap, row in sources_for
        if (gap.pk, row.source or record.source_name) not in known_sources
    ]
    bulk_create_with_history(
        sources, actor=actor, reason=f"Reported by {record.source_name} (import #{record.pk})"
    )
    outcome["sources_added"] = len(sources)
    return outcome


def import_gap_list(
    organization,
    *,
    content: bytes,
    file_name: str,
    source_name: str,
    source_kind: str,
    actor,
    all_or_nothing: bool = False,
) -> GapListImport:
    """Receive and apply in one go (the command; admin previews first)."""
    with transaction.atomic():
        record = receive_gap_list(
            organization,
            content=content,
            file_name=file_name,
            source_name=source_name,
            source_kind=source_kind,
            actor=actor,
            all_or_nothing=all_or_nothing,
        )
        return apply_gap_list(record, actor=actor)
