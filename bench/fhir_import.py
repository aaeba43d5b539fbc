"""FHIR import against its bound: the same files read by a bare `json.load` loop.

    make bench BENCH=fhir_import        # BENCH_IMPORT_FILES=400, BENCH_IMPORT_SMALL=2000
    make synthea-set && BENCH_IMPORT_DIR=var/synthea/fhir make bench BENCH=fhir_import

Scratch PostgreSQL database `carehub_bench_import` (a new organization each run). The files:
the *.json of BENCH_IMPORT_DIR when set (a Synthea export: `make synthea-set` generates one),
else synthetic bundles from `carehub.synthetic` (codes from ../shared value sets), ten
patients a file, written to a temporary folder. The synthetic resources are only the kinds the
import keeps, and small (about 300 bytes), so json.load reads them far faster than a Synthea
export's (about 2 KB, half of them claims, reports and documents the import skips). Prints:
- import throughput vs the json.load loop of the same files, target >= 1/3 on a Synthea
  export (on the synthetic files the ratio is printed without a verdict);
- the fixed cost per bundle on one-patient bundles (a Patient and nothing else), target
  <= 0.5 ms;
- peak RSS.
Each import also prints the CPU time of this process, of its PostgreSQL backend (when the
server runs on this machine) and the load average: on a shared machine the wall-clock figures
(what the targets are about) mostly measure the wait for a core and for the database, which
json.load does not have.
"""

import json
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench._scratch import use_scratch_database

FILES = int(os.environ.get("BENCH_IMPORT_FILES", "400"))
DIRECTORY = os.environ.get("BENCH_IMPORT_DIR", "")
SMALL = int(os.environ.get("BENCH_IMPORT_SMALL", "2000"))
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "ecqm" / "valuesets"


def main() -> None:
    use_scratch_database(os.environ.get("BENCH_IMPORT_DB", "carehub_bench_import"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not SHARED.is_dir():
        print(f"skipped: value sets not found at {SHARED}")
        return
    from carehub.history import get_system_user
    from carehub.synthetic import Codes, synthetic_bundle
    from gaps.models import ValueSet
    from patients.fhir.importer import import_paths
    from patients.models import Organization

    if not ValueSet.objects.exists():
        call_command("load_valuesets", str(SHARED / "qicore-2024"), stdout=open(os.devnull, "w"))  # noqa: SIM115
    actor = get_system_user()
    codes, rng = Codes(), random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if DIRECTORY:
            rich = sorted(Path(DIRECTORY).glob("*.json"))
            if not rich:
                sys.exit(f"no *.json files in BENCH_IMPORT_DIR={DIRECTORY}")
            label = f"{len(rich)} files of {DIRECTORY}"
        else:
            for index in range(FILES):
                entries = []
                for _ in range(10):
                    entries += synthetic_bundle(rng, codes, 2025)["entry"]
                bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
                (root / f"rich-{index:04d}.json").write_text(json.dumps(bundle))
            rich = sorted(root.glob("rich-*.json"))
            label = f"{FILES} synthetic files"
        resources, started, json_cpu = 0, time.perf_counter(), time.process_time()
        for path in rich:
            with path.open("rb") as handle:
                resources += len(json.load(handle).get("entry", ()))
        bound = resources / (time.perf_counter() - started)
        json_cpu = time.process_time() - json_cpu

        def organization():
            return Organization.objects.create(slug=f"bench-{uuid.uuid4().hex[:8]}", name="Bench")

        org = organization()
        started, cpu, server = time.perf_counter(), time.process_time(), _server_cpu()
        run = import_paths([str(p) for p in rich], organization=org, actor=actor)
        rate = resources / (time.perf_counter() - started)
        cpu, server = time.process_time() - cpu, _since(server)
        assert run.status == "succeeded", run.report
        verdict = (
            f"target >= 1/3   {'met' if rate * 3 >= bound else 'NOT met'}"
            if DIRECTORY
            else "target >= 1/3 is for a Synthea export (make synthea-set)"
        )
        print(
            f"  import, {label}, {resources:,} resources: {rate:,.0f} resources/s; "
            f"json.load loop {bound:,.0f}/s; ratio 1/{bound / rate:.1f}   {verdict}"
        )
        print(
            f"    ({run.counts.get('records_created', 0):,} clinical records and "
            f"{run.counts.get('patients_created', 0):,} patients written, "
            f"{run.counts.get('resources_skipped', 0):,} resources of other kinds skipped)"
        )
        print(
            f"    (CPU of this process {cpu / resources * 1e6:.0f} us/resource"
            f"{_backend(server, resources, 1e6, 'us/resource')}, "
            f"json.load loop {json_cpu / resources * 1e6:.1f} us/resource; {_load()})"
        )

        for index in range(SMALL):
            pid = str(uuid.uuid4())
            patient = {"resourceType": "Patient", "id": pid, "gender": "female",
                       "birthDate": "1970-01-01", "name": [{"family": "Bench"}]}  # fmt: skip
            entry = {"fullUrl": f"Patient/{pid}", "resource": patient}
            bundle = {"resourceType": "Bundle", "type": "collection", "entry": [entry]}
            (root / f"one-{index:05d}.json").write_text(json.dumps(bundle))
        small = sorted(root.glob("one-*.json"))
        if small:  # BENCH_IMPORT_SMALL=0 skips them
            org = organization()
            started, cpu, server = time.perf_counter(), time.process_time(), _server_cpu()
            run = import_paths([str(p) for p in small], organization=org, actor=actor)
            per_bundle = (time.perf_counter() - started) / len(small) * 1000
            cpu, server = (time.process_time() - cpu) / len(small) * 1000, _since(server)
            assert run.status == "succeeded", run.report
            print(
                f"  one-patient bundles, {len(small):,}: {per_bundle:.2f} ms per bundle   "
                f"target <= 0.5 ms   {'met' if per_bundle <= 0.5 else 'NOT met'}"
            )
            print(
                f"    (CPU of this process {cpu:.2f} ms per bundle"
                f"{_backend(server, len(small), 1e3, 'ms per bundle')}; {_load()})"
            )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {rss:,.0f} MiB")


def _server_cpu() -> float | None:
    """CPU seconds of this connection's PostgreSQL backend, read from /proc when the server
    runs on this machine, else None. The import's wall time is mostly the server's work (COPY,
    indexes, foreign-key checks at commit) on the same two cores."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _since(before: float | None) -> float | None:
    after = _server_cpu()
    return None if before is None or after is None else after - before


def _backend(server: float | None, count: int, scale: float, unit: str) -> str:
    if server is None:
        return ""
    return f", of its database backend {server / count * scale:.{2 if scale < 1e6 else 0}f} {unit}"


def _load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} on {os.cpu_count()} cores"


if __name__ == "__main__":
    main()
