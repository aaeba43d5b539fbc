"""The engine loading the next chunk in a background thread while it evaluates the current one
(`evaluate_chunks(prefetch=True)`): same populations as one evaluation of the whole panel, the
loader's errors reach the caller, and no thread or database connection outlives the iteration.

PostgreSQL only: the loader reads over its own connection, which sees committed rows only, so
the tests that prefetch commit their data (transactional tests).
"""

import datetime as dt
import io
import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection

import gaps.engine
from gaps.engine import evaluate_chunks, evaluate_many
from gaps.measures import pick_version
from patients.models import Organization
from tests.gaps.conftest import TESTCASES, VALUESETS_2024, needs_shared

pytestmark = [needs_shared, pytest.mark.postgres]

PERIOD = (dt.date(2025, 1, 1), dt.date(2025, 12, 31))
MEASURES = ["CMS130", "CMS125", "CMS165"]
LOADER = "gap-engine-loader"


def _deck(slug: str) -> Organization:
    call_command("create_organization", slug, name=slug, stdout=io.StringIO())
    call_command(
        "import_fhir",
        str(TESTCASES / "qicore-2024"),
        organization=slug,
        no_progress=True,
        stdout=io.StringIO(),
    )
    return Organization.objects.get(slug=slug)


def _definitions():
    return [pick_version(cms, 2025)[0] for cms in MEASURES]


def _flat(definitions, evaluations) -> dict:
    return {
        (definition.cms, r.patient_id): (
            r.ip,
            r.denom,
            r.denex,
            r.numer,
            [e.as_json() for e in r.evidence],
        )
        for definition, evaluation in zip(definitions, evaluations, strict=True)
        for r in evaluation.results
    }


def _loader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(LOADER)]


def _other_connections(*, settle_to: int | None = None) -> int:
    """Backends connected to the test database besides this thread's. With `settle_to`, waits
    up to 5 s for the count to come down to it: a backend whose client has closed the
    connection stays in pg_stat_activity until its process has exited."""
    deadline = time.monotonic() + 5
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            count = cursor.fetchone()[0]
        if settle_to is None or count <= settle_to or time.monotonic() > deadline:
            return count
        time.sleep(0.01)


@pytest.fixture
def loads(monkeypatch):
    """The name of the thread each chunk load ran in, in order."""
    threads: list[str] = []
    load_chunk = gaps.engine.load_chunk

    def spy(plan, patient_range=None):
        threads.append(threading.current_thread().name)
        return load_chunk(plan, patient_range)

    monkeypatch.setattr(gaps.engine, "load_chunk", spy)
    return threads


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_prefetched_chunks_give_every_patient_the_one_shot_populations(postgres_only, loads):
    call_command("load_valuesets", str(VALUESETS_2024), stdout=io.StringIO())
    organization = _deck("prefetch-deck")
    definitions = _definitions()
    one_shot = _flat(definitions, evaluate_many(organization, definitions, *PERIOD))
    loads.clear()
    before = _other_connections()

    chunked, ranges = {}, []
    for patient_range, evaluations in evaluate_chunks(
        organization, definitions, *PERIOD, chunk_size=10, prefetch=True
    ):
        ranges.append(patient_range)
        part = _flat(definitions, evaluations)
        assert all(patient_range[0] <= pid <= patient_range[1] for _, pid in part)
        assert not part.keys() & chunked.keys(), "a patient evaluated in two chunks"
        chunked.update(part)

    assert len(ranges) == 18  # 176 patients in chunks of 10
    assert chunked == one_shot
    assert len(one_shot) == 176 * len(MEASURES)
    assert {r[:4] for r in one_shot.values()} >= {
        (True, True, False, False),  # open
        (True, True, False, True),  # closed
        (True, True, True, False),  # excluded
    }
    # Every chunk was loaded by the background thread, and it is gone with its connection.
    assert len(loads) == 18 and all(name.startswith(LOADER) for name in loads)
    assert _loader_threads() == []
    assert _other_connections(settle_to=before) == before


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_loader_error_reaches_the_caller_and_leaves_no_thread_or_connection(
    postgres_only, monkeypatch
):
    call_command("load_valuesets", str(VALUESETS_2024), stdout=io.StringIO())
    organization = _deck("prefetch-error")
    load_chunk, calls, failed_in = gaps.engine.load_chunk, [], []

    def third_load_fails(plan, patient_range=None):
        calls.append(patient_range)
        if len(calls) == 3:
            failed_in.append(threading.current_thread().name)
            raise RuntimeError("the records query failed")
        return load_chunk(plan, patient_range)

    monkeypatch.setattr(gaps.engine, "load_chunk", third_load_fails)
    before = _other_connections()
    seen = []
    with pytest.raises(RuntimeError, match="the records query failed"):
        for patient_range, _ in evaluate_chunks(
            organization, _definitions(), *PERIOD, chunk_size=10, prefetch=True
        ):
            seen.append(patient_range)
    assert len(seen) == 2  # the chunks loaded before the failing one
    assert len(calls) == 3  # nothing loaded after the failure
    assert failed_in and failed_in[0].startswith(LOADER)
    assert _loader_threads() == []
    assert _other_connections(settle_to=before) == before


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_stopping_early_ends_the_loader_thread_and_closes_its_connection(postgres_only, loads):
    call_command("load_valuesets", str(VALUESETS_2024), stdout=io.StringIO())
    organization = _deck("prefetch-stop")
    before = _other_connections()
    chunks = evaluate_chunks(organization, _definitions(), *PERIOD, chunk_size=10, prefetch=True)
    next(chunks)
    next(chunks)
    # The loader is at work on a later chunk, over a connection of its own...
    assert len(_loader_threads()) == 1
    assert _other_connections() == before + 1
    chunks.close()
    # ...and both are gone once the caller stops iterating.
    assert _loader_threads() == []
    assert _other_connections(settle_to=before) == before
    assert 3 <= len(loads) < 18


@pytest.mark.django_db
def test_inside_a_transaction_chunks_load_in_the_callers_thread(
    postgres_only, valuesets_2024, loads
):
    # The deck is imported inside this test's transaction: a loader on another connection
    # would see no patient at all.
    organization = _deck("prefetch-atomic")
    definitions = _definitions()
    one_shot = _flat(definitions, evaluate_many(organization, definitions, *PERIOD))
    chunked = {}
    for _, evaluations in evaluate_chunks(
        organization, definitions, *PERIOD, chunk_size=50, prefetch=True
    ):
        chunked.update(_flat(definitions, evaluations))
    assert chunked == one_shot
    assert len(chunked) == 176 * len(MEASURES)
    assert set(loads) == {threading.current_thread().name}
    assert _loader_threads() == []
