"""What the thread and decide steps build without the frozen dataclasses' `__init__`
(parse/records.frozen_record) is the record `__init__` would build: every field, in the
class's order, equal to `cls(**vars(record))`; and the loop breaker's filter of a batch's
held articles (`repeats._held_inbound`) gives what the general `_held` gives."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine

from mailgate.autoresponse.policy import ResponseDecision
from mailgate.parse.message import parse
from mailgate.pipeline.classify import Verdict
from mailgate.pipeline.decide import ccs_of, decide
from mailgate.pipeline.thread import ThreadChoice, TicketFacts
from mailgate.queues.rules import NO_ROUTING, Routing
from mailgate.store.batch import TicketState, batch_state
from mailgate.store.lookups import _ticket_facts
from mailgate.store.repeats import RECENT_LIMIT, _held, _held_inbound
from tests.harness import message

T = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
HUMAN = Verdict(loop=False, bounce=False, auto=False, bulk=False, reasons=("human",))
AUTO = Verdict(loop=False, bounce=False, auto=True, bulk=False, reasons=("auto: ooo",))
OURS = frozenset({"support@example.test", "billing@example.test"})


def _same_as_init(record: object) -> None:
    cls = type(record)
    assert list(vars(record)) == [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    assert record == cls(**vars(record))
    assert hash(record) == hash(cls(**vars(record)))


CHOICES = (
    ThreadChoice(None, "no tag: new ticket"),
    ThreadChoice(None, "stranger: new ticket", linked_to=7),
    ThreadChoice(7, "follow-up by subject tag to #7"),
    ThreadChoice(7, "to closed #7: reopen", reopen=True),
    ThreadChoice(7, "colleague", new_cc="bob@corp.example"),
)
ROUTINGS = (
    NO_ROUTING,
    Routing(queue="billing", tags=("vip",), category="c", complexity="hard", assignee="al"),
)


@pytest.mark.parametrize(
    "choice,verdict,routing,run,survey",
    list(itertools.product(CHOICES, (HUMAN, AUTO), ROUTINGS, (1, 3), (None, 7))),
)
def test_a_decision_is_the_record_its_init_makes(choice, verdict, routing, run, survey):
    raw = message(
        subject="Rating: 5",
        to="support@example.test, carla@c.example, support+x@example.test",
        extra="Cc: dora@d.example, carla@c.example",
    )
    p = parse(raw)
    d = decide(
        parsed=p,
        raw=raw,
        queues=("support",),
        verdict=verdict,
        choice=choice,
        acknowledge=ResponseDecision(True, "ack"),
        initial_priority=40,
        our_addresses=OURS,
        run=run,
        survey_ticket=survey,
        routing=routing,
    )
    _same_as_init(d)
    if d.new_ticket is not None:
        _same_as_init(d.new_ticket)
        assert d.new_ticket.ccs == ("carla@c.example", "dora@d.example")


def test_ccs_leave_out_our_addresses_their_sub_addresses_the_sender_and_repeats():
    raw = message(
        sender="carla@c.example",
        to="Support+urgent@example.test, support@example.test, carla@c.example",
        extra="Cc: dora@d.example, support+x@example.test, dora@d.example, bob@b.example",
    )
    assert ccs_of(parse(raw), OURS) == ("dora@d.example", "bob@b.example")


def test_ticket_facts_are_the_record_their_init_makes():
    state = TicketState("ann@c.example", "closed", "support", T, {"b@x", "a@x"})
    facts = _ticket_facts(12, state)
    _same_as_init(facts)
    assert facts == TicketFacts(12, "ann@c.example", frozenset({"a@x", "b@x"}), "closed",
                                "support", T)  # fmt: skip
    state.ccs.add("c@x")  # the state changes later in the batch: the facts made stay
    assert facts.ccs == frozenset({"a@x", "b@x"})


def _article(i: int, kind: str, sender: str) -> dict[str, object]:
    return {
        "id": i,
        "kind": kind,
        "from_addr": sender,
        "author": "",
        "created_at": T + timedelta(minutes=i),
        "body_text": f"text {i}",
        "verdict": {},
    }


def test_the_held_inbound_filter_gives_what_the_general_one_gives():
    senders = ("ann@c.example", "bob@b.example", "")
    kinds = ("inbound", "outbound", "system")
    rows = [_article(i, kinds[i % 3], senders[i % 5 % 3]) for i in range(10 * RECENT_LIMIT + 7)]
    with create_engine("sqlite://").connect() as conn, batch_state(conn) as batch:
        batch.articles_of[5] = rows
        for sender, minutes in itertools.product(senders, (-1, 0, 13, 40, 200)):
            since = T + timedelta(minutes=minutes)
            params = {"kind": "inbound", "since": since, "from_addr": sender, "author": None}
            general = [r["body_text"] for r in _held(conn, 5, params)]
            assert _held_inbound(batch, 5, since, sender) == general
            assert _held_inbound(batch, 6, since, sender) == [] == _held(conn, 6, params)
        assert any(len(_held_inbound(batch, 5, T, s)) == RECENT_LIMIT for s in senders)
    assert _held_inbound(None, 5, T, "ann@c.example") == []
