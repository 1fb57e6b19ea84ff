"""The command registry, entry by entry: every command parses its documented example,
rejects a malformed argument with its own error, and refuses an agent without permission;
#help lists exactly the registry's entries."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mailgate.agents.commands.base import Command, CommandError, Query
from mailgate.agents.commands.queries import answered_below
from mailgate.agents.commands.registry import GRAMMAR, REGISTRY, Registry, parse_line
from mailgate.agents.commands.spec import CommandSpec, no_argument
from mailgate.agents.plan import LineResult, Plan, TicketView
from mailgate.agents.reply import split_reply
from mailgate.config.schema import Agent
from mailgate.outgoing import digest
from tests.harness import load, write_config
from tests.unit.agent_replies import ALICE, BOB, CAROL, NILS, TICKET, run

TAKEN = replace(TICKET, assignee="alice")
BILLING = replace(TICKET, queue="billing", queues=frozenset({"billing"}))
NAMES = [spec.name for spec in REGISTRY.specs]


def first_line(text: str, agent: Agent, ticket: TicketView | None) -> tuple[LineResult, Plan]:
    plan = run(text, agent=agent, ticket=ticket, subject="Re: Printer")
    return plan.lines[0], plan


def spec(name: str) -> CommandSpec:
    found = REGISTRY.lookup(name)
    assert found is not None
    return found


def where(name: str) -> TicketView | None:
    """Where a command is used: on a ticket, or on the command address (ticket 0)."""
    return TICKET if spec(name).on_ticket else None


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_parses_its_example_and_plans_it(name: str):
    entry = spec(name)
    read, command = REGISTRY.read(entry.example)
    assert read is entry and isinstance(command, Command)
    assert parse_line(entry.example) == command
    line, plan = first_line(entry.example, ALICE, where(name))
    assert plan.ok and line.message.startswith("ok"), plan.lines


MALFORMED = {
    "assign": ("#assign bob alice", "#assign needs exactly one agent name, 'me' or 'nobody'"),
    "pickup": ("#pickup now", "#pickup takes no argument"),
    "release": ("#release it", "#release takes no argument"),
    "priority": ("#priority high", "priority must be 1-99, +N or -N"),
    "status": ("#status new", "status must be one of open, on-hold, resolved, closed"),
    "close": ("#close now", "#close takes no argument"),
    "note": ("#note", "#note needs text (on the line or below it)"),
    "queue": ("#queue Bill!ng why", "'Bill!ng' is not a queue name"),
    "escalate": (
        "#escalate",
        "#escalate needs a note saying why and what was tried: "
        "write it on the line (#escalate ... ) or add #note with text",
    ),
    "sticky": ("#sticky yes", "#sticky takes on or off"),
    "cc": ("#cc dan@example.com", "#cc: write +dan@example.com or -dan@example.com"),
    "title": ("#title", "#title needs the new title"),
    "requester": ("#requester dan", "'dan' is not an email address"),
    "tag": ("#tag +Bad/Tag", "'bad/tag' is not a tag (a-z, 0-9, '_', '.', '-')"),
    "complexity": ("#complexity extreme", "complexity must be one of lower, medium, hard"),
    "new": ("#new someone", "'someone' is not an email address"),
    "list": ("#list all", "#list takes no argument"),
    "unassigned": ("#unassigned mine", "#unassigned takes no argument"),
    "show": ("#show twelve", "#show needs a ticket number"),
    "secret": ("#secret 0", "#secret needs a ticket number"),
    "attachment": ("#attachment x7", "#attachment needs an attachment number, as listed: [7]"),
    "help": ("#help me", "#help takes no argument"),
}


def test_the_tables_cover_the_registry():
    assert set(MALFORMED) == set(NAMES) == set(REFUSED)


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_rejects_a_malformed_argument_with_its_own_error(name: str):
    text, message = MALFORMED[name]
    line, plan = first_line(text, ALICE, where(name))
    assert (line.ok, line.message) == (False, f"error: {message}")
    assert plan.change.empty and not plan.queries


ELSEWHERE = "ticket #12 is not in your queues"  # an agent of other queues, on any ticket command
REFUSED: dict[str, tuple[Agent, TicketView | None, str] | None] = {
    "assign": (CAROL, BILLING, "only admins assign tickets to others (use #assign me or #pickup)"),
    "pickup": (BOB, TAKEN, "assigned to alice; only admins take tickets over"),
    "release": (BOB, TAKEN, "assigned to alice, not to you"),
    "priority": (CAROL, TICKET, ELSEWHERE),
    "status": (CAROL, TICKET, ELSEWHERE),
    "close": (CAROL, TICKET, ELSEWHERE),
    "note": (CAROL, TICKET, ELSEWHERE),
    "queue": (CAROL, TICKET, ELSEWHERE),
    "escalate": (CAROL, TICKET, ELSEWHERE),
    "sticky": (CAROL, TICKET, ELSEWHERE),
    "cc": (CAROL, TICKET, ELSEWHERE),
    "title": (CAROL, TICKET, ELSEWHERE),
    "requester": (CAROL, TICKET, ELSEWHERE),
    "tag": (CAROL, TICKET, ELSEWHERE),
    "complexity": (BOB, TICKET, "complexity is set by team leads and admins"),
    "new": (CAROL, None, "you are not an agent of queue support"),
    # questions: anyone may ask; handle.py answers #show/#secret only for visible tickets
    "list": None,
    "unassigned": None,
    "show": None,
    "secret": None,
    "attachment": None,
    "help": None,
}


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_refuses_an_agent_without_permission(name: str):
    refusal = REFUSED[name]
    if refusal is None:  # a question: asked by an agent of no queue at all, still answered
        line, plan = first_line(spec(name).example, NILS, None)
        assert (line.ok, line.message) == (True, "ok, answered below")
        assert plan.ok and plan.change.empty and len(plan.queries) == 1
        return
    agent, ticket, message = refusal
    example = spec(name).example
    line, plan = first_line(example, agent, ticket)
    assert (line.ok, line.message) == (False, f"refused: {message}")
    assert plan.change.empty and not plan.events and plan.answer == plan.note == ""
    _, admin_plan = first_line(example, ALICE, ticket)  # the same line is fine for an admin
    assert admin_plan.ok, admin_plan.lines


def test_only_questions_skip_the_ticket_checks():
    for entry in REGISTRY.specs:
        asks = entry.apply is answered_below
        assert asks == (not entry.on_ticket and not entry.opens_ticket), entry.name
        assert asks == issubclass(type(parse_line(entry.example)), Query), entry.name


def test_help_lists_exactly_the_registry(tmp_path: Path):
    config = load(write_config(tmp_path))
    queue = config.queues[0]
    text = digest.help_section(config, queue, BOB)
    listed = text.split("Examples:")[0].splitlines()
    commands = [line for line in listed if line.startswith("  #")]
    assert commands == [f"  {usage:<40s} {meaning}" for usage, meaning in GRAMMAR]
    assert [line.split()[0] for line in commands] == [f"#{name}" for name in NAMES]
    assert tuple((s.usage, s.help) for s in REGISTRY.specs) == GRAMMAR


def test_a_command_line_below_the_text_is_one_the_registry_knows():
    reply = split_reply("Hello\n#list\n#frobnicate\n#Close-it\n#closed")
    assert reply.stray_commands == ((2, "#list"), (4, "#Close-it"))


class _Ping(Query):
    """A command for the registry's own tests."""


_PING = CommandSpec(
    "#ping",
    "answer pong",
    "#p",
    parse=no_argument(_Ping),
    apply=answered_below,
    on_ticket=False,
    aliases=("p",),
)


def test_an_alias_reads_as_its_command():
    registry = Registry([_PING])
    assert registry.lookup("P") is _PING and registry.lookup("ping") is _PING
    assert registry.read("#P") == (_PING, _Ping())
    with pytest.raises(CommandError, match="#p takes no argument"):
        registry.read("#p now")
    assert registry.line_re().match("  #p") and not registry.line_re().match("#pi")


def test_a_name_is_in_the_registry_once():
    with pytest.raises(ValueError, match="#ping is in the registry twice"):
        Registry([_PING, replace(_PING, aliases=())])
