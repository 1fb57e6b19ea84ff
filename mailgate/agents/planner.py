"""Plan an agent's reply: check every command line against the agent, their role and the
ticket, through the registry, and the text below them. Pure.

All or nothing: a plan with any error applies nothing; every line says what was wrong or
that it was fine but not applied.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mailgate.agents.access import can_see
from mailgate.agents.commands.base import Command, CommandError, Refused
from mailgate.agents.commands.draft import Draft
from mailgate.agents.commands.registry import REGISTRY
from mailgate.agents.commands.routing import Note
from mailgate.agents.commands.spec import ASSIGNMENT, CommandSpec
from mailgate.agents.plan import LineResult, Plan, PlanContext
from mailgate.agents.reply import ReplyText
from mailgate.agents.tokens import contains_token

_Entry = tuple[CommandSpec[Any], Command]  # a line that parsed: its entry and command


def plan(reply: ReplyText, ctx: PlanContext) -> Plan:
    """Check every command line and the answer; a Plan with no errors can be applied."""
    read = [_read(number, text) for number, text in reply.command_lines]
    draft = _draft(ctx, reply, [entry for _, entry in read if entry is not None])
    seen: dict[str, int] = {}
    checked = [_check(draft, seen, r, *entry) if entry else r for r, entry in read]
    results = [
        *checked,
        _text_line(draft, reply),
        *(
            LineResult(n, t, False, "error: commands must come first, before any other text")
            for n, t in reply.stray_commands
        ),
    ]
    if not all(r.ok for r in results):  # all or nothing: a line that was fine is not applied
        return Plan(lines=tuple(_not_applied(r) for r in results))
    return Plan(
        lines=tuple(results),
        change=draft.change,
        answer=draft.answer,
        note=draft.note,
        new_requester=draft.new_requester,
        new_title=draft.new_title,
        queries=tuple(draft.queries),
        events=tuple(draft.events),
        commands=tuple((r, e[1]) for r, (_, e) in zip(checked, read, strict=True) if e),
    )


def _read(number: int, text: str) -> tuple[LineResult, _Entry | None]:
    try:
        entry = REGISTRY.read(text)
    except CommandError as e:
        return LineResult(number, text, False, f"error: {e}"), None
    return LineResult(number, text, True, "ok"), entry


def _draft(ctx: PlanContext, reply: ReplyText, entries: list[_Entry]) -> Draft:
    """The empty draft, knowing what the whole mail holds (#new, an assignment, #note)."""
    notes = [c for _, c in entries if isinstance(c, Note)]
    return Draft(
        ctx,
        creating=any(spec.opens_ticket for spec, _ in entries),
        assigning=any(spec.group == ASSIGNMENT for spec, _ in entries),
        note_text="\n\n".join(s for s in (notes[0].text, reply.text.strip()) if s) if notes else "",
    )


def _check(
    draft: Draft, seen: dict[str, int], r: LineResult, spec: CommandSpec[Any], cmd: Command
) -> LineResult:
    try:
        _once(seen, spec, r.line)
        if spec.on_ticket:
            _on_ticket(draft, spec)
        spec.check(draft, cmd)
        message = spec.apply(draft, cmd)
    except Refused as e:
        return replace(r, ok=False, message=f"refused: {e}")
    except CommandError as e:
        return replace(r, ok=False, message=f"error: {e}")
    return replace(r, message=message)


def _once(seen: dict[str, int], spec: CommandSpec[Any], line: int) -> None:
    """One command of a kind per mail (#cc and #tag may repeat); one of each group."""
    if spec.repeatable:
        return
    key = spec.group or spec.name
    if key in seen:
        if spec.group:
            raise CommandError(f"conflicts with line {seen[key]}: one {key} command per mail")
        raise CommandError(f"given twice (also on line {seen[key]})")
    seen[key] = line


def _on_ticket(draft: Draft, spec: CommandSpec[Any]) -> None:
    """A ticket command needs a ticket the agent sees, or a #new it may come with."""
    t = draft.ticket
    if t is None and not draft.creating:
        raise CommandError(
            "no ticket here: reply to a ticket's notification, or open one with #new"
        )
    if draft.creating and not spec.with_new:
        raise CommandError("not with #new")
    if t is not None and not can_see(draft.agent, t.queues, t.assignee):
        raise Refused(f"ticket #{t.id} is not in your queues")


def _text_line(draft: Draft, reply: ReplyText) -> LineResult:
    """The pseudo-line for the text below the commands: answer, note, or an error."""
    text = reply.text.strip()
    n = len(text.split("\n")) if text else 0
    lines = f"{n} line" + ("" if n == 1 else "s")
    if reply.noted:
        return LineResult(0, f"(internal note, {lines})", True, "ok, not sent")
    if not text:
        if not reply.command_lines:
            return LineResult(0, "(no text)", False, "error: no command and no answer text")
        return LineResult(0, "(no answer text)", True, "ok, nothing sent to the customer")
    label = f"(answer, {lines})"
    problem = _answer_problem(draft, text)
    if problem:
        return LineResult(0, label, False, problem)
    draft.answer = text
    return LineResult(0, label, True, "ok, sent to the customer")


def _answer_problem(draft: Draft, text: str) -> str:
    """Why the text cannot go to the customer; "" when it can."""
    if contains_token(text):
        return (
            "error: the answer contains a mailgate reply address; delete the quoted "
            "notification and send again"
        )
    t = draft.ticket
    if t is None:
        return "" if draft.creating else "error: no ticket to answer here (use #new)"
    if not can_see(draft.agent, t.queues, t.assignee):
        return f"refused: ticket #{t.id} is not in your queues"
    if not t.requester and draft.change.requester is None:
        return "error: the ticket has no requester (#requester)"
    return ""


def _not_applied(r: LineResult) -> LineResult:
    if not r.ok:
        return r
    return replace(r, message="not sent" if r.line == 0 else "fine, but not applied")
