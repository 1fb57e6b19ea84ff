"""What planning an agent's reply starts from and what it yields: the ticket as the agent
sees it, the context, the result of each line, the change to the ticket, the events. Pure.

`mailgate.agents.planner.plan` makes a `Plan`; `mailgate.agents.handle` applies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mailgate.agents.commands.base import Command, Query
from mailgate.config.schema import Agent


@dataclass(frozen=True)
class TicketView:
    """What authorization and planning need to know about the ticket being worked on."""

    id: int
    queue: str
    queues: frozenset[str]
    status: str
    priority: int
    assignee: str | None
    sticky: bool
    tier: str
    requester: str


@dataclass(frozen=True)
class PlanContext:
    agent: Agent
    agents: Mapping[str, Agent]  # by name
    queues: frozenset[str]  # every configured queue name
    our_addresses: frozenset[str]  # queue addresses: never a requester or CC
    address_queue: str  # the queue whose address the mail was sent to
    ticket: TicketView | None  # None: the command address (ticket 0)
    subject: str = ""  # the mail's subject (title of a #new ticket)


@dataclass(frozen=True)
class LineResult:
    line: int  # 0 for the answer/note pseudo-line
    text: str
    ok: bool
    message: str


@dataclass(frozen=True)
class TicketChange:
    """The new values a plan writes; None / empty means unchanged."""

    assign: bool = False
    assignee: str | None = None
    sticky: bool | None = None
    priority: int | None = None
    status: str | None = None
    queue: str | None = None
    tier: str | None = None
    title: str | None = None
    requester: str | None = None
    complexity: str | None = None
    cc_add: tuple[str, ...] = ()
    cc_remove: tuple[str, ...] = ()
    tag_add: tuple[str, ...] = ()
    tag_remove: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self == TicketChange()


@dataclass(frozen=True)
class Assigned:
    """Tell `agent` that the ticket is now theirs."""

    agent: str


@dataclass(frozen=True)
class Escalated:
    """Tell the agents of `queue` (at `tier` or above, if given) why the ticket came to them."""

    queue: str
    tier: str
    reason: str
    moved: bool  # to another queue (else: to the next tier)


Event = Assigned | Escalated


@dataclass(frozen=True)
class Plan:
    lines: tuple[LineResult, ...]
    change: TicketChange = TicketChange()
    answer: str = ""  # to the customer
    note: str = ""  # internal
    new_requester: str = ""  # #new: open a ticket for this address
    new_title: str = ""
    queries: tuple[Query, ...] = ()
    events: tuple[Event, ...] = ()
    commands: tuple[tuple[LineResult, Command], ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.lines)

    @property
    def errors(self) -> tuple[LineResult, ...]:
        return tuple(r for r in self.lines if not r.ok)
