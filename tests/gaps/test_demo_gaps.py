import pytest
from django.core.management import call_command

from gaps.care_gaps import CareGap, GapState

pytestmark = pytest.mark.django_db


def test_demo_gaps_cover_every_state_and_keep_the_open_gap_rules(settings):
    settings.DEBUG = True
    call_command("seed_demo", patients=400)
    states = set(CareGap.objects.values_list("state", flat=True))
    assert states == set(GapState.values)
    assert not CareGap.objects.open().filter(next_step_due__isnull=True).exists()
    closed = CareGap.objects.filter(state="closed")
    assert all(gap.evidence.exists() for gap in closed)
    assert CareGap.objects.filter(sources__kind="payer_list").exists()
