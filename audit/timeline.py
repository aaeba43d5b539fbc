"""Events for auditors: history rows (changes) and access-log rows (PHI reads), merged in order.

Set-based: one query per history table that touches the patient (or the user), one query for
their origins and one for the reads; never one per row. Old -> new values come from comparing
each history row with the previous row of the same record, so the previous row is fetched even
when it falls before the requested dates.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, models
from django.db.models import Q

from audit.models import AccessLog, HistoryOrigin
from audit.relations import patient_lookup
from carehub.history import tracked_models

CHANGE = "change"
READ = "read"
KINDS = (CHANGE, READ)

# The five paths domain.md 7 names, plus "command" for a named person running a command.
ADMIN, API, IMPORT, AUTOMATION, SELF_SERVICE, COMMAND = (
    "admin",
    "api",
    "import",
    "automation",
    "self-service",
    "command",
)
PATHS = (ADMIN, API, IMPORT, AUTOMATION, SELF_SERVICE, COMMAND)

_CONSENT_PATHS = {
    "admin": ADMIN,
    "api": API,
    "self_service": SELF_SERVICE,
    "inbound_sms": SELF_SERVICE,
    "import": IMPORT,
    "system": AUTOMATION,
}
_ORIGIN_PATHS = {"admin": ADMIN, "api": API, "self_service": SELF_SERVICE}
_IMPORT_REASON = re.compile(r"\bimport\b|\bgap list\b", re.IGNORECASE)
_HISTORY_TYPES = {"+": "created", "~": "changed", "-": "deleted"}


@dataclass
class Event:
    at: dt.datetime
    kind: str  # CHANGE or READ
    record: str  # "Care gap #12"
    model: str  # app_label.model
    record_id: object
    action: str  # created / changed / deleted, or the read's action
    actor: str
    actor_id: int | None
    path: str
    reason: str = ""
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (field, old, new)
    patient_id: int | None = None

    def as_dict(self) -> dict:
        return {
            "at": self.at.isoformat(),
            "kind": self.kind,
            "record": self.record,
            "model": self.model,
            "record_id": self.record_id,
            "action": self.action,
            "actor": self.actor,
            "path": self.path,
            "reason": self.reason,
            "changes": [{"field": f, "old": o, "new": n} for f, o, n in self.changes],
        }

    @property
    def changes_text(self) -> str:
        return "; ".join(f"{name}: {old} -> {new}" for name, old, new in self.changes)


def _display(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _compared_fields(history_model: type[models.Model]) -> list[models.Field]:
    return [
        f
        for f in history_model._meta.concrete_fields
        if not f.name.startswith("history_") and f.name not in ("id", "updated_at")
    ]


def history_path(row, *, system_user_id: int | None, origin: str | None) -> str:
    """admin, API, import, automation, self-service or command, from what the row holds."""
    recorded = getattr(row, "path", None)
    if isinstance(recorded, str) and recorded in _CONSENT_PATHS:
        return _CONSENT_PATHS[recorded]
    if row.history_user_id is None:
        return SELF_SERVICE  # the only writes without a user are the patient's own
    if row.history_user_id == system_user_id:
        return AUTOMATION
    if _IMPORT_REASON.search(row.history_change_reason or ""):
        return IMPORT
    if origin is not None:
        return _ORIGIN_PATHS.get(origin, origin)
    return COMMAND


def _actor_name(user, *, path: str) -> str:
    if user is None:
        return "Patient (self-service)" if path == SELF_SERVICE else "—"
    return user.username


def _system_user_id() -> int | None:
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(username=settings.CAREHUB_SYSTEM_USERNAME)
        .values_list("pk", flat=True)
        .first()
    )


def _origins(history_model, ids: list) -> dict:
    if not ids:
        return {}
    found = {}
    table = history_model._meta.db_table
    for start in range(0, len(ids), 5000):
        batch = ids[start : start + 5000]
        found.update(
            HistoryOrigin.objects.filter(history_table=table, history_id__in=batch).values_list(
                "history_id", "channel"
            )
        )
    return found


def changes_from(
    model: type[models.Model],
    history_rows: Iterable,
    *,
    start: dt.datetime | None,
    end: dt.datetime | None,
    actor_id: int | None = None,
    system_user_id: int | None,
) -> list[Event]:
    """Events of `history_rows` (all rows of some records, any order), diffed per record.
    Rows outside [start, end) or by another actor serve only as the "before" of the next."""
    history_model = model.history.model
    compared = _compared_fields(history_model)
    lookup = patient_lookup(model)
    rows = sorted(history_rows, key=lambda r: (r.id, r.history_date, r.history_id))
    origins = _origins(history_model, [r.history_id for r in rows])
    name = model._meta.verbose_name.capitalize()
    events = []
    previous = None
    for row in rows:
        before = previous if previous is not None and previous.id == row.id else None
        previous = row
        if start is not None and row.history_date < start:
            continue
        if end is not None and row.history_date >= end:
            continue
        if actor_id is not None and row.history_user_id != actor_id:
            continue
        changes = []
        for f in compared:
            new = getattr(row, f.attname)
            old = getattr(before, f.attname) if before is not None else None
            if before is None and new in (None, "", [], {}):
                continue
            if before is None or old != new:
                changes.append((f.name, _display(old), _display(new)))
        path = history_path(row, system_user_id=system_user_id, origin=origins.get(row.history_id))
        patient_id = None
        if lookup == "id":
            patient_id = row.id
        elif lookup and "__" not in lookup:
            patient_id = getattr(row, lookup)
        events.append(
            Event(
                at=row.history_date,
                kind=CHANGE,
                record=f"{name} #{row.id}",
                model=model._meta.label_lower,
                record_id=row.id,
                action=_HISTORY_TYPES.get(row.history_type, row.history_type),
                actor=_actor_name(row.history_user, path=path),
                actor_id=row.history_user_id,
                path=path,
                reason=row.history_change_reason or "",
                changes=changes,
                patient_id=patient_id,
            )
        )
    return events


def patient_models() -> list[type[models.Model]]:
    """Every tracked model that touches a patient (the patient, gaps, evidence, consents,
    attempts, appointments, work items … whichever exist)."""
    return [m for m in tracked_models() if patient_lookup(m) is not None]


def contains_id(field: str, value: int) -> Q:
    """`field` (a JSON list of ids) contains `value`."""
    if connection.vendor == "postgresql":
        return Q(**{f"{field}__contains": [value]})
    # SQLite has no JSON containment; match the id as a whole element of the list.
    return Q(**{f"{field}__regex": rf"[\[ ,]{value}[,\]]"})


def reads_as_events(entries: Iterable[AccessLog]) -> list[Event]:
    path_of = {"admin": ADMIN, "api": API, "command": COMMAND}
    return [
        Event(
            at=entry.at,
            kind=READ,
            record=f"{entry.get_action_display()}: {entry.model} ({entry.object_count})",
            model=entry.model,
            record_id=entry.pk,
            action=entry.action,
            actor=entry.user.username,
            actor_id=entry.user_id,
            path=path_of.get(entry.channel, entry.channel),
            reason=f"{entry.path} from {entry.client_address or 'unknown address'}",
        )
        for entry in entries
    ]


def ordered(events: list[Event]) -> list[Event]:
    return sorted(events, key=lambda e: (e.at, 0 if e.kind == CHANGE else 1, str(e.record_id)))


def patient_timeline(
    patient,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    kinds: Iterable[str] = KINDS,
    actor_id: int | None = None,
    record_type: str = "",
) -> list[Event]:
    """Every change to a record of `patient` and every read of them, oldest first; narrowed
    to one record type (app_label.model) when given."""
    kinds = set(kinds)
    system_user_id = _system_user_id()
    events: list[Event] = []
    if CHANGE in kinds:
        for model in patient_models():
            if record_type and model._meta.label_lower != record_type:
                continue
            history_model = model.history.model
            rows = history_model.objects.filter(**{patient_lookup(model): patient.pk})
            if end is not None:
                rows = rows.filter(history_date__lt=end)
            events += changes_from(
                model,
                rows.select_related("history_user"),
                start=start,
                end=end,
                actor_id=actor_id,
                system_user_id=system_user_id,
            )
    if READ in kinds:
        # Older rows predate patient_ids; a read of the patient record itself still shows.
        reads = AccessLog.objects.filter(organization_id=patient.organization_id).filter(
            contains_id("patient_ids", patient.pk)
            | (Q(model="patients.patient") & contains_id("object_ids", patient.pk))
        )
        if start is not None:
            reads = reads.filter(at__gte=start)
        if end is not None:
            reads = reads.filter(at__lt=end)
        if actor_id is not None:
            reads = reads.filter(user_id=actor_id)
        if record_type:
            reads = reads.filter(model=record_type)
        events += reads_as_events(reads.select_related("user"))
    return ordered(events)


def user_activity(
    actor,
    *,
    organization_ids: list[int],
    start: dt.datetime | None,
    end: dt.datetime | None,
    limit: int = 5000,
) -> list[Event]:
    """Everything `actor` changed and read in the given organizations between two instants:
    history rows by them (of every tracked model that belongs to an organization) and their
    access-log rows."""
    system_user_id = _system_user_id()
    events: list[Event] = []
    for model in tracked_models():
        org_lookup = organization_lookup(model)
        if org_lookup is None:
            continue
        history_model = model.history.model
        mine = history_model.objects.filter(
            history_user_id=actor.pk, **{f"{org_lookup}__in": organization_ids}
        )
        if start is not None:
            mine = mine.filter(history_date__gte=start)
        if end is not None:
            mine = mine.filter(history_date__lt=end)
        record_ids = list(mine.order_by().values_list("id", flat=True).distinct()[:limit])
        if not record_ids:
            continue
        # The records' earlier rows too (by anyone), for the old values.
        rows = history_model.objects.filter(id__in=record_ids).select_related("history_user")
        if end is not None:
            rows = rows.filter(history_date__lt=end)
        events += changes_from(
            model, rows, start=start, end=end, actor_id=actor.pk, system_user_id=system_user_id
        )
    reads = AccessLog.objects.filter(user=actor, organization_id__in=organization_ids)
    if start is not None:
        reads = reads.filter(at__gte=start)
    if end is not None:
        reads = reads.filter(at__lt=end)
    events += reads_as_events(reads.select_related("user")[:limit])
    return ordered(events)[-limit:]


def organization_lookup(model: type[models.Model]) -> str | None:
    """The ORM lookup from `model` to its organization's id, or None."""
    from patients.models import Organization

    if model is Organization:
        return "id"
    by_target = defaultdict(list)
    for f in model._meta.concrete_fields:
        if f.is_relation and (f.many_to_one or f.one_to_one):
            by_target[f.related_model].append(f)
    if Organization in by_target:
        return by_target[Organization][0].attname
    lookup = patient_lookup(model)
    if lookup == "id":
        return None
    if lookup is not None:  # "patient_id" -> "patient__organization_id"
        return lookup.removesuffix("_id") + "__organization_id"
    return None
