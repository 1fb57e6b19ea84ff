"""One command as the registry holds it: name, help line, parser, permission check, effect."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from mailgate.agents.commands.base import Argument, Command
from mailgate.agents.commands.draft import Draft

C = TypeVar("C", bound=Command)

ASSIGNMENT = "assignment"  # the group of #assign, #pickup, #release


def anyone(draft: Draft, command: Any) -> None:
    """The check of a command every agent may give (beyond seeing the ticket)."""


@dataclass(frozen=True)
class CommandSpec(Generic[C]):
    """A command's registry entry; `mailgate.agents.commands.registry` lists them all."""

    usage: str  # the #help line's left side, starting with the name: "#priority <1-99|+N|-N>"
    help: str  # and its right side
    example: str  # a line that parses (docs, tests)
    parse: Callable[[Argument], C]  # raises CommandError
    apply: Callable[[Draft, C], str]  # the effect; its "ok, ..." message; may raise CommandError
    # the permission check, after `on_ticket`'s; raises Refused (or CommandError)
    check: Callable[[Draft, C], None] = anyone
    on_ticket: bool = True  # needs a ticket the agent sees, or a #new in the same mail
    with_new: bool = True  # may come with #new
    opens_ticket: bool = False  # #new: the mail makes the ticket the other lines act on
    group: str = ""  # commands of one group exclude each other in a mail
    repeatable: bool = False  # may be given more than once (#cc, #tag)
    takes_rest: bool = False  # the rest of the mail is its text (#note): ends the block
    aliases: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.usage.split()[0].removeprefix("#")

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def no_argument(command: type[C]) -> Callable[[Argument], C]:
    """The parser of a command that takes nothing after its name."""

    def parse(arg: Argument) -> C:
        arg.nothing()
        return command()

    return parse
