"""A sharded evaluation on real qcluster processes: one is killed in the middle of a chunk, a
fresh one finishes the run, and the result is exactly that of an evaluation in one go.

PostgreSQL only: the worker processes connect to the test database, so the test data must be
committed (transactional test) and the database must serve several processes.
"""

import datetime as dt
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.db import connection

from carehub import events
from carehub.history import get_system_user
from gaps.care_gaps import CareGap
from gaps.models import EvaluationChunk, EvaluationRun, MeasureResult
from gaps.services import evaluate_chunk, evaluate_measures, start_sharded_evaluation
from patients.models import Organization
from tests.gaps.conftest import TESTCASES, VALUESETS_2024, needs_shared

pytestmark = [needs_shared, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
PERIOD = (dt.date(2025, 1, 1), dt.date(2025, 12, 31))
MEASURES = ["CMS130", "CMS125", "CMS165"]
# A killed worker's task comes back after Q_RETRY seconds; chunks take well under Q_TIMEOUT.
Q_ENV = {"Q_WORKERS": "1", "Q_TIMEOUT": "8", "Q_RETRY": "10"}


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


def _snapshot(organization) -> tuple[dict, dict]:
    results = {
        (row[0], row[1]): row[2:]
        for row in MeasureResult.objects.filter(organization=organization)
        .values_list("patient__source_id", "measure__cms", "ip", "denom", "denex", "numer")
        .order_by()
    }
    gaps = {}
    for gap in CareGap.objects.filter(organization=organization).select_related("patient"):
        gaps[(gap.patient.source_id, gap.measure_code)] = (
            gap.state,
            [h.history_type for h in gap.history.all()],
            gap.sources.count(),
        )
    return results, gaps


def _qcluster(log: Path) -> subprocess.Popen:
    db = connection.settings_dict  # the test database, as the role the tests run as
    login = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    url = f"postgres://{login}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, **Q_ENV, "DATABASE_URL": url, "DEBUG": "true"}
    env.pop("MIGRATION_DATABASE_URL", None)  # a worker needs no owner's login
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the kill takes every cluster process
    )


def _stop(process: subprocess.Popen, sig=signal.SIGKILL) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # a cluster slow to stop on SIGTERM is stopped for good
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _wait(condition, seconds: float, what: str, process, log: Path):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"qcluster exited early:\n{log.read_text()[-3000:]}")
        time.sleep(0.005)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_killed_mid_chunk_leaves_no_duplicate_or_missing_result(postgres_only, tmp_path):
    call_command("load_valuesets", str(VALUESETS_2024), stdout=io.StringIO())
    actor = get_system_user()
    reference, sharded = _deck("kill-reference"), _deck("kill-sharded")
    evaluate_measures(
        reference,
        period_start=PERIOD[0],
        period_end=PERIOD[1],
        actor=actor,
        measures=MEASURES,
        chunk_size=1_000_000,
    )
    run = start_sharded_evaluation(
        sharded,
        period_start=PERIOD[0],
        period_end=PERIOD[1],
        actor=actor,
        measures=MEASURES,
        chunk_size=8,
    )
    assert run.chunks_total == 22  # 176 patients
    chunks = EvaluationChunk.objects.filter(run=run)
    log = tmp_path / "qcluster.log"

    first = _qcluster(log)
    try:
        # Killed while a chunk is under way (its attempt committed, its work not) and after
        # at least one chunk is done, so the run is half done when the worker dies.
        _wait(
            lambda: (
                chunks.filter(done=True).exists()
                and chunks.filter(done=False, attempts__gt=0).exists()
            ),
            120,
            "a chunk in progress",
            first,
            log,
        )
    finally:
        _stop(first, signal.SIGKILL)
    interrupted = set(chunks.filter(done=False, attempts__gt=0).values_list("pk", flat=True))
    assert interrupted, "the worker finished its chunk before the kill landed"
    done_before = chunks.filter(done=True).count()
    assert 0 < done_before < run.chunks_total
    run.refresh_from_db()
    assert run.status == EvaluationRun.Status.RUNNING

    second = _qcluster(log)
    try:
        _wait(
            lambda: EvaluationRun.objects.filter(
                pk=run.pk, status=EvaluationRun.Status.SUCCEEDED
            ).exists(),
            180,
            "the run to finish",
            second,
            log,
        )
    finally:
        _stop(second, signal.SIGTERM)

    assert chunks.filter(done=False).count() == 0
    for chunk in chunks.filter(pk__in=interrupted):
        assert chunk.attempts >= 2  # the killed attempt, then the redo
    results, gaps = _snapshot(sharded)
    assert len(results) == 176 * len(MEASURES)
    assert MeasureResult.objects.filter(organization=sharded).count() == len(results)
    assert (results, gaps) == _snapshot(reference)
    # Every gap was created once: one creation row in its history, one engine source.
    assert all(history == ["+"] and sources == 1 for _, history, sources in gaps.values())
    run.refresh_from_db()
    reference_run = EvaluationRun.objects.get(organization=reference)
    assert run.counts == reference_run.counts

    # A duplicated task (the queue delivers it again) changes nothing.
    assert evaluate_chunk(chunks.first().pk, actor=actor) is False
    assert _snapshot(sharded) == (results, gaps)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_chunks_of_one_run_are_evaluated_at_the_same_time(postgres_only):
    """A chunk under way must not hold the run: scale-out depends on it. The first chunk is
    held open mid-transaction (inside its gap sync) while the second is evaluated."""
    call_command("load_valuesets", str(VALUESETS_2024), stdout=io.StringIO())
    actor = get_system_user()
    organization = _deck("parallel-chunks")
    run = start_sharded_evaluation(
        organization,
        period_start=PERIOD[0],
        period_end=PERIOD[1],
        actor=actor,
        measures=MEASURES,
        chunk_size=88,
    )
    first, second = EvaluationChunk.objects.filter(run=run).order_by("pk")[:2]
    inside_first, second_done = threading.Event(), threading.Event()
    holder = threading.current_thread()

    def hold_first_chunk(**payload):
        if threading.current_thread() is not holder:
            inside_first.set()
            second_done.wait(timeout=60)

    def evaluate_first():
        try:
            evaluate_chunk(first.pk, actor=actor)
        finally:
            connection.close()

    events.subscribe(events.GAPS_SYNCED, hold_first_chunk)
    worker = threading.Thread(target=evaluate_first)
    try:
        worker.start()
        assert inside_first.wait(timeout=60), "the first chunk never reached its gap sync"
        with connection.cursor() as cursor:
            # Waiting on a lock the first chunk holds fails fast instead of hanging the test.
            cursor.execute("SET lock_timeout = '5s'")
        try:
            assert evaluate_chunk(second.pk, actor=actor) is True
        finally:
            second_done.set()
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        worker.join(timeout=120)
    finally:
        second_done.set()
        events.unsubscribe(events.GAPS_SYNCED, hold_first_chunk)
    assert EvaluationChunk.objects.filter(pk__in=[first.pk, second.pk], done=True).count() == 2
