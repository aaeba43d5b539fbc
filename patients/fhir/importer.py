"""Import FHIR R4 Bundles into patients and normalized clinical records.

Unit of work: one file (a Bundle, a Bundle of Bundles, Parameters wrapping Bundles, or a lone
resource such as the DEQM examples ship). A file with any error is rejected whole, with a report
naming file, entry and field. Without `partial` the whole run is one transaction, so one bad
file means nothing lands; with `partial` bad files are skipped and listed, the rest lands.

Files go through in two phases. Each file is read, checked and mapped in Python alone
(patients/fhir/bundle.py), then the checked files are written in batches of up to 500 files or
20,000 resources (patients/fhir/batch.py): a few set-based statements per batch instead of a
dozen queries per file. With `partial` each batch is its own transaction; if the database
refuses a batch, it is rolled back and redone file by file, so only the culprit is rejected.

References are resolved in the order the robustness notes give: the entry `fullUrl`, then
`Type/id` within the file (also against fullUrls that end in `Type/id`), then earlier files of
the batch and the database (patients by FHIR id). Patients are matched on their FHIR id
(`source_id`), then on an MRN-typed identifier. Re-importing the same content changes nothing
(a digest of what each row stores).

A Patient without birthDate: `Patient.birth_date` is required by the registry, so it holds the
placeholder 1900-01-01 while `FhirPatientDetail.birth_date` stays empty and the measures treat
the age as unknown.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from carehub.safejson import UnsafeJSON, load_json
from patients.clinical import ImportRun
from patients.fhir.batch import Batch, FileReport, RunCounts
from patients.fhir.bundle import BundleImport, BundleRejected, FilePlan
from patients.fhir.reading import json_kind
from patients.fhir.resource_types import R4_RESOURCE_TYPES
from patients.fhir.resources import Entry
from patients.models import Organization

logger = logging.getLogger(__name__)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.json") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return files


def import_paths(
    paths: Iterable[str | Path],
    *,
    organization: Organization,
    actor,
    partial: bool = False,
    source: str = "command",
    progress: Callable[[Iterable], Iterable] | None = None,
) -> ImportRun:
    # Files are read one at a time while importing, not all up front.
    documents = [(str(path), path) for path in expand_paths(paths)]
    return import_documents(
        documents,
        organization=organization,
        actor=actor,
        partial=partial,
        source=source,
        progress=progress,
    )


def import_documents(
    documents: list[tuple[str, bytes | Path]],
    *,
    organization: Organization,
    actor,
    partial: bool = False,
    source: str = "command",
    progress: Callable[[Iterable], Iterable] | None = None,
) -> ImportRun:
    """Import (name, raw JSON bytes or a file path) pairs; returns the recorded run."""
    if actor is None:
        raise ValueError("An import needs an acting user (the system user for automation)")
    run = ImportRun.objects.create(
        organization=organization, actor=actor, partial=partial, source=source
    )
    counts = RunCounts()
    reports: list[FileReport] = []
    iterable = progress(documents) if progress else documents
    batch = Batch(organization, run, actor)

    class _RollBack(Exception):
        pass

    finished = False
    try:
        try:
            # Without --partial one bad file rejects the whole run: a single outer transaction.
            with _fewer_collections, transaction.atomic() if not partial else nullcontext():
                for name, source in iterable:
                    report = FileReport(path=name)
                    reports.append(report)
                    plan = _prepare(name, source, report, run, counts)
                    if plan is not None:
                        batch.add(plan)
                        if batch.full:
                            _flush(batch, run, counts)
                _flush(batch, run, counts)
                if not partial and counts.bundles_rejected:
                    raise _RollBack
        except _RollBack:
            counts = RunCounts(bundles_rejected=counts.bundles_rejected)
            for report in reports:
                if report.status == "ok":
                    report.status = "not imported (another file was rejected)"
        finished = True
    finally:
        if not finished:  # interrupted (Ctrl-C) or the database failed: never left "running"
            _finish(run, ImportRun.Status.FAILED, counts, reports, "interrupted: run ended early")
    if counts.bundles_rejected == 0:
        run.status = ImportRun.Status.SUCCEEDED
    elif partial and counts.bundles_ok:
        run.status = ImportRun.Status.PARTIAL
    else:
        run.status = ImportRun.Status.FAILED
    return _finish(run, run.status, counts, reports)


def _prepare(name, source, report: FileReport, run, counts: RunCounts) -> FilePlan | None:
    """Read, check and map one file (no database); None when it is rejected."""
    try:
        raw = source.read_bytes() if isinstance(source, Path) else source
        report.sha256 = hashlib.sha256(raw).hexdigest()
        report.bytes = len(raw)
        return _plan_file(name, raw, report)
    except BundleRejected as rejected:
        _reject(report, rejected.errors, counts)
    except Exception as error:
        # A file no check foresaw (or unreadable): rejected like any bad file and the run
        # goes on.
        _reject_unexpected(report, error, run, counts)
    return None


def _flush(batch: Batch, run, counts: RunCounts) -> None:
    """Write the batch in one transaction (a savepoint inside the run's); if the database
    refuses it, redo it file by file so that only the culprit is rejected."""
    if not batch.plans:
        return
    plans = list(batch.plans)
    try:
        with transaction.atomic():
            outcomes = batch.write()
    except Exception as error:
        if len(plans) == 1:
            _reject_unexpected(plans[0].report, error, run, counts)
        else:
            for plan in plans:
                batch.clear()
                batch.add(plan)
                _flush(batch, run, counts)
        batch.clear()
        return
    batch.clear()
    for outcome in outcomes:
        report = outcome.plan.report
        if outcome.errors:
            _reject(report, outcome.errors, counts)
            continue
        report.warnings.extend(outcome.warnings)
        counts.add(outcome.counts)


def _reject_unexpected(report: FileReport, error: Exception, run, counts: RunCounts) -> None:
    # Type and place only: the error's text may quote patient data.
    frame = traceback.extract_tb(error.__traceback__)[-1]
    logger.error(
        "FHIR import run %s: unexpected %s at %s:%s",
        run.pk,
        type(error).__name__,
        frame.filename,
        frame.lineno,
    )
    _reject(report, [f"unexpected error ({type(error).__name__}); nothing imported"], counts)


def _reject(report: FileReport, errors: list[str], counts: RunCounts) -> None:
    report.status = "rejected"
    report.errors = errors
    counts.bundles_rejected += 1


def _finish(run, status, counts: RunCounts, reports: list[FileReport], note: str = "") -> ImportRun:
    if status == ImportRun.Status.FAILED:
        counts = RunCounts(bundles_rejected=counts.bundles_rejected)  # nothing landed
    run.status = status
    run.finished_at = timezone.now()
    run.files = [report.__dict__ for report in reports]
    run.counts = counts.__dict__
    run.report = "\n".join(filter(None, [render_report(reports), note]))
    run.save(update_fields=["status", "finished_at", "files", "counts", "report"])
    return run


class _FewerCollections:
    """Run imports with the cyclic garbage collector mostly out of the way.

    An import allocates millions of small containers (parsed JSON, mapped rows) that reference
    counting frees; only a batch's rows live long. With the default thresholds the collector
    still ran every 700 allocations and twice rescanned everything alive, Django's objects
    included: a quarter of the import's CPU (400 files / 24,000 resources: 0.92 s, of which
    0.5 s in collections). Objects alive before the import are frozen (never rescanned), and
    the youngest generation is collected every 50,000 allocations, so cycles are still freed.
    Imports running at once in one process (API uploads in a threaded server) share the
    setting: the first one in sets it, the last one out restores it.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._running = 0
        self._thresholds = gc.get_threshold()

    def __enter__(self):
        with self._lock:
            if self._running == 0:
                self._thresholds = gc.get_threshold()
                gc.freeze()
                gc.set_threshold(50_000, *self._thresholds[1:])
            self._running += 1

    def __exit__(self, *exc) -> bool:
        with self._lock:
            self._running -= 1
            if self._running == 0:
                gc.set_threshold(*self._thresholds)
                gc.unfreeze()
        return False


_fewer_collections = _FewerCollections()


def render_report(reports: list[FileReport]) -> str:
    lines = []
    for report in reports:
        for error in report.errors:
            lines.append(f"{report.path}: {error}")
        for warning in report.warnings:
            lines.append(f"{report.path}: warning: {warning}")
    return "\n".join(lines)


# -- one file ---------------------------------------------------------------------------------


def _plan_file(name: str, raw: bytes, report: FileReport) -> FilePlan:
    try:
        document = load_json(raw)
    except UnsafeJSON as error:
        raise BundleRejected([str(error)]) from None
    kind = _resource_type(document)
    if kind not in R4_RESOURCE_TYPES:
        found = document.get("resourceType") if isinstance(document, dict) else None
        found = found if isinstance(document, dict) else type(document).__name__
        raise BundleRejected(
            [f"resourceType: expected a FHIR R4 Bundle or resource, got {found!r}"]
        )
    errors: list[str] = []
    if kind in {"Bundle", "Parameters"}:
        entries = list(_flatten(document, "", errors))
    else:
        # A lone resource file (the DEQM examples ship each resource on its own) is imported
        # as a one-entry collection; its references resolve against the database.
        entries = [Entry("resource", "", document)]
    if errors:
        raise BundleRejected(errors)
    return BundleImport(name, entries, report).run()


def _resource_type(document: object) -> str:
    """The resourceType of a JSON object, or '' (absent, not a string, not an object)."""
    kind = document.get("resourceType") if isinstance(document, dict) else None
    return kind if isinstance(kind, str) else ""


def _flatten(document: dict, prefix: str, errors: list[str]) -> Iterator[Entry]:
    """Every resource of a Bundle, of Bundles nested in it, and of Bundles inside Parameters."""
    if document.get("resourceType") == "Parameters":
        parameters = document.get("parameter") or []
        if not isinstance(parameters, list):
            errors.append(f"{prefix}parameter: must be a list")
            return
        for index, parameter in enumerate(parameters):
            resource = parameter.get("resource") if isinstance(parameter, dict) else None
            if _resource_type(resource) in {
                "Bundle",
                "Parameters",
            }:
                yield from _flatten(resource, f"{prefix}parameter[{index}].resource.", errors)
        return
    entries = document.get("entry") or []
    if not isinstance(entries, list):
        errors.append(f"{prefix}entry: must be a list")
        return
    for index, entry in enumerate(entries):
        label = f"{prefix}entry[{index}]"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            request = entry.get("request") if isinstance(entry, dict) else None
            if request is not None and not isinstance(request, dict):
                errors.append(f"{label}.request: must be an object, not {json_kind(request)}")
                continue
            if request and request.get("method") == "DELETE":
                continue  # a transaction DELETE has no resource; deletes are not imported
            errors.append(f"{label}.resource: missing or not an object")
            continue
        kind = _resource_type(resource)
        if kind not in R4_RESOURCE_TYPES:
            found = resource.get("resourceType")
            errors.append(f"{label}.resource.resourceType: unknown resource type {found!r}")
            continue
        if kind in {"Bundle", "Parameters"}:
            yield from _flatten(resource, f"{label}.resource.", errors)
            continue
        yield Entry(label, str(entry.get("fullUrl") or ""), resource)


__all__ = [
    "BundleRejected",
    "FileReport",
    "RunCounts",
    "expand_paths",
    "import_documents",
    "import_paths",
]
