"""#note keeps the text as an internal note; #queue and #escalate move a ticket on (and
need a reason: on their line or in the note)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailgate.agents.access import next_tier
from mailgate.agents.commands.base import Argument, Command, CommandError
from mailgate.agents.commands.draft import Draft
from mailgate.agents.commands.spec import CommandSpec
from mailgate.agents.plan import Escalated

_QUEUE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


@dataclass(frozen=True)
class Note(Command):
    text: str  # text on the #note line itself (the rest of the mail follows it)


def note(draft: Draft, cmd: Note) -> str:
    if not draft.note_text:
        raise CommandError("#note needs text (on the line or below it)")
    draft.note = draft.note_text
    return "ok, kept as an internal note"


NOTE = CommandSpec(
    "#note [text]",
    "the rest of the mail is an internal note; nothing is sent",
    "#note called the customer",
    parse=lambda arg: Note(arg.text),
    apply=note,
    takes_rest=True,
)


@dataclass(frozen=True)
class MoveQueue(Command):
    queue: str
    reason: str


def parse_queue(arg: Argument) -> MoveQueue:
    words = arg.words
    if not words:
        raise CommandError("#queue needs a queue name")
    queue = words[0].lower()
    if not _QUEUE_NAME_RE.fullmatch(queue):
        raise CommandError(f"{words[0]!r} is not a queue name")
    return MoveQueue(queue, arg.text[len(words[0]) :].strip())


def move_queue(draft: Draft, cmd: MoveQueue) -> str:
    t = draft.existing_ticket
    if cmd.queue not in draft.ctx.queues:
        raise CommandError(f"no queue named {cmd.queue!r}")
    if cmd.queue == t.queue:
        raise CommandError(f"the ticket is already in {cmd.queue}")
    reason = draft.reason(cmd.reason, "#queue")
    draft.set(queue=cmd.queue)
    draft.events.append(Escalated(cmd.queue, "", reason, moved=True))
    return f"ok, moved {t.queue} -> {cmd.queue}" + draft.unassign_note()


QUEUE = CommandSpec(
    "#queue <name> [why]",
    "move to another queue; needs a reason (here or in #note)",
    "#queue billing wants a refund",
    parse=parse_queue,
    apply=move_queue,
    with_new=False,
)


@dataclass(frozen=True)
class Escalate(Command):
    reason: str


def escalate(draft: Draft, cmd: Escalate) -> str:
    t = draft.existing_ticket
    tier = next_tier(t.tier)
    if tier is None:
        raise CommandError(f"already at the highest tier ({t.tier})")
    reason = draft.reason(cmd.reason, "#escalate")
    draft.set(tier=tier)
    draft.events.append(Escalated(t.queue, tier, reason, moved=False))
    return f"ok, tier {t.tier} -> {tier}" + draft.unassign_note()


ESCALATE = CommandSpec(
    "#escalate [what was tried]",
    "to the next tier; needs a reason (here or in #note)",
    "#escalate restarted twice, still down",
    parse=lambda arg: Escalate(arg.text),
    apply=escalate,
    with_new=False,
)
