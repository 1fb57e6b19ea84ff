"""THE registry: every command, in the order #help lists them. Pure.

Adding a command is adding its entry here (with its dataclass, parser, check and effect
next to the commands like it); the parser of a line, the grammar of #help and of the
error transcript, the reply splitter's idea of a command line and the planner all read
this table. docs/agents.md is the reference for agents.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from mailgate.agents.commands import assignment, fields, new_ticket, queries, routing
from mailgate.agents.commands.base import Argument, Command, CommandError
from mailgate.agents.commands.spec import ASSIGNMENT, CommandSpec, answered_below, no_argument

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
        spec = self._by_name.get(name)
        if spec is None:
            raise CommandError(f"unknown command #{name} (#help lists the commands)")
        return spec, spec.parse(Argument(name, (m.group(2) or "").strip()))

    def grammar(self) -> tuple[tuple[str, str], ...]:
        """(usage, meaning) of each command: #help's list and the error transcript's."""
        return tuple((spec.usage, spec.help) for spec in self.specs)

    def line_re(self, *, takes_rest: bool = False) -> re.Pattern[str]:
        """`#name` at the start of a line, for every command (or those that take the rest)."""
        names = sorted(n for s in self.specs if s.takes_rest or not takes_rest for n in s.names)
        return re.compile(r"^\s*#(" + "|".join(names) + r")\b", re.I)


REGISTRY = Registry(
    (
        CommandSpec(
            name="assign",
            usage="#assign <agent|me|nobody>",
            help="assign the ticket (admins: anyone; agents: me)",
            example="#assign me",
            parse=assignment.parse_assign,
            check=assignment.check_assign,
            apply=assignment.assign,
            group=ASSIGNMENT,
        ),
        CommandSpec(
            name="pickup",
            usage="#pickup",
            help="assign the ticket to yourself",
            example="#pickup",
            parse=no_argument(assignment.Pickup),
            check=assignment.check_pickup,
            apply=assignment.pickup,
            group=ASSIGNMENT,
        ),
        CommandSpec(
            name="release",
            usage="#release",
            help="give the ticket back to the queue",
            example="#release",
            parse=no_argument(assignment.Release),
            check=assignment.check_release,
            apply=assignment.release,
            group=ASSIGNMENT,
            with_new=False,
        ),
        CommandSpec(
            name="priority",
            usage="#priority <1-99|+N|-N>",
            help="set or move the priority",
            example="#priority +10",
            parse=fields.parse_priority,
            apply=fields.priority,
        ),
        CommandSpec(
            name="status",
            usage="#status <open|on-hold|resolved|closed>",
            help="set the status",
            example="#status on-hold",
            parse=fields.parse_status,
            apply=fields.status,
            group="status",
        ),
        CommandSpec(
            name="close",
            usage="#close",
            help="same as #status closed",
            example="#close",
            parse=no_argument(fields.Close),
            apply=fields.close,
            group="status",
        ),
        CommandSpec(
            name="note",
            usage="#note [text]",
            help="the rest of the mail is an internal note; nothing is sent",
            example="#note called the customer",
            parse=routing.parse_note,
            apply=routing.note,
            takes_rest=True,
        ),
        CommandSpec(
            name="queue",
            usage="#queue <name> [why]",
            help="move to another queue; needs a reason (here or in #note)",
            example="#queue billing wants a refund",
            parse=routing.parse_queue,
            apply=routing.move_queue,
            with_new=False,
        ),
        CommandSpec(
            name="escalate",
            usage="#escalate [what was tried]",
            help="to the next tier; needs a reason (here or in #note)",
            example="#escalate restarted twice, still down",
            parse=routing.parse_escalate,
            apply=routing.escalate,
            with_new=False,
        ),
        CommandSpec(
            name="sticky",
            usage="#sticky on|off",
            help="keep the assignee when the customer replies",
            example="#sticky on",
            parse=fields.parse_sticky,
            apply=fields.sticky,
        ),
        CommandSpec(
            name="cc",
            usage="#cc +addr -addr",
            help="add or remove customers copied on answers",
            example="#cc +dan@example.com -eve@example.com",
            parse=fields.parse_cc,
            apply=fields.cc,
            repeatable=True,
        ),
        CommandSpec(
            name="title",
            usage="#title <text>",
            help="change the ticket's title",
            example="#title Printer offline since Monday",
            parse=fields.parse_title,
            apply=fields.title,
        ),
        CommandSpec(
            name="requester",
            usage="#requester <addr>",
            help="change who the ticket is for",
            example="#requester <dan@example.com>",
            parse=fields.parse_requester,
            apply=fields.requester,
            with_new=False,
        ),
        CommandSpec(
            name="tag",
            usage="#tag +x -y",
            help="add or remove tags",
            example="#tag +dns -billing",
            parse=fields.parse_tag,
            apply=fields.tag,
            repeatable=True,
        ),
        CommandSpec(
            name="complexity",
            usage="#complexity lower|medium|hard",
            help="KPI category (team leads and admins)",
            example="#complexity hard",
            parse=fields.parse_complexity,
            check=fields.check_complexity,
            apply=fields.complexity,
        ),
        CommandSpec(
            name="new",
            usage="#new <addr>",
            help="open a ticket for addr (command address only)",
            example="#new dan@example.com",
            parse=new_ticket.parse_new,
            check=new_ticket.check_new,
            apply=new_ticket.new_ticket,
            on_ticket=False,
            opens_ticket=True,
        ),
        CommandSpec(
            name="list",
            usage="#list",
            help="your open tickets, highest priority then oldest",
            example="#list",
            parse=no_argument(queries.ListMine),
            apply=answered_below,
            on_ticket=False,
        ),
        CommandSpec(
            name="unassigned",
            usage="#unassigned",
            help="unassigned open tickets in your queues",
            example="#unassigned",
            parse=no_argument(queries.ListUnassigned),
            apply=answered_below,
            on_ticket=False,
        ),
        CommandSpec(
            name="show",
            usage="#show <N>",
            help="a ticket's details and history",
            example="#show 12",
            parse=queries.parse_show,
            apply=answered_below,
            on_ticket=False,
        ),
        CommandSpec(
            name="secret",
            usage="#secret <N>",
            help="a ticket's decrypted PGP content, encrypted to your key",
            example="#secret 12",
            parse=queries.parse_secret,
            apply=answered_below,
            on_ticket=False,
        ),
        CommandSpec(
            name="help",
            usage="#help",
            help="this list",
            example="#help",
            parse=no_argument(queries.Help),
            apply=answered_below,
            on_ticket=False,
        ),
    )
)

GRAMMAR = REGISTRY.grammar()


def parse_line(text: str) -> Command:
    """One command line (`#priority +10`) -> a command; raises CommandError."""
    return REGISTRY.read(text)[1]
