"""Audit history: who changed what, when, through which path and why.

Every operational model declares `history = HistoricalRecords()`. In admin and the API the
acting user comes from the request (simple-history's middleware). Services, commands and tasks
pass the actor explicitly and go through the helpers here, which also record the reason.

`QuerySet.update()`, `bulk_update()` and `bulk_create()` skip `save()` and so skip history, and
`QuerySet.delete()` removes rows with no reason recorded. On tracked models they may only run
inside the helpers below, which write the history rows in the same transaction.
`refuse_untracked_writes()`, installed when the project starts (CarehubConfig.ready), refuses
them everywhere else: in production, commands, tasks and tests alike.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator, Sequence
from functools import wraps
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections, models, router, transaction
from django.utils import timezone
from simple_history import register
from simple_history.models import HistoricalChanges, HistoricalRecords
from simple_history.utils import bulk_create_with_history as _bulk_create_with_history
from simple_history.utils import bulk_update_with_history as _bulk_update_with_history


class UntrackedWriteError(RuntimeError):
    """A set-based write on a tracked model outside carehub.history: a programming error."""


_inside_history_helper: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "carehub_inside_history_helper", default=False
)


def register_access_models() -> None:
    """Keep history of roles and organization grants (models that live in other packages)."""
    from django.contrib.auth.models import Group
    from guardian.models import GroupObjectPermission, UserObjectPermission

    for model in (Group, UserObjectPermission, GroupObjectPermission):
        if not hasattr(model, "history"):
            register(model, app="carehub")


def is_tracked(model: type[models.Model]) -> bool:
    """True for models with a history table (not for the history models themselves)."""
    return hasattr(model._meta, "simple_history_manager_attribute") and not issubclass(
        model, HistoricalChanges
    )


def tracked_models() -> list[type[models.Model]]:
    return [model for model in apps.get_models() if is_tracked(model)]


def history_tables() -> list[str]:
    return sorted(
        model._meta.db_table for model in apps.get_models() if issubclass(model, HistoricalChanges)
    )


def get_system_user():
    """The named user that background work acts as. Created by a migration; cannot sign in."""
    return get_user_model().objects.get(username=settings.CAREHUB_SYSTEM_USERNAME)


def stamp(obj: models.Model, *, actor, reason: str) -> models.Model:
    """Attach the acting user and the reason to the next history row `obj.save()` writes."""
    if actor is None:
        raise ValueError("Every change needs an acting user (the system user for automation)")
    obj._history_user = actor
    obj._change_reason = reason
    return obj


def save_with_history(
    obj: models.Model, *, actor, reason: str, update_fields: Sequence[str] | None = None
) -> models.Model:
    stamp(obj, actor=actor, reason=reason)
    obj.save(update_fields=update_fields)
    return obj


@contextlib.contextmanager
def _history_helper() -> Iterator[None]:
    token = _inside_history_helper.set(True)
    try:
        yield
    finally:
        _inside_history_helper.reset(token)


def bulk_create_with_history(
    objs: Sequence[models.Model], *, actor, reason: str, batch_size: int = 1000
) -> list[models.Model]:
    """Insert many rows and one history row each, in one transaction."""
    if not objs:
        return []
    model = type(objs[0])
    if connection_for(model).vendor == "postgresql":
        # PostgreSQL returns the new ids, so the history is copied from the table by one
        # statement instead of being built as a model instance per row (a first evaluation
        # opening 13,446 work items: 6.8 s in simple-history's bulk_create_with_history).
        with _history_helper(), transaction.atomic():
            created = model._default_manager.bulk_create(objs, batch_size=batch_size)
            record_history_for(
                model, [obj.pk for obj in created], actor=actor, reason=reason, history_type="+"
            )
        return created
    with _history_helper(), transaction.atomic():
        return _bulk_create_with_history(
            objs,
            model,
            batch_size=batch_size,
            default_user=actor,
            default_change_reason=reason,
        )


def bulk_update_with_history(
    objs: Sequence[models.Model],
    fields: Iterable[str],
    *,
    actor,
    reason: str,
    batch_size: int = 1000,
) -> int:
    """Update many rows and write one history row each, in one transaction."""
    if not objs:
        return 0
    model = type(objs[0])
    with _history_helper(), transaction.atomic():
        return _bulk_update_with_history(
            objs,
            model,
            list(fields),
            batch_size=batch_size,
            default_user=actor,
            default_change_reason=reason,
        )


def _refuse_tracked(model: type[models.Model]) -> None:
    if is_tracked(model):
        raise UntrackedWriteError(
            f"{model.__name__} keeps history; use bulk_create_with_history/bulk_update_with_history"
        )


def bulk_create_untracked(
    objs: Sequence[models.Model], *, batch_size: int = 2000
) -> list[models.Model]:
    """Batch insert for tables that have no history by design (imported clinical rows, value-set
    codes, computed results): their provenance is the run record that wrote them."""
    if not objs:
        return []
    model = type(objs[0])
    _refuse_tracked(model)
    return model._default_manager.bulk_create(objs, batch_size=batch_size)


def bulk_update_untracked(
    objs: Sequence[models.Model], fields: Iterable[str], *, batch_size: int = 2000
) -> int:
    """Batch update for the same history-free tables as bulk_create_untracked."""
    if not objs:
        return 0
    model = type(objs[0])
    _refuse_tracked(model)
    return model._default_manager.bulk_update(objs, list(fields), batch_size=batch_size)


def update_with_history(queryset: models.QuerySet, *, actor, reason: str, **values: Any) -> int:
    """Set-based `UPDATE ... SET` that still leaves a history row per changed row.

    The rows are locked first so the history rows describe exactly what was written.
    """
    model = queryset.model
    with _history_helper(), transaction.atomic():
        ids = list(queryset.select_for_update().values_list("pk", flat=True))
        if not ids:
            return 0
        changed = model._default_manager.filter(pk__in=ids).update(**values)
        history = getattr(model, model._meta.simple_history_manager_attribute)
        history.bulk_history_create(
            list(model._default_manager.filter(pk__in=ids)),
            update=True,
            default_user=actor,
            default_change_reason=reason,
        )
        return changed


def connection_for(model: type[models.Model]):
    return connections[router.db_for_write(model)]


def _history_columns(model: type[models.Model]) -> tuple[str, list[str]]:
    """The history table and the columns it copies from the tracked table."""
    history_model = getattr(model, model._meta.simple_history_manager_attribute).model
    copied = [
        field.column
        for field in history_model._meta.concrete_fields
        if not field.name.startswith("history_")
    ]
    return history_model._meta.db_table, copied


def record_history(
    model: type[models.Model],
    *,
    where: str,
    params: Sequence[Any] = (),
    actor,
    reason: str,
    history_type: str = "~",
) -> int:
    """Set-based history for rows just written with SQL: one `INSERT … SELECT` copies every row
    of `model` matching `where` (SQL on its table, `%s` parameters) into its history table, with
    the actor, the reason and the history type ("+" created, "~" changed)."""
    if actor is None:
        raise ValueError("Every change needs an acting user (the system user for automation)")
    if history_type not in ("+", "~"):
        raise ValueError("history_type is '+' (created) or '~' (changed)")
    quote = connection_for(model).ops.quote_name
    table, copied = _history_columns(model)
    columns = ", ".join(quote(c) for c in copied)
    # Table and column names come from model metadata; values are parameters.
    sql = (
        f"INSERT INTO {quote(table)} ({columns}, history_date, history_change_reason, "  # noqa: S608
        f"history_type, history_user_id) SELECT {columns}, %s, %s, %s, %s "
        f"FROM {quote(model._meta.db_table)} WHERE {where}"
    )
    with _history_helper(), transaction.atomic(), connection_for(model).cursor() as cursor:
        cursor.execute(sql, [timezone.now(), reason, history_type, actor.pk, *params])
        return cursor.rowcount


def _with_history_cte(model: type[models.Model], write_sql: str, history_type: str) -> str:
    """PostgreSQL: `write_sql` (an INSERT or UPDATE ending in `RETURNING <table>.*`) and the
    history rows of what it wrote as one statement (a data-modifying CTE), returning the
    written primary keys. The history copies the rows as the statement left them, so it is
    exactly what `record_history` would copy afterwards, without sending the ids back and
    forth. Its parameters follow `write_sql`'s: history date, reason, type, actor."""
    quote = connection_for(model).ops.quote_name
    table, copied = _history_columns(model)
    columns = ", ".join(quote(c) for c in copied)
    return (
        f"WITH written AS ({write_sql}), history AS (INSERT INTO {quote(table)} ({columns}, "  # noqa: S608
        "history_date, history_change_reason, history_type, history_user_id) "
        f"SELECT {columns}, %s, %s, '{history_type}', %s FROM written) "
        f"SELECT {quote(model._meta.pk.column)} FROM written"
    )


def record_history_for(
    model: type[models.Model], pks: Sequence[int], *, actor, reason: str, history_type: str = "~"
) -> int:
    """`record_history` for a list of primary keys (in batches the databases accept)."""
    written = 0
    conn = connection_for(model)
    pk = conn.ops.quote_name(model._meta.pk.column)
    if conn.vendor == "postgresql":
        return record_history(
            model,
            where=f"{pk} = ANY(%s)",
            params=[list(pks)],
            actor=actor,
            reason=reason,
            history_type=history_type,
        )
    for start in range(0, len(pks), 5000):
        batch = list(pks[start : start + 5000])
        written += record_history(
            model,
            where=f"{pk} IN ({', '.join(['%s'] * len(batch))})",
            params=batch,
            actor=actor,
            reason=reason,
            history_type=history_type,
        )
    return written


def insert_select_with_history(
    model: type[models.Model],
    columns: Sequence[str],
    select_sql: str,
    params: Sequence[Any],
    *,
    actor,
    reason: str,
    skip_conflicts: bool = False,
) -> list[int]:
    """`INSERT INTO <table> (columns) <select_sql>` and a history row per inserted row, in one
    transaction: set-based creation that keeps the audit. With `skip_conflicts`, rows that
    would break a unique constraint are left out (someone else wrote them first). Returns the
    new primary keys. On PostgreSQL the rows and their history are one statement."""
    if actor is None:
        raise ValueError("Every change needs an acting user (the system user for automation)")
    conn = connection_for(model)
    quote = conn.ops.quote_name
    table = quote(model._meta.db_table)
    insert = (
        f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "
        f"{select_sql}{' ON CONFLICT DO NOTHING' if skip_conflicts else ''}"
    )
    with _history_helper(), transaction.atomic(), conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            cursor.execute(
                _with_history_cte(model, f"{insert} RETURNING {table}.*", "+"),
                [*params, timezone.now(), reason, actor.pk],
            )
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(f"{insert} RETURNING {quote(model._meta.pk.column)}", list(params))
        created = [row[0] for row in cursor.fetchall()]
        record_history_for(model, created, actor=actor, reason=reason, history_type="+")
    return created


def update_from_with_history(
    model: type[models.Model],
    *,
    assignments: str,
    from_sql: str,
    where: str,
    params: Sequence[Any],
    actor,
    reason: str,
) -> list[int]:
    """`UPDATE <table> SET <assignments> FROM <from_sql> WHERE <where>` and a history row per
    updated row, in one transaction: a set-based change whose values come from another table
    (in `where`, name the updated table by its table name). Returns the updated primary keys.
    On PostgreSQL the update and its history are one statement."""
    if actor is None:
        raise ValueError("Every change needs an acting user (the system user for automation)")
    conn = connection_for(model)
    table = conn.ops.quote_name(model._meta.db_table)
    pk = conn.ops.quote_name(model._meta.pk.column)
    update = f"UPDATE {table} SET {assignments} FROM {from_sql} WHERE {where}"  # noqa: S608
    with _history_helper(), transaction.atomic(), conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            cursor.execute(
                _with_history_cte(model, f"{update} RETURNING {table}.*", "~"),
                [*params, timezone.now(), reason, actor.pk],
            )
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(f"{update} RETURNING {table}.{pk}", list(params))
        updated = [row[0] for row in cursor.fetchall()]
        record_history_for(model, updated, actor=actor, reason=reason, history_type="~")
    return updated


def copy_with_history(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    actor,
    reason: str,
) -> int:
    """PostgreSQL COPY of many rows into a tracked table, then their history rows in one
    `INSERT … SELECT`, in one transaction. The table is locked against other writers for the
    transaction, so "ids above the highest before the copy" are exactly the copied rows."""
    conn = connection_for(model)
    if conn.vendor != "postgresql":
        raise NotImplementedError("copy_with_history needs PostgreSQL (COPY)")
    quote = conn.ops.quote_name
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    with _history_helper(), transaction.atomic(), conn.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(f"SELECT COALESCE(MAX({pk}), 0) FROM {table}")  # noqa: S608
        (before,) = cursor.fetchone()
        copied = 0
        with cursor.copy(
            f"COPY {table} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
                copied += 1
        record_history(
            model,
            where=f"{pk} > %s",
            params=[before],
            actor=actor,
            reason=reason,
            history_type="+",
        )
    return copied


# What to use instead of each refused QuerySet method on a tracked model.
_HISTORY_KEEPING_WAY = {
    "update": "carehub.history.update_with_history(queryset, actor=..., reason=..., **values)",
    "bulk_update": "carehub.history.bulk_update_with_history(objs, fields, actor=..., reason=...)",
    "bulk_create": "carehub.history.bulk_create_with_history(objs, actor=..., reason=...)",
    "delete": "the model's service (rows are corrected by a new change, not deleted in bulk)",
}


def _refusing(name: str, original):
    @wraps(original)
    def method(self, *args, **kwargs):
        if is_tracked(self.model) and not _inside_history_helper.get():
            raise UntrackedWriteError(
                f"{self.model._meta.label}: QuerySet.{name}() would change rows without a "
                f"history row (who and why); use {_HISTORY_KEEPING_WAY[name]}"
            )
        return original(self, *args, **kwargs)

    method.carehub_refuses_untracked_writes = True
    return method


def refuse_untracked_writes() -> None:
    """Make `update()`, `bulk_update()`, `bulk_create()` and `delete()` refuse tracked models
    outside the helpers above. Idempotent; called by CarehubConfig.ready().

    Installed on Django's QuerySet itself rather than on each tracked model's managers: that
    also covers related managers (`patient.gaps.update(...)`), `_base_manager`, custom
    querysets and managers Django rebuilds after its model cache is cleared. Models without
    history (migration-state models in RunPython, simple-history's history models, django-q2's
    tables) pass straight through, so migrations and libraries keep working.
    """
    for name in _HISTORY_KEEPING_WAY:
        original = getattr(models.QuerySet, name)
        if not getattr(original, "carehub_refuses_untracked_writes", False):
            setattr(models.QuerySet, name, _refusing(name, original))


__all__ = [
    "HistoricalRecords",
    "bulk_create_with_history",
    "bulk_update_with_history",
    "copy_with_history",
    "get_system_user",
    "insert_select_with_history",
    "record_history",
    "record_history_for",
    "refuse_untracked_writes",
    "save_with_history",
    "stamp",
    "update_from_with_history",
    "update_with_history",
]
