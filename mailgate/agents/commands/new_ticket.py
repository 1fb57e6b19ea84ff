"""#new: open a ticket for a customer from the agent's command address."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailgate.agents.commands.base import Argument, Command, CommandError, Refused, email_address
from mailgate.agents.commands.draft import Draft
from mailgate.agents.commands.fields import MAX_TITLE
from mailgate.agents.commands.spec import CommandSpec


@dataclass(frozen=True)
class NewTicket(Command):
    requester: str


def parse_new(arg: Argument) -> NewTicket:
    return NewTicket(email_address(arg.one_word("requester address")))


def check_new(draft: Draft, cmd: NewTicket) -> None:
    if draft.ticket is not None:
        raise CommandError("#new works only on your command address (see #help)")
    draft.not_ours(cmd.requester)
    queue = draft.ctx.address_queue
    if not (draft.is_admin or queue in draft.agent.queues):
        raise Refused(f"you are not an agent of queue {queue}")


def new_ticket(draft: Draft, cmd: NewTicket) -> str:
    draft.new_requester = cmd.requester
    draft.new_title = title_from_subject(draft.ctx.subject)
    return f"ok, new ticket in {draft.ctx.address_queue} for {cmd.requester}"


def title_from_subject(subject: str) -> str:
    """The mail's subject without `Re:`/`Fwd:` prefixes and ticket tags: the new title."""
    s = re.sub(r"^\s*((re|aw|sv|fwd?|antw)\s*:\s*)+", "", subject or "", flags=re.I)
    s = re.sub(r"\[[^\]]*#\d+\]\s*", "", s).strip()
    return (s or "(no subject)")[:MAX_TITLE]


NEW = CommandSpec(
    "#new <addr>",
    "open a ticket for addr (command address only)",
    "#new dan@example.com",
    parse=parse_new,
    check=check_new,
    apply=new_ticket,
    on_ticket=False,
    opens_ticket=True,
)
