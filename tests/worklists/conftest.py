"""Worklists personas: org A's agent and coordinator are in their teams (so they may take work);
org B's agent works org B's queues."""

import pytest

from worklists.models import Team
from worklists.queues import AGENTS, COORDINATORS, add_team_member, ensure_default_queues


def join(user, organization, team_name, system_user):
    ensure_default_queues(organization, actor=system_user)
    team = Team.objects.get(organization=organization, name=team_name)
    add_team_member(team, user, actor=system_user, reason="test team")
    return team


@pytest.fixture
def working_agent(agent_a, org_a, system_user):
    join(agent_a, org_a, AGENTS, system_user)
    return agent_a


@pytest.fixture
def working_agent_b(agent_b, org_b, system_user):
    join(agent_b, org_b, AGENTS, system_user)
    return agent_b


@pytest.fixture
def working_coordinator(coordinator_a, org_a, system_user):
    join(coordinator_a, org_a, COORDINATORS, system_user)
    return coordinator_a
