"""THE registry: every command's entry, in the order #help lists them. Pure.

A command is one `CommandSpec` (name, help line, parser, permission check, effect), written
beside its dataclass in the module of its kind (assignment, fields, routing, new_ticket,
queries). Adding a command is writing that entry and naming it below; the parser of a
line, the list #help sends, the reply splitter's idea of a command line and the planner
all read this registry. docs/agents.md is the reference for agents.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from mailgate.agents.commands import assignment, fields, new_ticket, queries, routing
from mailgate.agents.commands.base import Argument, Command, CommandError
from mailgate.agents.commands.spec import CommandSpec

_COMMAND_RE = re.compile(r"#([A-Za-z][A-Za-z-]*)(?:[ \t]+(.*))?")


class Registry:
    """The commands by name and alias, and what derives from them."""

    def __init__(self, specs: Iterable[CommandSpec[Any]]):
        self.specs = tuple(specs)
        self._by_name: dict[str, CommandSpec[Any]] = {}
        for spec in self.specs:
            for name in spec.names:
                if name in self._by_name:
                    raise ValueError(f"#{name} is in the registry twice")
                self._by_name[name] = spec

    def lookup(self, name: str) -> CommandSpec[Any] | None:
        return self._by_name.get(name.lower())

    def read(self, text: str) -> tuple[CommandSpec[Any], Command]:
        """One command line (`#priority +10`) -> its entry and command; raises CommandError."""
        m = _COMMAND_RE.fullmatch(text.strip())
        if m is None:
            raise CommandError("not a command: a command is '#' and a word, e.g. #pickup")
        name = m.group(1).lower()
        spec = self.lookup(name)
        if spec is None:
            raise CommandError(f"unknown command #{name} (#help lists the commands)")
        return spec, spec.parse(Argument(name, (m.group(2) or "").strip()))

    def grammar(self) -> tuple[tuple[str, str], ...]:
        """(usage, meaning) of each command: the list #help sends."""
        return tuple((spec.usage, spec.help) for spec in self.specs)

    def line_re(self, *, takes_rest: bool = False) -> re.Pattern[str]:
        """`#name` at the start of a line, for every command (or those that take the rest)."""
        names = sorted(n for s in self.specs if s.takes_rest or not takes_rest for n in s.names)
        return re.compile(r"^\s*#(" + "|".join(names) + r")\b", re.I)


# in the order #help lists them
REGISTRY = Registry(
    (
        assignment.ASSIGN,
        assignment.PICKUP,
        assignment.RELEASE,
        fields.PRIORITY,
        fields.STATUS,
        fields.CLOSE,
        routing.NOTE,
        routing.QUEUE,
        routing.ESCALATE,
        fields.STICKY,
        fields.CC,
        fields.TITLE,
        fields.REQUESTER,
        fields.TAG,
        fields.COMPLEXITY,
        new_ticket.NEW,
        queries.LIST,
        queries.UNASSIGNED,
        queries.SHOW,
        queries.SECRET,
        queries.ATTACHMENT,
        queries.HELP,
    )
)

GRAMMAR = REGISTRY.grammar()


def parse_line(text: str) -> Command:
    """One command line (`#priority +10`) -> a command; raises CommandError."""
    return REGISTRY.read(text)[1]
