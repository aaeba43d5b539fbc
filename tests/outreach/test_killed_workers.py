"""A real django-q2 cluster on PostgreSQL, killed in the middle of sends, tasks delivered again:
every planned contact happens exactly once or ends `unknown` (for a person), none twice.

Two clusters run in turn as subprocesses against the test database. The first is killed
(SIGKILL, the whole process group: a machine dying) while sends are in flight; the second has
one worker killed mid-send and then runs until the queue is empty. Every send task is enqueued
three times (duplicated deliveries) and the broker redelivers the killed ones after Q_RETRY seconds.
"""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ

from outreach.models import AttemptStatus, OutboundMessage, OutreachAttempt, Step
from outreach.services import outbox
from tests.outreach.conftest import make_patient

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
ROOT = Path(__file__).resolve().parents[2]
CONTACTS = 60


def daytime_zone() -> str:
    offset = (13 - timezone.now().hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def cluster_env() -> dict:
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DEBUG="true",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
        f"{db['NAME']}",
        CAREHUB_SMS_BACKEND="tests.outreach.gateway.SlowSmsGateway",
        Q_WORKERS="2",
        Q_TIMEOUT="8",
        Q_RETRY="12",
        LOG_LEVEL="INFO",
        PYTHONPATH=str(ROOT),
    )
    if db.get("PASSWORD"):
        env["DATABASE_URL"] = env["DATABASE_URL"].replace("@", f":{db['PASSWORD']}@", 1)
    return env


def start_cluster() -> subprocess.Popen:
    # CAREHUB_CLUSTER_LOG=path keeps the clusters' log when this test needs debugging.
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"],
        cwd=ROOT,
        env=cluster_env(),
        stdout=subprocess.DEVNULL,
        stderr=open(os.environ.get("CAREHUB_CLUSTER_LOG", os.devnull), "ab"),
        start_new_session=True,  # its own process group, so it can be killed as one machine
    )


def descendants(pid: int) -> list[int]:
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def sent_count() -> int:
    return OutboundMessage.objects.count()


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_killed_workers_never_contact_twice(postgres_only, templates, org_a, site_a, system_user):
    zone = daytime_zone()  # the sends must be inside allowed hours whenever the test runs
    patients = [make_patient(org_a, site_a, actor=system_user) for _ in range(CONTACTS)]
    for patient in patients:
        patient.timezone = zone
        patient.save()
        outbox.plan_attempt(
            patient, step=Step.DORMANT, window="killed-test", channel="sms", actor=system_user
        )
    # Planning enqueued each send once; the dispatcher enqueues them twice more (duplicates).
    assert outbox.enqueue_due() == CONTACTS
    assert outbox.enqueue_due() == CONTACTS
    assert OrmQ.objects.count() == 3 * CONTACTS

    first = start_cluster()
    try:
        assert wait_until(lambda: sent_count() >= CONTACTS // 4, 90), "the cluster sent nothing"
        os.killpg(first.pid, signal.SIGKILL)  # the machine dies mid-send
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    after_first = sent_count()

    second = start_cluster()
    try:
        assert wait_until(lambda: sent_count() > after_first + 3, 90)
        workers = descendants(second.pid)
        assert workers, "no worker processes found"
        # Kill the worker that is sending right now (the youngest busy one): one of them.
        os.kill(max(workers), signal.SIGKILL)
        # The broker hands the killed tasks out again after Q_RETRY; wait until nothing is left.
        assert wait_until(lambda: not OrmQ.objects.exists(), 240), "tasks left in the queue"
        assert wait_until(
            lambda: not OutreachAttempt.objects.filter(status=AttemptStatus.PLANNED).exists(), 30
        )
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        try:
            second.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(second.pid, signal.SIGKILL)
            second.wait(timeout=10)

    # Sends stuck in `sending` by the kills become unknown: a person checks, nothing resends.
    later = timezone.now() + timezone.timedelta(hours=1)
    outbox.expire_stale_sends(now=later)

    statuses = Counter(OutreachAttempt.objects.values_list("status", flat=True))
    messages_per_attempt = Counter(OutboundMessage.objects.values_list("attempt_id", flat=True))
    unknown_ids = set(
        OutreachAttempt.objects.filter(status=AttemptStatus.UNKNOWN).values_list("pk", flat=True)
    )
    print(
        f"\n{CONTACTS} planned contacts, each task delivered three times, two kills: "
        f"{dict(statuses)}; messages handed to the gateway: {sum(messages_per_attempt.values())}; "
        f"unknown with a message: {len(unknown_ids & set(messages_per_attempt))}; "
        f"most messages for one contact: {max(messages_per_attempt.values())}"
    )
    assert set(statuses) <= {AttemptStatus.SENT, AttemptStatus.UNKNOWN}
    assert sum(statuses.values()) == CONTACTS
    assert max(messages_per_attempt.values()) == 1  # never twice
    for attempt in OutreachAttempt.objects.filter(status=AttemptStatus.SENT):
        assert messages_per_attempt[attempt.pk] == 1  # sent means exactly once
    assert statuses[AttemptStatus.SENT] >= CONTACTS // 2
