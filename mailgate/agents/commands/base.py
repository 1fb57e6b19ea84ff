"""What every command shares: its base class, its two ways to fail, its argument. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from mailgate.config.base import ADDRESS_RE


@dataclass(frozen=True)
class Command:
    """One parsed command line; each command is a frozen subclass (one without fields
    needs no @dataclass of its own: it compares by class)."""


@dataclass(frozen=True)
class Query(Command):
    """A command that asks instead of changing the ticket: answered in the result mail."""


class CommandError(ValueError):
    """A command line that cannot be carried out as written; the message says what is wrong."""


class Refused(Exception):
    """The agent may not do this (role, queue, ownership)."""


@dataclass(frozen=True)
class Argument:
    """The text after a command's name, with the readings the parsers share."""

    command: str  # the command's name, for messages
    text: str  # stripped

    @property
    def words(self) -> list[str]:
        return self.text.split()

    def nothing(self) -> None:
        if self.text:
            raise CommandError(f"#{self.command} takes no argument")

    def one_word(self, what: str) -> str:
        words = self.words
        if len(words) != 1:
            raise CommandError(f"#{self.command} needs exactly one {what}")
        return words[0]

    def one_of(self, what: str, choices: tuple[str, ...], error: str) -> str:
        value = self.one_word(what).lower()
        if value not in choices:
            raise CommandError(error)
        return value

    def ticket_number(self) -> int:
        value = self.one_word("ticket number").lstrip("#")
        if not re.fullmatch(r"[1-9][0-9]{0,11}", value):
            raise CommandError(f"#{self.command} needs a ticket number")
        return int(value)

    def signed_items(self, item: Callable[[str], str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """`+a -b ...` -> (added, removed), each read by `item`, in order, without repeats."""
        name, words = self.command, self.words
        if not words:
            raise CommandError(f"#{name} needs +item or -item")
        add: list[str] = []
        remove: list[str] = []
        for w in words:
            if len(w) < 2 or w[0] not in "+-":
                raise CommandError(f"#{name}: write +{w.lstrip('+-')} or -{w.lstrip('+-')}")
            (add if w[0] == "+" else remove).append(item(w[1:].lower()))
        both = set(add) & set(remove)
        if both:
            raise CommandError(f"#{name}: {sorted(both)[0]} is both added and removed")
        return tuple(dict.fromkeys(add)), tuple(dict.fromkeys(remove))


def email_address(value: str) -> str:
    """`<Dan@Example.com>` -> `dan@example.com`; CommandError if it is not an address."""
    value = value.strip("<>").lower()
    if not ADDRESS_RE.match(value):
        raise CommandError(f"{value!r} is not an email address")
    return value
