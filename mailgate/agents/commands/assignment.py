"""#assign, #pickup, #release: who works on the ticket."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.agents.commands.base import Argument, Command, CommandError, Refused
from mailgate.agents.commands.draft import Draft
from mailgate.agents.plan import Assigned


@dataclass(frozen=True)
class Assign(Command):
    target: str  # an agent name, "me" or "nobody"


@dataclass(frozen=True)
class Pickup(Command):
    pass


@dataclass(frozen=True)
class Release(Command):
    pass


def parse_assign(arg: Argument) -> Assign:
    return Assign(arg.one_word("agent name, 'me' or 'nobody'").lower())


def _target(draft: Draft, cmd: Assign) -> str:
    return draft.agent.name if cmd.target == "me" else cmd.target


def _assignee(draft: Draft) -> str | None:
    return draft.ticket.assignee if draft.ticket else None


def _not_taken(draft: Draft, refusal: str) -> None:
    """Refuse unless the ticket is free or the agent's own (admins may take any)."""
    current = _assignee(draft)
    if current not in (None, draft.agent.name) and not draft.is_admin:
        raise Refused(f"assigned to {current}{refusal}")


def check_assign(draft: Draft, cmd: Assign) -> None:
    target = _target(draft, cmd)
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
    target = _target(draft, cmd)
    if target == "nobody":
        draft.set(assign=True, assignee=None)
        return "ok, unassigned"
    draft.set(assign=True, assignee=target)
    if target == draft.agent.name:
        return "ok, assigned to you"
    if target != _assignee(draft):
        draft.events.append(Assigned(target))
    return f"ok, assigned to {target}"


def check_pickup(draft: Draft, cmd: Pickup) -> None:
    _not_taken(draft, "; only admins take tickets over")


def pickup(draft: Draft, cmd: Pickup) -> str:
    draft.set(assign=True, assignee=draft.agent.name)
    return "ok, assigned to you"


def check_release(draft: Draft, cmd: Release) -> None:
    _not_taken(draft, ", not to you")


def release(draft: Draft, cmd: Release) -> str:
    draft.set(assign=True, assignee=None)
    return "ok, back in the queue" if _assignee(draft) else "ok (was not assigned)"
