"""The plan being drafted: what the checked lines of one reply have set so far."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from mailgate.agents.commands.base import CommandError, Query
from mailgate.agents.plan import Event, PlanContext, TicketChange, TicketView
from mailgate.config.schema import Agent


@dataclass
class Draft:
    """Mutable, one per `plan()` call; a command's effect writes into it."""

    ctx: PlanContext
    creating: bool  # the mail opens a ticket (#new)
    assigning: bool  # the mail has an assignment command
    note_text: str  # the #note line's text and the text below it; "" without #note
    change: TicketChange = TicketChange()
    queries: list[Query] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    new_requester: str = ""
    new_title: str = ""
    note: str = ""
    answer: str = ""

    @property
    def ticket(self) -> TicketView | None:
        return self.ctx.ticket

    @property
    def existing_ticket(self) -> TicketView:
        """The ticket of a command that does not come with #new (so there is one)."""
        if self.ctx.ticket is None:
            raise CommandError("not with #new")
        return self.ctx.ticket

    @property
    def agent(self) -> Agent:
        return self.ctx.agent

    @property
    def is_admin(self) -> bool:
        return self.ctx.agent.role == "admin"

    def set(self, **values: Any) -> None:
        """Record new ticket values (the TicketChange fields)."""
        self.change = replace(self.change, **values)

    def is_ours(self, address: str) -> bool:
        """A queue address, also with a `+detail`: never a requester or CC."""
        local, _, domain = address.partition("@")
        base = local.split("+", 1)[0] + "@" + domain
        return address in self.ctx.our_addresses or base in self.ctx.our_addresses

    def not_ours(self, address: str) -> None:
        if self.is_ours(address):
            raise CommandError(f"{address} is one of our queue addresses")

    def reason(self, inline: str, command: str) -> str:
        """Why the ticket moves: the command's own text, else the note; one is required."""
        if inline:
            return inline
        if self.note_text:
            return self.note_text
        raise CommandError(
            f"{command} needs a note saying why and what was tried: "
            f"write it on the line ({command} ... ) or add #note with text"
        )

    def unassign_note(self) -> str:
        """Moving a ticket unassigns it, unless the same mail assigns it."""
        return "" if self.assigning else ", unassigned"
