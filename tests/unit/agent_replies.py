"""The agents, queues and ticket the pure command tests plan replies against."""

from __future__ import annotations

from dataclasses import replace

from mailgate.agents import planner
from mailgate.agents.plan import Plan, PlanContext, TicketView
from mailgate.agents.reply import split_reply
from mailgate.config.schema import Agent

ALICE = Agent(name="alice", address="alice@example.test", queues=["support"], role="admin")
BOB = Agent(name="bob", address="bob@example.test", queues=["support", "sales"], tier="L1")
CAROL = Agent(name="carol", address="carol@example.test", queues=["billing"], team_lead=True)
NILS = Agent(name="nils", address="nils@example.test", queues=[])  # an agent of no queue
AGENTS = {a.name: a for a in (ALICE, BOB, CAROL, NILS)}
QUEUES = frozenset({"support", "billing", "sales"})
OURS = frozenset({"support@example.test", "billing@example.test", "sales@example.test"})
TICKET = TicketView(
    id=12,
    queue="support",
    queues=frozenset({"support"}),
    status="open",
    priority=50,
    assignee=None,
    sticky=False,
    tier="L1",
    requester="carla@example.com",
)


def ticket(**changes) -> TicketView:
    return replace(TICKET, **changes)


def ctx(agent: Agent = BOB, ticket: TicketView | None = TICKET, **kw) -> PlanContext:
    return PlanContext(
        agent=agent,
        agents=AGENTS,
        queues=QUEUES,
        our_addresses=OURS,
        address_queue=kw.pop("address_queue", "support"),
        ticket=ticket,
        **kw,
    )


def run(text: str, **kw) -> Plan:
    """Split and plan `text` as `agent` (default BOB) on `ticket` (default TICKET)."""
    return planner.plan(split_reply(text, kw.pop("signature", "")), ctx(**kw))
