"""The one copy of each access rule: tiers, visibility, who hears about a ticket."""

from __future__ import annotations

import pytest

from mailgate.agents.access import (
    can_see,
    escalation_recipients,
    next_tier,
    queue_agents,
    team_leads,
)
from mailgate.config.schema import Agent

ADMIN = Agent(name="root", address="root@example.test", queues=["billing"], role="admin")
L1 = Agent(name="una", address="una@example.test", queues=["support"], tier="L1")
L3 = Agent(name="tres", address="tres@example.test", queues=["support"], tier="L3")
LEAD = Agent(name="lea", address="lea@example.test", queues=["support"], team_lead=True)
ALL = [ADMIN, L1, L3, LEAD]


@pytest.mark.parametrize(("tier", "up"), [("L1", "L2"), ("L2", "L3"), ("L3", None), ("", "L2")])
def test_next_tier_is_none_at_the_top(tier: str, up: str | None):
    # sla.next_tier said "L3" at L3 and commands.next_tier None: None won, because
    # `#escalate` at L3 must be refused and the sweep says "still unresolved at L3" itself.
    assert next_tier(tier) == up


@pytest.mark.parametrize(
    ("agent", "queues", "assignee", "seen"),
    [
        (ADMIN, {"support"}, "", True),  # admins see everything
        (L1, {"support"}, "", True),  # a queue of theirs
        (L1, {"sales"}, "una", True),  # assigned to them, in a foreign queue
        (L1, {"sales"}, "", False),
        (L1, {"sales"}, "tres", False),
        (L1, set(), "", False),
    ],
)
def test_can_see(agent: Agent, queues: set[str], assignee: str, seen: bool):
    assert can_see(agent, queues, assignee) is seen


def test_escalation_reaches_the_lowest_staffed_tier_never_nobody():
    # The SLA sweep told the exact tier only (nobody, when that tier was unstaffed);
    # notifications told the tier and everyone above, with an admin fallback. One rule
    # now: the tier itself, else the next staffed tier above, else the admins.
    two = Agent(name="dos", address="dos@example.test", queues=["support"], tier="L2")
    assert [a.name for a in escalation_recipients(ALL, "support", "L2")] == ["tres"]
    assert [a.name for a in escalation_recipients([*ALL, two], "support", "L2")] == ["dos"]
    assert [a.name for a in escalation_recipients(ALL, "support", "L1")] == ["una", "lea"]
    assert [a.name for a in escalation_recipients(ALL, "support", "")] == ["una", "lea"]
    assert [a.name for a in escalation_recipients(ALL, "sales", "L1")] == ["root"]
    assert escalation_recipients(ALL, "sales", "L1", exclude={"root"}) == []
    # those who already know do not count as staffing the tier
    assert [a.name for a in escalation_recipients(ALL, "support", "L1", {"una", "lea"})] == ["tres"]


def test_queue_agents_and_team_leads():
    assert [a.name for a in queue_agents(ALL, ["support", "billing"], exclude="una")] == [
        "root",
        "tres",
        "lea",
    ]
    assert [a.name for a in team_leads(ALL, "support")] == ["lea"]
    assert team_leads(ALL, "billing") == []
