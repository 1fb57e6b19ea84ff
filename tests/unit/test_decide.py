"""decide(): what the store is told to do with a message. Pure, table-driven."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mailgate.autoresponse.policy import ResponseDecision
from mailgate.parse.message import parse
from mailgate.pipeline.classify import Verdict
from mailgate.pipeline.decide import Decision, decide
from mailgate.pipeline.digests import dedupe_key
from mailgate.pipeline.thread import ThreadChoice
from tests.harness import message

OURS = frozenset({"support@example.test", "billing@example.test"})
HUMAN = Verdict(loop=False, bounce=False, auto=False, bulk=False, reasons=())
LOOP = Verdict(loop=True, bounce=False, auto=False, bulk=False, reasons=("loop: ours",))
BOUNCE = Verdict(loop=False, bounce=True, auto=False, bulk=False, reasons=("bounce: dsn",))
AUTO = Verdict(loop=False, bounce=False, auto=True, bulk=False, reasons=("auto: ooo",))
BULK = Verdict(loop=False, bounce=False, auto=False, bulk=True, reasons=("bulk: list",))
SEND = ResponseDecision(True, "new ticket acknowledgement")
QUIET = ResponseDecision(False, "automatic mail")
NEW = ThreadChoice(None, "no tag or known reference: new ticket")
FOLLOW = ThreadChoice(7, "follow-up by subject tag to #7")
REOPEN = ThreadChoice(7, "follow-up by subject tag to closed #7: reopen", reopen=True)
COLLEAGUE = ThreadChoice(7, "follow-up from the requester's colleague", new_cc="bob@corp.example")
LATE = ThreadChoice(None, "#7 closed longer than the reopen window: new ticket", linked_to=7)
STRANGER = ThreadChoice(None, "x is not the requester: new ticket", linked_to=7)
SUPPORT = ("support",)
BOTH = ("billing", "support")


@dataclass(frozen=True)
class Case:
    verdict: Verdict = HUMAN
    choice: ThreadChoice = NEW
    ack: ResponseDecision = SEND
    queues: tuple[str, ...] = SUPPORT
    cc: str = ""
    # expected
    action: str = "new"
    ticket_id: int | None = None
    reopen: bool = False
    new_ccs: tuple[str, ...] = ()
    customer_activity: bool = True
    send_ack: bool = True
    ticket_queue: str = "support"
    linked_to: int | None = None
    ticket_ccs: tuple[str, ...] = ()


CASES = {
    "new ticket": Case(),
    "new ticket, copied customer": Case(cc="dana@corp.example", ticket_ccs=("dana@corp.example",)),
    "new ticket from a list: no ack": Case(verdict=BULK, ack=QUIET, send_ack=False),
    "follow-up": Case(choice=FOLLOW, action="follow-up", ticket_id=7, send_ack=False),
    "follow-up brings in a cc": Case(
        choice=FOLLOW,
        cc="dana@corp.example",
        action="follow-up",
        ticket_id=7,
        new_ccs=("dana@corp.example",),
        send_ack=False,
    ),
    "follow-up by a colleague": Case(
        choice=COLLEAGUE,
        action="follow-up",
        ticket_id=7,
        new_ccs=("bob@corp.example",),
        send_ack=False,
    ),
    "reopen": Case(choice=REOPEN, action="follow-up", ticket_id=7, reopen=True, send_ack=False),
    "loop to a closed ticket does not reopen": Case(
        verdict=LOOP,
        choice=REOPEN,
        ack=QUIET,
        action="follow-up",
        ticket_id=7,
        customer_activity=False,
        send_ack=False,
    ),
    "bounce follow-up adds no cc": Case(
        verdict=BOUNCE,
        choice=COLLEAGUE,
        ack=QUIET,
        cc="dana@corp.example",
        action="follow-up",
        ticket_id=7,
        customer_activity=False,
        send_ack=False,
    ),
    "auto-reply opens a quiet ticket": Case(
        verdict=AUTO, ack=QUIET, customer_activity=False, send_ack=False
    ),
    "closed too long: new linked ticket": Case(choice=LATE, linked_to=7),
    "not a member: new linked ticket": Case(choice=STRANGER, linked_to=7),
    "two queues, one ticket": Case(queues=BOTH, ticket_queue="billing"),
}


def _decide(raw: bytes, **kwargs: object) -> Decision:
    args: dict = {
        "queues": SUPPORT,
        "verdict": HUMAN,
        "choice": NEW,
        "acknowledge": SEND,
        "initial_priority": 50,
        "our_addresses": OURS,
    }
    return decide(parsed=parse(raw), raw=raw, **{**args, **kwargs})


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_decide(case: Case) -> None:
    raw = message(to="support@example.test" + (f", {case.cc}" if case.cc else ""))
    p = parse(raw)
    d = _decide(
        raw, queues=case.queues, verdict=case.verdict, choice=case.choice, acknowledge=case.ack
    )
    assert d.action == case.action and d.ticket_id == case.ticket_id
    assert d.queues == case.queues  # every addressed queue, primary first
    assert d.reopen == case.reopen
    assert d.new_ccs == case.new_ccs
    assert d.customer_activity == case.customer_activity
    assert d.acknowledge.send == case.send_ack
    assert d.dedupe_key == dedupe_key(p, raw)
    assert f"thread: {case.choice.reason}" in d.reasons
    assert all(r in d.reasons for r in case.verdict.reasons)  # the verdict's reasons kept
    if case.action == "follow-up":
        assert d.new_ticket is None
        assert d.acknowledge.reason == "follow-ups get no acknowledgement"
        return
    t = d.new_ticket
    assert t is not None
    assert t.queue == case.ticket_queue and t.priority == 50
    assert t.title == p.subject and t.requester_addr == p.from_addr
    assert t.linked_to == case.linked_to
    assert t.link_reason == (case.choice.reason if case.linked_to else "")
    assert t.ccs == case.ticket_ccs
    assert d.acknowledge == case.ack


def test_two_deliveries_of_one_message_get_one_dedupe_key() -> None:
    """SMTP and IMAP copies differ in trace headers and line ends: the store sees one key."""
    raw = message(message_id="<one@example.com>")
    copy = b"Received: from mx by imap\r\n" + raw.replace(b"\r\n", b"\n")
    assert _decide(raw).dedupe_key == _decide(copy).dedupe_key
    assert _decide(raw).dedupe_key != _decide(raw.replace(b"printer", b"scanner")).dedupe_key


def test_a_long_subject_and_name_are_cut_and_an_empty_subject_named() -> None:
    for subject, title in (("x" * 600, "x" * 500), ("", "(no subject)")):
        raw = message(subject=subject, name="N" * 300)
        d = _decide(raw)
        assert d.new_ticket is not None
        assert d.new_ticket.title == title and len(d.new_ticket.requester_name) == 200


RESOLVED = ThreadChoice(7, "follow-up by subject tag to #7")
RATING_CASES = {
    # (verdict, choice, survey ticket, body): (rated?, ticket, reopen, customer activity)
    "a number answers the survey": (HUMAN, RESOLVED, 7, "4\nquick and kind\n", True),
    "an answer to a closed ticket never reopens it": (HUMAN, REOPEN, 7, "5\n", True),
    "past the reopen window it still rates the old ticket": (HUMAN, LATE, 7, "3\n", True),
    "an auto-reply to the survey is no rating": (AUTO, REOPEN, 7, "5\n", False),
    "a numbered list is a customer reply": (HUMAN, REOPEN, 7, "1. still broken\n", False),
    "no survey open: a number is a reply": (HUMAN, REOPEN, None, "5\n", False),
}


@pytest.mark.parametrize("case", RATING_CASES.values(), ids=RATING_CASES.keys())
def test_a_survey_answer_is_stored_inert_on_its_ticket(case) -> None:
    verdict, choice, survey, body, rated = case
    raw = message(subject="Re: [support #7] Printer", body=body)
    d = _decide(raw, verdict=verdict, choice=choice, survey_ticket=survey)
    assert (d.rating is not None) == rated
    if rated:
        assert d.action == "follow-up" and d.ticket_id == 7
        assert not d.reopen and not d.customer_activity and d.new_ccs == ()
        assert any(r.startswith("satisfaction: rated") for r in d.reasons)
    elif verdict is HUMAN and choice is REOPEN:
        assert d.reopen and d.customer_activity


def test_the_digest_cache_gives_text_digest_and_keeps_only_the_latest():
    from mailgate.pipeline.digests import DigestCache, repeat_digest, run_length, text_digest

    seen = DigestCache()
    long_text = "Your ticket 123 was received on 2026-12-01, we will answer soon."
    seen.remember(long_text, repeat_digest(long_text))
    assert seen.digest(long_text) == text_digest(long_text)
    other = long_text.replace("123", "456")  # digits aside, the same text: a repeat
    assert run_length(repeat_digest(other), [long_text, "Thanks!"], seen) == 2
    assert run_length(None, [long_text], seen) == 1  # a short text is never a repeat
    seen.MAX_TEXTS = 2
    for t in ("a" * 40, "b" * 40, "c" * 40):
        seen.digest(t)
    assert list(seen._digests) == ["b" * 40, "c" * 40]
    huge = "x" * (DigestCache.MAX_CHARS + 1)
    assert seen.digest(huge) == text_digest(huge) and huge not in seen._digests
