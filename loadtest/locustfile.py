"""50 agents working the gap worklist: list, gap pages, transitions (issue 13 load test).

    DEBUG=true DATABASE_URL=… .venv/bin/gunicorn carehub.wsgi -w 3 -b 127.0.0.1:8000 &
    DEBUG=true DATABASE_URL=… .venv/bin/python -m loadtest.agents --agents 50
    .venv/bin/locust -f loadtest/locustfile.py --headless -u 50 -r 1 -t 10m \
        --host http://127.0.0.1:8000

Each simulated agent signs in through the real login form (password and authenticator code),
then loops with think time between tasks: the worklist (first page, its own page, filters), a
gap page, and now and then a transition on an identified gap from its own page (review, then
validate). Think time is CAREHUB_LOADTEST_THINK seconds, "5,15" by default: an agent reads the
gap against the records or is on the phone between clicks, so 50 agents send about 8 requests a
second; "2,5" is the stress case (about 23 a second). Loopback only: any other host is refused.
At the end it prints each screen's p95 beside the 300 ms target and the error count (target 0);
the exit code is 1 when a target is missed. Signing in is printed but not held to the 300 ms:
its cost is the password hasher's work factor (PBKDF2, about 0.5 s of CPU by design), paid
once per shift; ramp agents up slowly (-r 1) so the sign-ins do not queue behind each other.
"""

import base64
import hashlib
import hmac
import ipaddress
import itertools
import json
import os
import random
import re
import struct
import time
from pathlib import Path
from urllib.parse import urlparse

from locust import HttpUser, between, events, task

ROOT = Path(__file__).resolve().parents[1]
AGENTS = json.loads(
    Path(
        os.environ.get("CAREHUB_LOADTEST_AGENTS", ROOT / "var" / "loadtest_agents.json")
    ).read_text()
)
NEXT_AGENT = itertools.count()
P95_TARGET_MS = 300
NOT_A_SCREEN = {"sign in"}  # deliberate cost (password hashing); errors still count
THINK = tuple(float(s) for s in os.environ.get("CAREHUB_LOADTEST_THINK", "5,15").split(","))
LIST = "/admin/gaps/caregap/"
GAP_LINK = re.compile(r"/admin/gaps/caregap/(\d+)/change/")
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
FILTERS = [{"state": "outreach"}, {"due": "week"}, {"measure": "CMS125"}, {"due": "overdue"}]


def totp(secret: str, at: float | None = None) -> str:
    """RFC 6238 (SHA-1, 30 s, 6 digits), as the authenticator app computes it."""
    key = base64.b32decode(secret.replace(" ", ""))
    counter = int((at or time.time()) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{code % 1_000_000:06d}"


@events.test_start.add_listener
def _loopback_only(environment, **kwargs):
    host = urlparse(environment.host or "").hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"load test refused: {host!r} is not a loopback address")


@events.quitting.add_listener
def _report(environment, **kwargs):
    stats = environment.stats
    print(f"\n{'screen':<26}{'requests':>10}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}   target")
    missed = False
    for name in sorted(stats.entries):
        entry = stats.entries[name]
        p95 = entry.get_response_time_percentile(0.95)
        if name[0] in NOT_A_SCREEN:
            target = "0 errors (p95 not held: password hashing)"
            ok = entry.num_failures == 0
        else:
            target = f"p95 <= {P95_TARGET_MS} ms, 0 errors"
            ok = p95 <= P95_TARGET_MS and entry.num_failures == 0
        missed |= not ok
        print(
            f"{name[0]:<26}{entry.num_requests:>10}{entry.num_failures:>8}"
            f"{entry.get_response_time_percentile(0.5):>9.0f}{p95:>9.0f}   "
            f"{target}: {'met' if ok else 'NOT met'}"
        )
    total = stats.total
    print(f"{'all':<26}{total.num_requests:>10}{total.num_failures:>8}")
    environment.process_exit_code = 1 if missed or total.num_failures else 0


class Agent(HttpUser):
    wait_time = between(*THINK)  # reading the records, talking to a patient

    def on_start(self):
        self.index = next(NEXT_AGENT) % len(AGENTS)
        agent = AGENTS[self.index]
        page = self.client.get("/admin/login/", name="sign in form")
        token = CSRF.search(page.text).group(1)
        with self.client.post(
            "/admin/login/?next=/admin/",
            data={
                "csrfmiddlewaretoken": token,
                "username": agent["username"],
                "password": agent["password"],
                "code": totp(agent["totp"]),
            },
            headers={"Referer": self.host + "/admin/login/"},
            name="sign in",
            catch_response=True,
        ) as response:
            if "/admin/login/" in response.url:
                response.failure("sign-in refused")
        self.own_page = self.index + 1

    def _gap_ids(self, response) -> list[int]:
        return [int(i) for i in GAP_LINK.findall(response.text)]

    @task(4)
    def worklist(self):
        self.client.get(LIST, name="gap list")

    @task(2)
    def worklist_filtered(self):
        self.client.get(LIST, params=random.choice(FILTERS), name="gap list, filtered")

    @task(4)
    def gap_page(self):
        listing = self.client.get(LIST, params={"p": self.own_page}, name="gap list, own page")
        ids = self._gap_ids(listing)
        if ids:
            self.client.get(f"{LIST}{random.choice(ids)}/change/", name="gap page")

    @task(1)
    def transition(self):
        ids, service = [], ""
        for state, step in (("in_review", "validate_gap"), ("identified", "start_review")):
            listing = self.client.get(
                LIST, params={"state": state, "p": self.own_page}, name="gap list, filtered"
            )
            ids, service = self._gap_ids(listing), step
            if ids:
                break
        if not ids:
            return
        url = f"{LIST}{random.choice(ids)}/transition/{service}/"
        form = self.client.get(url, name="transition form")
        match = CSRF.search(form.text)
        if match is None:
            return
        with self.client.post(
            url,
            data={"csrfmiddlewaretoken": match.group(1), "reason": "load test: records checked"},
            headers={"Referer": self.host + url},
            name="transition",
            catch_response=True,
        ) as response:
            if response.status_code >= 400:
                response.failure(f"HTTP {response.status_code}")
