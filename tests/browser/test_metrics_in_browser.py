"""A supervisor opens the dashboard in chromium with every outside address blocked: Chart.js
comes from our static files and the charts draw."""

import datetime as dt
import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.utils import timezone

from metrics import snapshots
from metrics.models import AttemptDay, TransitionDay

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
SHOTS = os.environ.get("CAREHUB_SCREENSHOTS", "")
CHARTS = ("chart-funnel", "chart-trend", "chart-aging", "chart-quality")


def test_supervisor_sees_the_charts_drawn_offline(signed_in, live_server, supervisor_a, org_a):
    today = timezone.now().date()
    for months_ago, (validated, outreach) in enumerate([(40, 30), (50, 35), (45, 40)]):
        day = (today.replace(day=1) - dt.timedelta(days=31 * months_ago)).replace(day=10)
        for source, target, n in (
            ("", "identified", 60),
            ("in_review", "validated", validated),
            ("validated", "outreach", outreach),
            ("outreach", "scheduled", outreach // 2),
            ("scheduled", "completed", outreach // 3),
            ("completed", "closed", outreach // 4),
            ("in_review", "not_a_gap", 5),
        ):
            TransitionDay.objects.create(
                day=day,
                organization=org_a,
                measure_code="CMS130",
                actor=supervisor_a,
                from_state=source,
                to_state=target,
                gaps=n,
            )
        AttemptDay.objects.create(
            day=day,
            organization=org_a,
            actor=supervisor_a,
            automated=False,
            channel="phone",
            step="agent_call",
            outcome="reached_scheduled",
            attempts=12,
        )
        snapshots.roll_up_month(day)
    snapshots.take_snapshot(today, events_day=today - dt.timedelta(days=1))

    page = signed_in(supervisor_a)
    own_host = urlparse(live_server.url).netloc
    outside = []

    def only_our_server(route):
        if urlparse(route.request.url).netloc == own_host:
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    page.route("**/*", only_our_server)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto("/admin/")
    page.click("text=Supervisor dashboard")
    for chart in CHARTS:
        page.wait_for_selector(f"#{chart}[data-rendered=true]")
    drawn = page.evaluate(
        "ids => ids.map(id => { const c = Chart.getChart(document.getElementById(id));"
        " return c ? c.data.datasets.length : 0; })",
        list(CHARTS),
    )
    assert all(n >= 1 for n in drawn), drawn
    assert outside == []
    assert "Funnel" in page.content()
    rate = page.locator('#rates-table tr[data-rate="outreach_completion"]').inner_text()
    assert "Gap transitions into outreach" in rate and "105 / 135" in rate
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "metrics-dashboard.png"))
        page.screenshot(path=str(Path(SHOTS) / "metrics-dashboard-full.png"), full_page=True)

    with page.expect_download() as download_info:
        page.click("#metrics-csv")
    assert "Outreach completion rate" in Path(download_info.value.path()).read_text()
