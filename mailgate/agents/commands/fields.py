"""The commands that set one of the ticket's fields: priority, status, sticky, title,
requester, complexity, CCs and tags."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailgate.agents.commands.base import Argument, Command, CommandError, Refused, email_address
from mailgate.agents.commands.draft import Draft
from mailgate.agents.commands.spec import CommandSpec, no_argument

STATUSES = ("open", "on-hold", "resolved", "closed")
COMPLEXITIES = ("lower", "medium", "hard")
MAX_TITLE = 500
_TAG_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,59}")


@dataclass(frozen=True)
class Priority(Command):
    value: int
    relative: bool  # +N / -N


def parse_priority(arg: Argument) -> Priority:
    value = arg.one_word("value: 1-99, +N or -N")
    if not re.fullmatch(r"[+-]?[0-9]{1,2}", value):
        raise CommandError("priority must be 1-99, +N or -N")
    number = int(value)
    if value[0] in "+-":
        if number == 0:
            raise CommandError("a relative priority must not be 0")
        return Priority(number, True)
    if not 1 <= number <= 99:
        raise CommandError("priority must be between 1 and 99")
    return Priority(number, False)


def priority(draft: Draft, cmd: Priority) -> str:
    t = draft.ticket
    old = t.priority if t else 50
    new = max(1, min(99, old + cmd.value)) if cmd.relative else cmd.value
    draft.set(priority=new)
    return f"ok, priority {old} -> {new}" if t else f"ok, priority {new}"


PRIORITY = CommandSpec(
    "#priority <1-99|+N|-N>",
    "set or move the priority",
    "#priority +10",
    parse=parse_priority,
    apply=priority,
)


@dataclass(frozen=True)
class Status(Command):
    value: str


def parse_status(arg: Argument) -> Status:
    return Status(arg.one_of("status", STATUSES, "status must be one of " + ", ".join(STATUSES)))


def status(draft: Draft, cmd: Status) -> str:
    draft.set(status=cmd.value)
    return f"ok, status {cmd.value}"


STATUS = CommandSpec(
    "#status <open|on-hold|resolved|closed>",
    "set the status",
    "#status on-hold",
    parse=parse_status,
    apply=status,
    group="status",
)


class Close(Command):
    """#close: #status closed."""


CLOSE = CommandSpec(
    "#close",
    "same as #status closed",
    "#close",
    parse=no_argument(Close),
    apply=lambda draft, cmd: status(draft, Status("closed")),
    group="status",
)


@dataclass(frozen=True)
class Sticky(Command):
    on: bool


def parse_sticky(arg: Argument) -> Sticky:
    return Sticky(arg.one_of("value: on or off", ("on", "off"), "#sticky takes on or off") == "on")


def sticky(draft: Draft, cmd: Sticky) -> str:
    draft.set(sticky=cmd.on)
    return "ok, sticky " + ("on" if cmd.on else "off")


STICKY = CommandSpec(
    "#sticky on|off",
    "keep the assignee when the customer replies",
    "#sticky on",
    parse=parse_sticky,
    apply=sticky,
)


@dataclass(frozen=True)
class Title(Command):
    text: str


def parse_title(arg: Argument) -> Title:
    if not arg.text:
        raise CommandError("#title needs the new title")
    if len(arg.text) > MAX_TITLE:
        raise CommandError(f"a title has at most {MAX_TITLE} characters")
    return Title(arg.text)


def title(draft: Draft, cmd: Title) -> str:
    draft.set(title=cmd.text)
    return "ok, title changed"


TITLE = CommandSpec(
    "#title <text>",
    "change the ticket's title",
    "#title Printer offline since Monday",
    parse=parse_title,
    apply=title,
)


@dataclass(frozen=True)
class Requester(Command):
    address: str


def requester(draft: Draft, cmd: Requester) -> str:
    draft.not_ours(cmd.address)
    draft.set(requester=cmd.address)
    return f"ok, requester {cmd.address}"


REQUESTER = CommandSpec(
    "#requester <addr>",
    "change who the ticket is for",
    "#requester <dan@example.com>",
    parse=lambda arg: Requester(email_address(arg.one_word("address"))),
    apply=requester,
    with_new=False,
)


@dataclass(frozen=True)
class Complexity(Command):
    level: str


def parse_complexity(arg: Argument) -> Complexity:
    error = "complexity must be one of " + ", ".join(COMPLEXITIES)
    return Complexity(arg.one_of("level", COMPLEXITIES, error))


def check_complexity(draft: Draft, cmd: Complexity) -> None:
    if not (draft.is_admin or draft.agent.team_lead):
        raise Refused("complexity is set by team leads and admins")


def complexity(draft: Draft, cmd: Complexity) -> str:
    draft.set(complexity=cmd.level)
    return f"ok, complexity {cmd.level}"


COMPLEXITY = CommandSpec(
    "#complexity lower|medium|hard",
    "KPI category (team leads and admins)",
    "#complexity hard",
    parse=parse_complexity,
    check=check_complexity,
    apply=complexity,
)


@dataclass(frozen=True)
class Cc(Command):
    add: tuple[str, ...]
    remove: tuple[str, ...]


def cc(draft: Draft, cmd: Cc) -> str:
    for address in cmd.add:
        draft.not_ours(address)
    ch = draft.change
    draft.set(cc_add=_merged(ch.cc_add, cmd.add), cc_remove=_merged(ch.cc_remove, cmd.remove))
    return "ok, " + _signed_summary(cmd.add, cmd.remove)


CC = CommandSpec(
    "#cc +addr -addr",
    "add or remove customers copied on answers",
    "#cc +dan@example.com -eve@example.com",
    parse=lambda arg: Cc(*arg.signed_items(email_address)),
    apply=cc,
    repeatable=True,
)


@dataclass(frozen=True)
class Tag(Command):
    add: tuple[str, ...]
    remove: tuple[str, ...]


def _tag(item: str) -> str:
    if not _TAG_RE.fullmatch(item):
        raise CommandError(f"{item!r} is not a tag (a-z, 0-9, '_', '.', '-')")
    return item


def tag(draft: Draft, cmd: Tag) -> str:
    ch = draft.change
    draft.set(tag_add=_merged(ch.tag_add, cmd.add), tag_remove=_merged(ch.tag_remove, cmd.remove))
    return "ok, " + _signed_summary(cmd.add, cmd.remove)


TAG = CommandSpec(
    "#tag +x -y",
    "add or remove tags",
    "#tag +dns -billing",
    parse=lambda arg: Tag(*arg.signed_items(_tag)),
    apply=tag,
    repeatable=True,
)


def _merged(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(old + new))


def _signed_summary(add: tuple[str, ...], remove: tuple[str, ...]) -> str:
    return " ".join([*(f"+{a}" for a in add), *(f"-{r}" for r in remove)])
