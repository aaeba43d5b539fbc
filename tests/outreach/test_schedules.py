"""The outreach schedules exist once, whatever the number of migrates; tasks take only ids."""

import pytest
from django_q.models import Schedule

from outreach.schedule import SCHEDULES, ensure_schedules

pytestmark = pytest.mark.django_db


def test_schedules_are_created_once_and_never_catch_up_in_a_storm(settings):
    ensure_schedules()
    ensure_schedules()
    names = list(
        Schedule.objects.filter(name__startswith="outreach:").values_list("name", flat=True)
    )
    assert sorted(names) == sorted(SCHEDULES)
    assert settings.Q_CLUSTER["catch_up"] is False  # a missed run happens once, not N times
    outbox = Schedule.objects.get(func="outreach.tasks.outbox_tick")
    assert outbox.schedule_type == "I" and outbox.minutes == 1
    assert Schedule.objects.get(func="outreach.tasks.dormant_sweep").schedule_type == "D"
