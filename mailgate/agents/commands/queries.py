"""#list, #unassigned, #show, #secret, #help: questions, answered in the result mail.

The plan only collects them; `mailgate.agents.handle` answers them (and checks that the
agent may see the ticket a #show or #secret names).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.agents.commands.base import Query
from mailgate.agents.commands.spec import CommandSpec, answered_below, no_argument


class ListMine(Query):
    """#list: the agent's open tickets."""


class ListUnassigned(Query):
    """#unassigned: the unassigned open tickets of the agent's queues."""


LIST = CommandSpec(
    "#list",
    "your open tickets, highest priority then oldest",
    "#list",
    parse=no_argument(ListMine),
    apply=answered_below,
    on_ticket=False,
)
UNASSIGNED = CommandSpec(
    "#unassigned",
    "unassigned open tickets in your queues",
    "#unassigned",
    parse=no_argument(ListUnassigned),
    apply=answered_below,
    on_ticket=False,
)


@dataclass(frozen=True)
class Show(Query):
    ticket_id: int


@dataclass(frozen=True)
class Secret(Query):
    ticket_id: int  # mail me its decrypted PGP content, encrypted to my key


SHOW = CommandSpec(
    "#show <N>",
    "a ticket's details and history",
    "#show 12",
    parse=lambda arg: Show(arg.ticket_number()),
    apply=answered_below,
    on_ticket=False,
)
SECRET = CommandSpec(
    "#secret <N>",
    "a ticket's decrypted PGP content, encrypted to your key",
    "#secret 12",
    parse=lambda arg: Secret(arg.ticket_number()),
    apply=answered_below,
    on_ticket=False,
)


class Help(Query):
    """#help: the list of commands."""


HELP = CommandSpec(
    "#help",
    "this list",
    "#help",
    parse=no_argument(Help),
    apply=answered_below,
    on_ticket=False,
)
