"""Command grammar, reply splitting and authorization: table-driven, pure."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailgate.agents import commands as c
from mailgate.config.schema import Agent

ALICE = Agent(name="alice", address="alice@example.test", queues=["support"], role="admin")
BOB = Agent(name="bob", address="bob@example.test", queues=["support", "sales"], tier="L1")
CAROL = Agent(name="carol", address="carol@example.test", queues=["billing"], team_lead=True)
AGENTS = {a.name: a for a in (ALICE, BOB, CAROL)}
QUEUES = frozenset({"support", "billing", "sales"})
OURS = frozenset({"support@example.test", "billing@example.test", "sales@example.test"})
TICKET = c.TicketView(
    id=12,
    queue="support",
    queues=frozenset({"support"}),
    status="open",
    priority=50,
    assignee=None,
    sticky=False,
    tier="L1",
    requester="carla@example.com",
)


def ticket(**changes) -> c.TicketView:
    return replace(TICKET, **changes)


def ctx(agent: Agent = BOB, ticket: c.TicketView | None = TICKET, **kw) -> c.PlanContext:
    return c.PlanContext(
        agent=agent,
        agents=AGENTS,
        queues=QUEUES,
        our_addresses=OURS,
        address_queue=kw.pop("address_queue", "support"),
        ticket=ticket,
        **kw,
    )


def run(text: str, **kw) -> c.Plan:
    return c.plan(c.split_reply(text, kw.pop("signature", "")), ctx(**kw))


# --------------------------------------------------------------------------- parse_line


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("#assign bob", c.Assign("bob")),
        ("#Assign ME", c.Assign("me")),
        ("#pickup", c.Pickup()),
        ("#release", c.Release()),
        ("#priority 80", c.Priority(80, False)),
        ("#priority +10", c.Priority(10, True)),
        ("#priority -5", c.Priority(-5, True)),
        ("#status on-hold", c.Status("on-hold")),
        ("#close", c.Close()),
        ("#note", c.Note("")),
        ("#note called the customer", c.Note("called the customer")),
        ("#queue billing wants a refund", c.MoveQueue("billing", "wants a refund")),
        ("#escalate restarted twice, still down", c.Escalate("restarted twice, still down")),
        ("#sticky on", c.Sticky(True)),
        ("#cc +Dan@Example.com -eve@example.com", c.Cc(("dan@example.com",), ("eve@example.com",))),
        ("#title New title here", c.Title("New title here")),
        ("#requester <x@example.com>", c.Requester("x@example.com")),
        ("#tag +dns -billing", c.Tag(("dns",), ("billing",))),
        ("#complexity hard", c.Complexity("hard")),
        ("#help", c.Help()),
        ("#new someone@example.com", c.NewTicket("someone@example.com")),
        ("#list", c.ListMine()),
        ("#unassigned", c.ListUnassigned()),
        ("#show 12", c.Show(12)),
        ("#show #12", c.Show(12)),
        ("#secret 12", c.Secret(12)),
    ],
)
def test_parse_line(line, expected):
    assert c.parse_line(line) == expected


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("#frobnicate", "unknown command"),
        ("#", "not a command"),
        ("#1 first thing", "not a command"),
        ("#assign", "exactly one"),
        ("#assign bob alice", "exactly one"),
        ("#pickup now", "takes no argument"),
        ("#priority 0", "between 1 and 99"),
        ("#priority 100", "1-99"),
        ("#priority high", "1-99"),
        ("#priority +0", "must not be 0"),
        ("#status new", "must be one of"),
        ("#status answered", "must be one of"),
        ("#queue", "needs a queue name"),
        ("#queue Bill!ng", "not a queue name"),
        ("#sticky yes", "on or off"),
        ("#cc dan@example.com", "write +"),
        ("#cc +not-an-address", "not an email address"),
        ("#tag +a -a", "both added and removed"),
        ("#tag +Bad/Tag", "not a tag"),
        ("#title", "needs the new title"),
        ("#title " + "x" * 501, "at most"),
        ("#complexity extreme", "must be one of"),
        ("#show twelve", "ticket number"),
        ("#new nobody", "not an email address"),
    ],
)
def test_parse_line_errors(line, why):
    with pytest.raises(c.CommandSyntaxError, match=why):
        c.parse_line(line)


# --------------------------------------------------------------------------- split_reply

NOTIFICATION_QUOTE = (
    "On Mon, 1 Jan 2024 at 10:00, Example Support <support+t12.k0123456789abcdef0123@example.test>"
    " wrote:\n"
    f"> {c.REPLY_MARKER}\n"
    "> #note internal stuff from the notification\n"
    "> secret internal note text\n"
)


@pytest.mark.parametrize(
    ("text", "commands", "answer"),
    [
        (
            "#pickup\n#priority 80\n\nHello Carla,\nfixed.\n",
            ["#pickup", "#priority 80"],
            "Hello Carla,\nfixed.",
        ),
        ("\n\n  #close  \nThanks!", ["#close"], "Thanks!"),
        ("Hello\n#close\n", [], "Hello\n#close"),
        ("#close\n\nDone.\n\n-- \nAlice\n#assign bob\n", ["#close"], "Done."),
        ("#close\nDone.\n--\nAlice", ["#close"], "Done."),
        ("> #close\n> #assign bob\nThanks\n", [], "Thanks"),
        ("#priority 3\nAnswer\n\n" + NOTIFICATION_QUOTE, ["#priority 3"], "Answer"),
        ("Answer\n" + f"{c.REPLY_MARKER}\nsecret note\n", [], "Answer"),
        ("Answer\n\n-----Original Message-----\nFrom: x\n#close", [], "Answer"),
        ("Answer\n\nFrom: Support <s@x>\nSent: Monday\nTo: alice\n#close", [], "Answer"),
        ("Answer\n\nOn Mon, 1 Jan 2024, Support <\nsupport+t1.kx@x> wrote:\n#close", [], "Answer"),
        (
            "#note\n#not a command, in the note\nmore",
            ["#note"],
            "#not a command, in the note\nmore",
        ),
        ("\ufeff#pickup\nHi", ["#pickup"], "Hi"),
        ("#pickup\r\n\r\nHi\r\n", ["#pickup"], "Hi"),
    ],
)
def test_split_reply(text, commands, answer):
    r = c.split_reply(text)
    assert [t for _, t in r.command_lines] == commands
    assert r.text == answer


def test_agent_signature_is_removed_from_the_answer():
    r = c.split_reply("#close\nAll done.\n\nAlice, Example Support\n", "Alice, Example Support")
    assert r.text == "All done."


def test_clearsigned_reply_is_unwrapped():
    text = (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n#close\n- -dashes\nAnswer\n"
        "- -- \nAlice\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n"
    )
    r = c.split_reply(text)
    assert [t for _, t in r.command_lines] == ["#close"]
    assert r.text == "-dashes\nAnswer"  # dash-escaping undone; "- -- " is the signature


def test_commands_below_text_are_reported_not_sent():
    plan = run("#pickup\nHello Carla\n\n> quoted\n#close\n")
    assert not plan.ok
    (stray,) = [r for r in plan.errors if "must come first" in r.message]
    assert (stray.line, stray.text) == (5, "#close")


# --------------------------------------------------------------------------- plan


def test_answer_only():
    plan = run("Hello Carla,\nit works now.")
    assert plan.ok and plan.answer == "Hello Carla,\nit works now." and plan.change.empty


def test_empty_mail_is_an_error():
    plan = run("\n\n-- \nBob\n")
    assert not plan.ok and "no command and no answer" in plan.errors[0].message


def test_set_of_commands():
    plan = run("#pickup\n#priority +10\n#sticky on\n#tag +dns\n#cc +dan@example.com\nAnswer")
    assert plan.ok, plan.errors
    ch = plan.change
    assert (ch.assign, ch.assignee, ch.priority, ch.sticky) == (True, "bob", 60, True)
    assert ch.tag_add == ("dns",) and ch.cc_add == ("dan@example.com",)
    assert plan.answer == "Answer"


def test_priority_clamps():
    assert run("#priority +80").change.priority == 99
    assert run("#priority -80").change.priority == 1


def test_note_is_never_an_answer():
    plan = run("#pickup\n#note\nCustomer is angry, called him.\n\n" + NOTIFICATION_QUOTE)
    assert plan.ok
    assert plan.answer == "" and plan.note == "Customer is angry, called him."
    assert "secret internal" not in plan.note


@pytest.mark.parametrize(
    ("text", "agent", "ticket", "why"),
    [
        ("#assign alice", BOB, TICKET, "only admins assign"),
        ("#assign zed", ALICE, TICKET, "no agent named"),
        ("#pickup", BOB, ticket(assignee="alice"), "only admins take"),
        ("#release", BOB, ticket(assignee="alice"), "not to you"),
        ("#assign nobody", BOB, ticket(assignee="alice"), "only admins unassign"),
        ("#complexity hard", BOB, TICKET, "team leads and admins"),
        ("#pickup", CAROL, TICKET, "not in your queues"),
        ("#queue billing", BOB, TICKET, "needs a note"),
        ("#escalate", BOB, TICKET, "needs a note"),
        ("#queue support why", BOB, TICKET, "already in"),
        ("#queue nowhere why", BOB, TICKET, "no queue named"),
        ("#escalate why", BOB, ticket(tier="L3"), "highest tier"),
        ("#pickup\n#release", BOB, TICKET, "conflicts with line 1"),
        ("#status open\n#close", BOB, TICKET, "conflicts with line 1"),
        ("#priority 3\n#priority 4", BOB, TICKET, "given twice"),
        ("#cc +support@example.test", BOB, TICKET, "queue addresses"),
        ("#requester billing+x@example.test", BOB, TICKET, "queue addresses"),
        ("#new x@example.com", BOB, TICKET, "command address"),
        ("#pickup", BOB, None, "no ticket here"),
        ("#list\nsome text", BOB, None, "no ticket to answer"),
    ],
)
def test_refusals(text, agent, ticket, why):
    plan = run(text, agent=agent, ticket=ticket)
    assert not plan.ok
    assert any(why in r.message for r in plan.errors), plan.lines
    assert plan.change.empty and plan.answer == "" and plan.note == ""


def test_all_or_nothing_one_bad_line_cancels_the_rest():
    plan = run("#pickup\n#priority 80\n#frobnicate\nAnswer")
    assert not plan.ok
    assert [r.ok for r in plan.lines if r.line] == [True, True, False]
    assert plan.change.empty and plan.answer == ""


def test_admin_may_assign_and_take_over():
    taken = ticket(assignee="bob")
    plan = run("#assign carol", agent=ALICE, ticket=taken)
    assert plan.ok and plan.change.assignee == "carol"
    assert plan.events == (c.Assigned("carol"),)
    assert run("#pickup", agent=ALICE, ticket=taken).change.assignee == "alice"


def test_escalate_and_queue_with_reasons():
    plan = run("#escalate tried restart and DNS flush")
    assert plan.ok and plan.change.tier == "L2"
    assert plan.events == (c.Escalated("support", "L2", "tried restart and DNS flush", False),)
    plan = run("#queue billing\n#note\nasks for a refund of invoice 7")
    assert plan.ok and plan.change.queue == "billing" and plan.answer == ""
    assert plan.events[0] == c.Escalated("billing", "", "asks for a refund of invoice 7", True)
    assert plan.note == "asks for a refund of invoice 7"


def test_answer_with_a_token_is_refused():
    plan = run("See support+t12.k0123456789abcdef0123@example.test")
    assert not plan.ok and "reply address" in plan.errors[0].message


def test_new_ticket_on_the_command_address():
    plan = run(
        "#new dan@example.com\n#priority 70\n#pickup\nHello Dan, as discussed...",
        ticket=None,
        subject="Re: Your renewal",
    )
    assert plan.ok, plan.errors
    assert plan.new_requester == "dan@example.com" and plan.new_title == "Your renewal"
    assert plan.change.priority == 70 and plan.change.assignee == "bob"
    assert plan.answer.startswith("Hello Dan")


def test_new_ticket_needs_queue_membership():
    plan = run("#new dan@example.com", agent=CAROL, ticket=None, address_queue="support")
    assert not plan.ok and "not an agent of queue support" in plan.errors[0].message


def test_queries_on_the_command_address():
    plan = run("#list\n#unassigned\n#show 12\n#help", ticket=None)
    assert plan.ok and len(plan.queries) == 4 and plan.change.empty


def test_agent_sees_only_their_queues_unless_admin():
    billing = ticket(queue="billing", queues=frozenset({"billing"}))
    assert not c.can_see(BOB, billing.queues, billing.assignee)
    assert c.can_see(ALICE, billing.queues, billing.assignee)
    mine = replace(billing, assignee="bob")
    assert c.can_see(BOB, mine.queues, mine.assignee)


def test_answer_needs_a_requester():
    assert not run("Hello", ticket=ticket(requester="")).ok
    assert run("#requester dan@example.com\nHello", ticket=ticket(requester="")).ok
