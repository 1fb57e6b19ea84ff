"""Who may see a ticket and who hears about it: tiers, visibility, recipients. Pure.

One copy of each rule, used by agent commands, `#secret`, notifications and the SLA sweeps.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailgate.config.load import Agent

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
    agents: Iterable[Agent], queue: str, tier: str, exclude: str = ""
) -> list[Agent]:
    """The agents responsible for a ticket at `tier`: the queue's agents at that tier or
    above (any tier if ""); if the queue has none, the admins, so a ticket never goes
    unheard because a tier is not staffed."""
    agents = list(agents)
    floor = TIERS.index(tier) if tier in TIERS else 0
    found = [a for a in queue_agents(agents, [queue], exclude) if TIERS.index(a.tier) >= floor]
    return found or [a for a in agents if a.role == "admin" and a.name != exclude]


def team_leads(agents: Iterable[Agent], queue: str) -> list[Agent]:
    return [a for a in agents if a.team_lead and queue in a.queues]
