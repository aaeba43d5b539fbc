"""Per-request cost inside the gunicorn workers during the load test: wall, CPU and SQL time.

    DATABASE_CONN_MAX_AGE=600 .venv/bin/gunicorn loadtest.timed_wsgi:application \
        -w 3 -b 127.0.0.1:8000 &                       # instead of carehub.wsgi, same env
    .venv/bin/python -m loadtest.timed_wsgi            # after the run: the table per screen

Each sync worker serves one request at a time, so the process CPU time spent in a request is
that request's. Locust's time minus the worker's wall time is the wait for a free worker; the
worker's wall time minus its CPU and SQL time is the wait for a core. That tells a slow query
from a saturated machine. Writes one tab-separated line per request to
var/loadtest_requests/<pid>.log (git-ignored var/): time, method, path, status, wall ms,
CPU ms, SQL ms, queries. The path only (no query string: it may hold a searched name or MRN).
"""

import os
import statistics
import sys
import time
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "var" / "loadtest_requests"
LOG_DIR = Path(os.environ.get("CAREHUB_LOADTEST_REQUESTS", DEFAULT_DIR))


def _make_application():
    from django.db import connection

    from carehub.wsgi import application as django_application

    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = None

    def application(environ, start_response):
        nonlocal log
        if log is None:
            log = (LOG_DIR / f"{os.getpid()}.log").open("a", buffering=1)
        sql = [0.0, 0]

        def timed(execute, statement, params, many, context):
            started = time.perf_counter()
            try:
                return execute(statement, params, many, context)
            finally:
                sql[0] += time.perf_counter() - started
                sql[1] += 1

        status = ["-"]

        def start(line, headers, exc_info=None):
            status[0] = line.split()[0]
            return start_response(line, headers, exc_info)

        wall, cpu = time.perf_counter(), time.process_time()
        with connection.execute_wrapper(timed):
            result = django_application(environ, start)
            try:
                body = b"".join(result)  # the response is made inside the measured span
            finally:
                if hasattr(result, "close"):
                    result.close()
        log.write(
            f"{time.time():.3f}\t{environ['REQUEST_METHOD']}\t{environ.get('PATH_INFO', '')}\t"
            f"{status[0]}\t{(time.perf_counter() - wall) * 1000:.1f}\t"
            f"{(time.process_time() - cpu) * 1000:.1f}\t{sql[0] * 1000:.1f}\t{sql[1]}\n"
        )
        return [body]

    return application


def _screen(method: str, path: str) -> str:
    if "/transition/" in path:
        return "transition" if method == "POST" else "transition form"
    if path.endswith("/change/"):
        return "gap page"
    if path == "/admin/login/":
        return "sign in" if method == "POST" else "sign in form"
    return path


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(directory: Path = LOG_DIR) -> None:
    """Per screen: requests, worker wall p50/p95, CPU p50, SQL p50/p95, queries (median)."""
    rows: dict[str, list[tuple[float, float, float, int]]] = {}
    for path in sorted(directory.glob("*.log")):
        for line in path.read_text().splitlines():
            _, method, url, _, wall, cpu, sql, queries = line.split("\t")
            rows.setdefault(_screen(method, url), []).append(
                (float(wall), float(cpu), float(sql), int(queries))
            )
    print(
        f"{'screen':<24}{'requests':>9}{'wall p50':>10}{'wall p95':>10}{'CPU p50':>9}"
        f"{'SQL p50':>9}{'SQL p95':>9}{'queries':>9}   (ms, inside the worker)"
    )
    for screen, values in sorted(rows.items()):
        walls, cpus, sqls, queries = zip(*values, strict=True)
        print(
            f"{screen:<24}{len(values):>9}{_percentile(walls, 0.5):>10.0f}"
            f"{_percentile(walls, 0.95):>10.0f}{_percentile(cpus, 0.5):>9.0f}"
            f"{_percentile(sqls, 0.5):>9.0f}{_percentile(sqls, 0.95):>9.0f}"
            f"{statistics.median(queries):>9.0f}"
        )


if __name__ == "__main__":
    report(Path(sys.argv[1]) if len(sys.argv) > 1 else LOG_DIR)
else:
    application = _make_application()
