"""#assign, #pickup, #release: who works on the ticket."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.agents.commands.base import Argument, Command, CommandError, Refused
from mailgate.agents.commands.draft import Draft
from mailgate.agents.commands.spec import ASSIGNMENT, CommandSpec, no_argument
from mailgate.agents.plan import Assigned


def _assignee(draft: Draft) -> str | None:
    return draft.ticket.assignee if draft.ticket else None


def _not_taken(draft: Draft, refusal: str) -> None:
    """Refuse unless the ticket is free or the agent's own (admins may take any)."""
    current = _assignee(draft)
    if current not in (None, draft.agent.name) and not draft.is_admin:
        raise Refused(f"assigned to {current}{refusal}")


@dataclass(frozen=True)
class Assign(Command):
    target: str  # an agent name, "me" or "nobody"

    def agent(self, draft: Draft) -> str:
        """The agent's name, "nobody" or an unknown name."""
        return draft.agent.name if self.target == "me" else self.target


def parse_assign(arg: Argument) -> Assign:
    return Assign(arg.one_word("agent name, 'me' or 'nobody'").lower())


def check_assign(draft: Draft, cmd: Assign) -> None:
    target = cmd.agent(draft)
    if target == "nobody":
        _not_taken(draft, "; only admins unassign others")
    elif target not in draft.ctx.agents:
        raise CommandError(f"no agent named {target!r}")
    elif target != draft.agent.name:
        if not draft.is_admin:
            raise Refused("only admins assign tickets to others (use #assign me or #pickup)")
    else:
        _not_taken(draft, "; only admins take tickets over")


def assign(draft: Draft, cmd: Assign) -> str:
    target = cmd.agent(draft)
    if target == "nobody":
        draft.set(assign=True, assignee=None)
        return "ok, unassigned"
    draft.set(assign=True, assignee=target)
    if target == draft.agent.name:
        return "ok, assigned to you"
    if target != _assignee(draft):
        draft.events.append(Assigned(target))
    return f"ok, assigned to {target}"


ASSIGN = CommandSpec(
    "#assign <agent|me|nobody>",
    "assign the ticket (admins: anyone; agents: me)",
    "#assign bob",
    parse=parse_assign,
    check=check_assign,
    apply=assign,
    group=ASSIGNMENT,
)


class Pickup(Command):
    """#pickup: #assign me."""


def check_pickup(draft: Draft, cmd: Pickup) -> None:
    _not_taken(draft, "; only admins take tickets over")


def pickup(draft: Draft, cmd: Pickup) -> str:
    draft.set(assign=True, assignee=draft.agent.name)
    return "ok, assigned to you"


PICKUP = CommandSpec(
    "#pickup",
    "assign the ticket to yourself",
    "#pickup",
    parse=no_argument(Pickup),
    check=check_pickup,
    apply=pickup,
    group=ASSIGNMENT,
)


class Release(Command):
    """#release: back to the queue, unassigned."""


def check_release(draft: Draft, cmd: Release) -> None:
    _not_taken(draft, ", not to you")


def release(draft: Draft, cmd: Release) -> str:
    draft.set(assign=True, assignee=None)
    return "ok, back in the queue" if _assignee(draft) else "ok (was not assigned)"


RELEASE = CommandSpec(
    "#release",
    "give the ticket back to the queue",
    "#release",
    parse=no_argument(Release),
    check=check_release,
    apply=release,
    group=ASSIGNMENT,
    with_new=False,
)
