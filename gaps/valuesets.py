"""Load VSAC FHIR ValueSets and pick, per measure version, which loaded expansion to use.

A value set is identified by (OID, version, expansion identifier): the same OID and version can
come with different expansions (the MP2025 and MP2026 content repositories disagree). A measure
version names an expansion cutoff date; per OID the latest complete expansion on or before the
cutoff wins (a truncated file, `expansion.total` > number of codes, only when nothing else is
loaded).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from carehub.errors import DomainError
from carehub.history import bulk_create_untracked
from carehub.safejson import UnsafeJSON, load_json
from gaps.models import ValueSet, ValueSetCode
from patients.fhir.importer import expand_paths
from patients.fhir.reading import EntryError, read_list, read_object, read_string
from patients.fhir.resources import canonical_system
from patients.fhir.timing import TimingError, parse_datetime

OID_PREFIX = "http://cts.nlm.nih.gov/fhir/ValueSet/"
LOCAL_PREFIX = "urn:carehub:"


@dataclass
class LoadReport:
    loaded: int = 0
    unchanged: int = 0
    codes: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _value_sets_in(document: dict, label: str) -> Iterable[tuple[str, dict]]:
    kind = document.get("resourceType") if isinstance(document, dict) else None
    if kind == "ValueSet":
        yield label, document
    elif kind == "Bundle":
        for index, entry in enumerate(_read(read_list, document.get("entry"), f"{label}entry")):
            entry = _read(read_object, entry, f"{label}entry[{index}]")
            resource = _read(read_object, entry.get("resource"), f"{label}entry[{index}].resource")
            yield from _value_sets_in(resource, f"{label}entry[{index}].resource.")
    else:
        raise DomainError(f"{label}resourceType: expected ValueSet or Bundle, got {kind!r}")


def _read(reader, value, where: str, **options):
    """A typed FHIR reader whose complaint becomes the loader's error, naming the element."""
    try:
        return reader(value, where, **options)
    except EntryError as error:
        raise DomainError(str(error)) from None


def _parse(value_set: dict, where: str) -> dict:
    # url, version and expansion identifier identify the set: refused when too long, never cut.
    url = _read(read_string, value_set.get("url"), f"{where}url", max_length=300)
    oid = url.removeprefix(OID_PREFIX) if url.startswith(OID_PREFIX) else ""
    if url.startswith(LOCAL_PREFIX):
        oid = url  # a customer-written set, e.g. a measure's direct-reference CPT codes
    if not oid:
        oid = _read(read_string, value_set.get("id"), f"{where}id").split("-")[0]
    if not oid:
        raise DomainError(f"{where}url: cannot tell the value set's OID")
    if len(oid) > 128:
        raise DomainError(f"{where}url: the OID is longer than 128 characters")
    expansion = value_set.get("expansion")
    if not isinstance(expansion, dict) or not isinstance(expansion.get("contains"), list):
        raise DomainError(
            f"{where}expansion: ValueSet {oid} has no expansion.contains; load an expanded "
            "file (VSAC $expand) instead"
        )
    codes = {}
    for index, item in enumerate(expansion["contains"]):
        at = f"{where}expansion.contains[{index}]"
        if not isinstance(item, dict) or not item.get("system") or not item.get("code"):
            raise DomainError(f"{at}: needs system and code")
        # System and code identify the code: too long is refused, never cut into another code.
        system = _read(read_string, item["system"], f"{at}.system", max_length=200)
        code = _read(read_string, item["code"], f"{at}.code", max_length=64)
        display = _read(read_string, item.get("display"), f"{at}.display")
        codes[(canonical_system(system), code)] = display[:500]
    timestamp = None
    if expansion.get("timestamp"):
        try:
            timestamp = parse_datetime(expansion["timestamp"]).at
        except TimingError as error:
            raise DomainError(f"{where}expansion.timestamp: {error}") from None
    total = expansion.get("total")
    version = _read(read_string, value_set.get("version"), f"{where}version", max_length=64)
    identifier = _read(
        read_string, expansion.get("identifier"), f"{where}expansion.identifier", max_length=200
    )
    return {
        "oid": oid,
        "version": version,
        "url": url,
        "name": str(value_set.get("name") or "")[:200],
        "title": str(value_set.get("title") or "")[:300],
        "expansion_identifier": identifier,
        "expansion_timestamp": timestamp,
        "declared_total": total if isinstance(total, int) and 0 <= total < 2**31 else None,
        "codes": codes,
    }


def load_valuesets(paths: Iterable[str | Path], *, actor, partial: bool = False) -> LoadReport:
    """Load every ValueSet in the files/folders; all-or-nothing unless `partial`."""
    report = LoadReport()
    parsed: list[tuple[str, dict]] = []
    for path in expand_paths(paths):
        try:
            document = load_json(path.read_bytes())
        except UnsafeJSON as error:
            report.errors.append(f"{path}: {error}")
            continue
        try:
            for where, value_set in _value_sets_in(document, ""):
                row = _parse(value_set, where)
                row["source_file"] = str(path)[-500:]
                row["hash"] = hashlib.sha256(
                    json.dumps(sorted(row["codes"])).encode() + row["expansion_identifier"].encode()
                ).hexdigest()
                parsed.append((str(path), row))
        except DomainError as error:
            report.errors.append(f"{path}: {error}")
    if report.errors and not partial:
        return report
    with transaction.atomic():
        for _path, row in parsed:
            _store(row, actor, report)
    for _path, row in parsed:
        if row["declared_total"] is not None and row["declared_total"] > len(row["codes"]):
            report.warnings.append(
                f"{row['oid']} {row['version']}: expansion truncated "
                f"({len(row['codes'])} of {row['declared_total']} codes); a complete expansion "
                "of the same OID is preferred when loaded"
            )
    return report


def _store(row: dict, actor, report: LoadReport) -> None:
    value_set, created = ValueSet.objects.get_or_create(
        oid=row["oid"],
        version=row["version"],
        expansion_identifier=row["expansion_identifier"],
        defaults={"content_hash": "", "loaded_by": actor, "url": row["url"]},
    )
    if not created and value_set.content_hash == row["hash"]:
        report.unchanged += 1
        return
    for name in ("url", "name", "title", "expansion_timestamp", "declared_total", "source_file"):
        setattr(value_set, name, row[name])
    value_set.content_hash = row["hash"]
    value_set.code_count = len(row["codes"])
    value_set.loaded_by = actor
    value_set.save()
    value_set.codes.all().delete()
    bulk_create_untracked(
        [
            ValueSetCode(value_set=value_set, system=system, code=code, display=display)
            for (system, code), display in row["codes"].items()
        ]
    )
    report.loaded += 1
    report.codes += len(row["codes"])


@dataclass
class Selection:
    value_set_ids: dict[str, int]  # OID -> ValueSet.pk
    missing: list[str]
    warnings: list[str]


def select_value_sets(oids: Iterable[str], cutoff: dt.date | None) -> Selection:
    """Per OID, the expansion a measure version uses (one query)."""
    oids = sorted(set(oids))
    candidates: dict[str, list[ValueSet]] = {}
    for value_set in ValueSet.objects.filter(oid__in=oids).only(
        "id", "oid", "version", "expansion_timestamp", "declared_total", "code_count"
    ):
        candidates.setdefault(value_set.oid, []).append(value_set)
    chosen, missing, warnings = {}, [], []
    epoch = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
    for oid in oids:
        rows = candidates.get(oid)
        if not rows:
            missing.append(oid)
            continue

        def rank(v: ValueSet):
            stamp = v.expansion_timestamp or epoch
            in_time = cutoff is None or stamp.date() <= cutoff
            return (not v.truncated, in_time, stamp if in_time else -stamp.timestamp())

        best = max(rows, key=rank)
        if best.truncated:
            warnings.append(f"value set {oid} is truncated; results may miss codes")
        chosen[oid] = best.pk
    return Selection(chosen, missing, warnings)
