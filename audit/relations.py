"""Which patient a record belongs to, found from the models themselves.

A model touches a patient when it has a foreign key to the patient (consents, gaps, attempts,
work items …) or a foreign key to such a model (a gap's evidence and sources, an attempt's
appointment …). Nothing is listed by hand, so models added later by any app are covered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import cache

from django.apps import apps
from django.db import models


def _patient_model() -> type[models.Model]:
    return apps.get_model("patients", "Patient")


def _foreign_keys(model: type[models.Model]) -> list[models.Field]:
    return [
        field
        for field in model._meta.concrete_fields
        if field.is_relation and (field.many_to_one or field.one_to_one)
    ]


def _direct_patient_field(model: type[models.Model]) -> models.Field | None:
    patient = _patient_model()
    for field in _foreign_keys(model):
        if field.related_model is patient:
            return field
    return None


@cache
def patient_lookup(model: type[models.Model]) -> str | None:
    """The ORM lookup from `model` to its patient's id ("id" for the patient itself,
    "patient_id", "gap__patient_id"), or None when the model does not touch a patient."""
    patient = _patient_model()
    if model is patient:
        return "id"
    direct = _direct_patient_field(model)
    if direct is not None:
        return direct.attname
    for field in _foreign_keys(model):
        target = field.related_model
        if target is patient or target is model:
            continue
        via = _direct_patient_field(target)
        if via is not None:
            return f"{field.name}__{via.attname}"
    return None


def patient_ids_by_record(records: Iterable[models.Model]) -> dict[tuple[str, object], int]:
    """{(model label, pk): patient id} for the records that belong to a patient.

    Direct links are read from the rows; two-step links (evidence -> gap -> patient) cost one
    query per model, never one per row.
    """
    found: dict[tuple[str, object], int] = {}
    indirect: dict[type[models.Model], list] = defaultdict(list)
    for record in records:
        model = type(record)
        lookup = patient_lookup(model)
        if lookup is None:
            continue
        key = (model._meta.label_lower, record.pk)
        if lookup == "id":
            found[key] = record.pk
        elif "__" not in lookup:
            value = getattr(record, lookup)
            if value is not None:
                found[key] = value
        else:
            indirect[model].append(record.pk)
    for model, pks in indirect.items():
        label = model._meta.label_lower
        rows = model._default_manager.filter(pk__in=pks).values_list("pk", patient_lookup(model))
        for pk, patient_id in rows:
            if patient_id is not None:
                found[(label, pk)] = patient_id
    return found
