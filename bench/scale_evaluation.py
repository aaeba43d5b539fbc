"""Evaluation at scale: engine throughput, evaluate_measures end to end, sharded nightly runs.

    make seed-scale-bench   # or: DATABASE_URL=…/carehub_scale_1m manage.py seed_scale …
    make bench BENCH=scale_evaluation

Runs against a database filled by `seed_scale` (BENCH_SCALE_DB, default `carehub_scale_1m`,
organization BENCH_SCALE_ORG, default `scale`); never the test database of anybody. Each step
runs in its own process so its peak RSS is its own, and prints its figure beside the target:

- engine: patient-measure evaluations per second in one process (panel load + criteria), over
  the first BENCH_ENGINE_PATIENTS patients (default 100,000), target >= 90,000/s;
- evaluate: `evaluate_measures` for the whole organization (store and sync included), target
  >= 30,000/s, peak RSS <= 1 GiB;
- sharded1 / sharded2: the nightly split into chunk tasks, with 1 and then 2 qcluster
  processes (one worker each), wall time from queueing to the run's end and the workers' peak
  RSS. BENCH_SCALE_STEPS picks steps (comma-separated).

BENCH_PROFILE=/path/file.prof runs each step under cProfile and dumps its statistics there
(suffixed with the step name); read them with `python -m pstats`.
"""

import datetime as dt
import logging
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench._scratch import use_scratch_database

ROOT = Path(__file__).resolve().parents[1]
DB = os.environ.get("BENCH_SCALE_DB", "carehub_scale_1m")
ORG = os.environ.get("BENCH_SCALE_ORG", "scale")
STEPS = os.environ.get("BENCH_SCALE_STEPS", "engine,evaluate,sharded1,sharded2").split(",")
ENGINE_PATIENTS = int(os.environ.get("BENCH_ENGINE_PATIENTS", "100000"))
PROFILE = os.environ.get("BENCH_PROFILE", "")
GIB = 1024**3


def _setup():
    use_scratch_database(DB)
    import django

    django.setup()
    from django.utils import timezone

    from patients.models import Organization

    organization = Organization.objects.filter(slug=ORG).first()
    if organization is None:
        sys.exit(f"no organization {ORG!r} in {DB}: fill it with `manage.py seed_scale` first")
    year = timezone.now().year
    return organization, dt.date(year, 1, 1), dt.date(year, 12, 31)


def _peak_rss_self() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _line(label: str, value: str, bound: str, ok: bool) -> None:
    print(f"  {label:<52}{value:>22}   target {bound:<14}{'met' if ok else 'NOT met'}")


def step_engine() -> None:
    organization, start, end = _setup()
    from gaps.engine import evaluate_range, patient_chunks, plan_groups
    from gaps.measures import MEASURE_CODES, pick_version

    definitions = [pick_version(cms, end.year)[0] for cms in MEASURE_CODES]
    plans = plan_groups(organization, definitions)
    evaluated = patients = 0
    started = time.perf_counter()
    for patient_range in patient_chunks(organization):
        evaluations = evaluate_range(plans, definitions, start, end, patient_range)
        size = len(evaluations[0].results)
        patients += size
        evaluated += size * len(definitions)
        if patients >= ENGINE_PATIENTS:
            break
    rate = evaluated / (time.perf_counter() - started)
    _line(
        f"engine, {patients:,} patients x {len(definitions)} measures",
        f"{rate:,.0f} eval/s",
        ">= 90,000/s",
        rate >= 90_000,
    )
    rss = _peak_rss_self()
    _line("  peak RSS", f"{rss / 2**20:,.0f} MiB", "<= 1 GiB", rss <= GIB)


def step_evaluate() -> None:
    organization, start, end = _setup()
    from carehub.history import get_system_user
    from gaps.services import evaluate_measures

    patients = organization.patients.count()
    started = time.perf_counter()
    summary = evaluate_measures(
        organization, period_start=start, period_end=end, actor=get_system_user()
    )
    elapsed = time.perf_counter() - started
    evaluated = patients * len(summary.run.measures)
    rate = evaluated / elapsed
    stored = sum(t.get("stored", 0) for t in summary.run.counts.values())
    _line(
        f"evaluate_measures, {patients:,} patients, {elapsed:,.0f} s",
        f"{rate:,.0f} eval/s",
        ">= 30,000/s",
        rate >= 30_000,
    )
    print(f"    ({stored:,} results written; gaps: {_gap_counts(summary.run.counts)})")
    rss = _peak_rss_self()
    _line("  peak RSS", f"{rss / 2**20:,.0f} MiB", "<= 1 GiB", rss <= GIB)


def _gap_counts(counts: dict) -> str:
    total: dict = {}
    for tally in counts.values():
        for key, value in tally.get("gaps", {}).items():
            total[key] = total.get(key, 0) + value
    return ", ".join(f"{k} {v:,}" for k, v in total.items())


def _group_peak_rss(pgid: int) -> int:
    """Largest VmHWM (peak resident set) among the live processes of a process group."""
    peak = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != pgid:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except (OSError, ProcessLookupError):
            continue
    return peak


def step_sharded(workers: int) -> None:
    organization, start, end = _setup()
    from django.db import connection

    from carehub.history import get_system_user
    from gaps.models import EvaluationRun
    from gaps.services import start_sharded_evaluation

    patients = organization.patients.count()
    env = {
        **os.environ,
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "Q_WORKERS": "1",
        "Q_TIMEOUT": "1800",
        "Q_RETRY": "1900",
        # Worker-only clusters: the database's schedules (audit sealing of the history the
        # evaluation writes took one worker's only slot for minutes) are not the evaluation.
        "Q_SCHEDULER": "false",
        "DEBUG": "true",
    }
    log = open(f"/tmp/bench_qcluster_{workers}.log", "ab")  # noqa: SIM115
    clusters = [
        subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for _ in range(workers)
    ]
    # Not a line per queued chunk in the figures (the clusters log to their own file).
    logging.getLogger("django-q").setLevel(logging.WARNING)
    try:
        time.sleep(3)  # the clusters start and poll the queue
        started = time.perf_counter()
        run = start_sharded_evaluation(
            organization, period_start=start, period_end=end, actor=get_system_user()
        )
        peak = 0
        while True:
            time.sleep(1)
            for cluster in clusters:
                peak = max(peak, _group_peak_rss(cluster.pid))
            run.refresh_from_db()
            if run.status != EvaluationRun.Status.RUNNING:
                break
            if any(c.poll() is not None for c in clusters):
                sys.exit("a qcluster stopped; see /tmp/bench_qcluster_*.log")
        elapsed = time.perf_counter() - started
    finally:
        for cluster in clusters:
            if cluster.poll() is None:
                os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait()
        connection.close()
    evaluated = patients * len(run.measures)
    print(
        f"  nightly, {patients:,} patients x {len(run.measures)} measures, {workers} worker "
        f"process{'es' if workers > 1 else ''}: {elapsed:,.0f} s wall "
        f"({evaluated / elapsed:,.0f} eval/s, {run.chunks_total} chunks, {run.status})"
    )
    _line("  workers' peak RSS", f"{peak / 2**20:,.0f} MiB", "<= 1 GiB", peak <= GIB)


def main() -> None:
    # One process per step: each step's peak RSS is its own.
    for step in STEPS:
        print(f"# {step}", flush=True)
        subprocess.run(
            [sys.executable, "-c", f"from bench.scale_evaluation import _run; _run({step!r})"],
            cwd=ROOT,
            check=False,
        )
        sys.stdout.flush()


def _run(step: str) -> None:
    if PROFILE:
        import cProfile

        # Where the time goes inside one step (the figures it prints include the profiler's
        # overhead, so read them as relative, not as the benchmark's result).
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            _run_step(step)
        finally:
            profiler.disable()
            profiler.dump_stats(f"{PROFILE}.{step}")
            print(f"  profile: {PROFILE}.{step}")
        return
    _run_step(step)


def _run_step(step: str) -> None:
    if step == "engine":
        step_engine()
    elif step == "evaluate":
        step_evaluate()
    elif step.startswith("sharded"):
        step_sharded(int(step.removeprefix("sharded") or 1))
    else:
        sys.exit(f"unknown step {step!r}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
