"""#list, #unassigned, #show, #secret, #help: questions, answered in the result mail.

The plan only collects them; `mailgate.agents.handle` answers them (and checks that the
agent may see the ticket a #show or #secret names).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.agents.commands.base import Argument, Query


@dataclass(frozen=True)
class Help(Query):
    pass


@dataclass(frozen=True)
class ListMine(Query):
    pass


@dataclass(frozen=True)
class ListUnassigned(Query):
    pass


@dataclass(frozen=True)
class Show(Query):
    ticket_id: int


@dataclass(frozen=True)
class Secret(Query):
    ticket_id: int  # mail me its decrypted PGP content, encrypted to my key


def parse_show(arg: Argument) -> Show:
    return Show(arg.ticket_number())


def parse_secret(arg: Argument) -> Secret:
    return Secret(arg.ticket_number())
