"""Tamper evidence: new rows of every audit table are sealed into a per-table SHA-256 hash chain.

Each row is hashed over a canonical serialization (every column, sorted by name, as JSON).
A seal covers the rows with ids in (previous seal's last id, last id]; its digest chains every
row hash onto the previous seal's digest, and it keeps each (id, row hash) so the verifier can
name each row that was changed, removed or inserted after sealing.

Rows are sealed only once they have settled (older than SETTLE): ids are taken from a sequence
before commit, so a slow transaction can commit a lower id after a higher one; sealing past it
would later show it as "inserted". The digests live in the database they protect: somebody who
owns the database can rewrite the rows and the seals together, which the latest digests,
printed by `verify_audit_chain` and kept elsewhere (a ticket, a log shipped off the machine),
would still reveal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.apps import apps
from django.db import connection, transaction
from django.utils import timezone

from audit.models import Seal

ROWS_PER_SEAL = 20_000
SETTLE = dt.timedelta(minutes=5)
GENESIS = "0" * 64
SEAL_LOCK_KEY = 0x5EA1_C4A1
_ENTRY = 8 + 32  # id (8 bytes, big-endian) + SHA-256 of the row


def sealed_tables() -> dict[str, tuple[str, str | None]]:
    """{table: (primary-key column, column with the row's instant)} of every audit table.
    Many-to-many history rows have no instant of their own: they are written in the
    transaction of their history row, and are sealed as they come."""
    from audit.immutability import protected_tables

    by_table = {m._meta.db_table: m for m in apps.get_models()}
    found = {}
    for table in protected_tables():
        model = by_table.get(table)
        if model is None or model is Seal:
            continue
        names = {f.column for f in model._meta.concrete_fields}
        instant = next((c for c in ("history_date", "at") if c in names), None)
        found[table] = (model._meta.pk.column, instant)
    return found


def _plain(value):
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview | bytearray):
        return bytes(value).hex()
    if isinstance(value, float):
        return repr(value)
    return value


def row_hash(columns: list[str], row) -> bytes:
    canonical = json.dumps(
        {name: _plain(value) for name, value in zip(columns, row, strict=True)},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).digest()


def chain(previous_digest: str, entries: bytes) -> str:
    digest = bytes.fromhex(previous_digest)
    for start in range(0, len(entries), _ENTRY):
        digest = hashlib.sha256(digest + entries[start : start + _ENTRY]).digest()
    return digest.hex()


def _rows(table: str, pk: str, *, after: int, up_to: int | None, limit: int | None):
    """(columns, rows) of `table` with after < pk <= up_to, in pk order."""
    quote = connection.ops.quote_name
    sql = f"SELECT * FROM {quote(table)} WHERE {quote(pk)} > %s"  # noqa: S608 (names from models)
    params: list = [after]
    if up_to is not None:
        sql += f" AND {quote(pk)} <= %s"
        params.append(up_to)
    sql += f" ORDER BY {quote(pk)}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [c[0] for c in cursor.description]
        return columns, cursor.fetchall()


def _settled(at, cutoff: dt.datetime) -> bool:
    if isinstance(at, str):
        at = dt.datetime.fromisoformat(at)
    if timezone.is_naive(at):  # SQLite stores UTC without the offset
        at = timezone.make_aware(at, dt.UTC)
    return at < cutoff


def _seal_batch(table: str, pk: str, instant: str | None, cutoff: dt.datetime) -> Seal | None:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # One sealer at a time: two would both chain onto the same last seal. An advisory
            # lock, since the application's role may not LOCK an append-only table.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
        last = Seal.objects.filter(table=table).order_by("-last_id").defer("row_digests").first()
        after = last.last_id if last else 0
        columns, rows = _rows(table, pk, after=after, up_to=None, limit=ROWS_PER_SEAL)
        pk_at = columns.index(pk)
        instant_at = columns.index(instant) if instant else None
        entries = bytearray()
        count = 0
        for row in rows:
            if instant_at is not None and not _settled(row[instant_at], cutoff):
                break  # a lower id may still be committing
            entries += int(row[pk_at]).to_bytes(8, "big") + row_hash(columns, row)
            count += 1
        if not count:
            return None
        previous_digest = last.digest if last else GENESIS
        return Seal.objects.create(
            table=table,
            first_id=int.from_bytes(entries[:8], "big"),
            last_id=int.from_bytes(entries[-_ENTRY : -_ENTRY + 8], "big"),
            row_count=count,
            previous=last,
            previous_digest=previous_digest,
            digest=chain(previous_digest, bytes(entries)),
            row_digests=bytes(entries),
        )


def seal_new_rows(*, settle: dt.timedelta = SETTLE) -> list[Seal]:
    """Seal every settled, not yet sealed row of every audit table. Idempotent."""
    cutoff = timezone.now() - settle
    made = []
    for table, (pk, instant) in sealed_tables().items():
        while True:
            seal = _seal_batch(table, pk, instant, cutoff)
            if seal is None:
                break
            made.append(seal)
            if seal.row_count < ROWS_PER_SEAL:
                break
    return made


@dataclass(frozen=True)
class Finding:
    table: str
    row_id: int | None
    problem: str  # changed / removed / inserted / seal altered / chain broken
    seal_id: int

    def __str__(self) -> str:
        row = f" row {self.row_id}" if self.row_id is not None else ""
        return f"{self.table}{row}: {self.problem} (seal #{self.seal_id})"


def _entries(seal: Seal) -> Iterator[tuple[int, bytes]]:
    data = bytes(seal.row_digests)
    for start in range(0, len(data), _ENTRY):
        yield int.from_bytes(data[start : start + 8], "big"), data[start + 8 : start + _ENTRY]


def verify_chain() -> tuple[list[Finding], dict[str, str]]:
    """Every difference between the audit tables and their seals, and each table's latest
    digest (to be kept outside the database)."""
    findings: list[Finding] = []
    heads: dict[str, str] = {}
    for table, (pk, _instant) in sealed_tables().items():
        previous = None
        for seal in Seal.objects.filter(table=table).order_by("last_id").iterator(chunk_size=50):
            expected_previous = previous.digest if previous else GENESIS
            if seal.previous_digest != expected_previous or seal.previous_id != (
                previous.pk if previous else None
            ):
                findings.append(Finding(table, None, "chain broken", seal.pk))
            if chain(seal.previous_digest, bytes(seal.row_digests)) != seal.digest:
                findings.append(Finding(table, None, "seal altered", seal.pk))
            after = previous.last_id if previous else 0
            columns, rows = _rows(table, pk, after=after, up_to=seal.last_id, limit=None)
            pk_at = columns.index(pk)
            current = {int(row[pk_at]): row_hash(columns, row) for row in rows}
            for row_id, sealed_hash in _entries(seal):
                now = current.pop(row_id, None)
                if now is None:
                    findings.append(Finding(table, row_id, "removed", seal.pk))
                elif now != sealed_hash:
                    findings.append(Finding(table, row_id, "changed", seal.pk))
            findings += [Finding(table, row_id, "inserted", seal.pk) for row_id in sorted(current)]
            previous = seal
        if previous is not None:
            heads[table] = previous.digest
    return findings, heads
