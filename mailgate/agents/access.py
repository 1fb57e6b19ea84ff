"""Who may see a ticket and who hears about it: tiers, visibility, recipients. Pure.

One copy of each rule, used by agent commands, `#secret`, notifications and the SLA sweeps.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from mailgate.config.schema import Agent

TIERS = ("L1", "L2", "L3")
TIER_NAMES = {"L1": "Tier 1", "L2": "Tier 2", "L3": "Tier 3"}


def next_tier(tier: str) -> str | None:
    """L1 -> L2 -> L3; None at the top tier (there is no one further to escalate to)."""
    i = TIERS.index(tier) if tier in TIERS else 0
    return TIERS[i + 1] if i + 1 < len(TIERS) else None


def can_see(agent: Agent, queues: Iterable[str], assignee: str) -> bool:
    """H-Sphere: admins see every ticket; an agent sees their queues' tickets and their own."""
    if agent.role == "admin" or (assignee and assignee == agent.name):
        return True
    return bool(set(queues) & set(agent.queues))


def queue_agents(agents: Iterable[Agent], queues: Iterable[str], exclude: str = "") -> list[Agent]:
    """The agents of any of these queues, in config order, without `exclude` (a name)."""
    wanted = set(queues)
    return [a for a in agents if a.name != exclude and wanted & set(a.queues)]


def escalation_recipients(
    agents: Iterable[Agent], queue: str, tier: str, exclude: Collection[str] = ()
) -> list[Agent]:
    """Who hears that a ticket reached `tier`: the queue's agents of that tier; if none
    (not counting `exclude`, names who already know), the next staffed tier above; if none,
    the admins. So a ticket is never unheard, and Tier 2's escalation does not page Tier 3."""
    agents = [a for a in agents if a.name not in exclude]
    members = queue_agents(agents, [queue])
    floor = TIERS.index(tier) if tier in TIERS else 0
    for t in TIERS[floor:]:
        found = [a for a in members if a.tier == t]
        if found:
            return found
    return [a for a in agents if a.role == "admin"]


def team_leads(agents: Iterable[Agent], queue: str) -> list[Agent]:
    return [a for a in agents if a.team_lead and queue in a.queues]
