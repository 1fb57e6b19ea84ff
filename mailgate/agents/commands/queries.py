"""#list, #unassigned, #show, #secret, #attachment, #help: questions, answered in the result mail.

The plan only collects them; `mailgate.agents.handle` answers them (and checks that the
agent may see the ticket a #show or #secret names).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from mailgate.agents.commands.base import Argument, CommandError, Query
from mailgate.agents.commands.draft import Draft
from mailgate.agents.commands.spec import CommandSpec, no_argument

Q = TypeVar("Q", bound=Query)


def answered_below(draft: Draft, query: Query) -> str:
    draft.queries.append(query)
    return "ok, answered below"


def _question(
    usage: str, meaning: str, example: str, parse: Callable[[Argument], Q]
) -> CommandSpec[Q]:
    """A question's entry: anyone may ask it, with or without a ticket."""
    return CommandSpec(usage, meaning, example, parse=parse, apply=answered_below, on_ticket=False)


def _numbered(query: Callable[[int], Q]) -> Callable[[Argument], Q]:
    """The parser of a question about one ticket: `#show 12`, `#show #12`."""
    return lambda arg: query(arg.ticket_number())


class ListMine(Query):
    """#list: the agent's open tickets."""


LIST = _question(
    "#list", "your open tickets, highest priority then oldest", "#list", no_argument(ListMine)
)


class ListUnassigned(Query):
    """#unassigned: the unassigned open tickets of the agent's queues."""


UNASSIGNED = _question(
    "#unassigned",
    "unassigned open tickets in your queues",
    "#unassigned",
    no_argument(ListUnassigned),
)


@dataclass(frozen=True)
class Show(Query):
    ticket_id: int


SHOW = _question("#show <N>", "a ticket's details and history", "#show 12", _numbered(Show))


@dataclass(frozen=True)
class Secret(Query):
    ticket_id: int  # mail me its decrypted PGP content, encrypted to my key


SECRET = _question(
    "#secret <N>",
    "a ticket's decrypted PGP content, encrypted to your key",
    "#secret 12",
    _numbered(Secret),
)


@dataclass(frozen=True)
class GetAttachment(Query):
    attachment_id: int  # mail me this attachment (its number in the notification)


def _attachment_number(arg: Argument) -> GetAttachment:
    value = arg.one_word("attachment number").lstrip("[#").rstrip("]")
    if not value.isascii() or not value.isdigit() or not 0 < int(value) < 10**12:
        raise CommandError(f"#{arg.command} needs an attachment number, as listed: [7]")
    return GetAttachment(int(value))


ATTACHMENT = _question(
    "#attachment <N>",
    "one attachment of a customer's mail (its [N] in the notification), in a separate mail",
    "#attachment 7",
    _attachment_number,
)


class Help(Query):
    """#help: the list of commands."""


HELP = _question("#help", "this list", "#help", no_argument(Help))
