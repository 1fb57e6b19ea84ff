"""Turn a parsed, classified, threaded message into a Decision for the store. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from mailgate.autoresponse.policy import ResponseDecision
from mailgate.parse.message import Parsed
from mailgate.parse.records import frozen_record
from mailgate.pipeline.classify import Verdict
from mailgate.pipeline.digests import RUN_IS_LOOP, dedupe_key
from mailgate.pipeline.rating import Rating, read_rating
from mailgate.pipeline.thread import ThreadChoice
from mailgate.queues.rules import NO_ROUTING, Routing, RuleHit, hit_lines

T = TypeVar("T")


@dataclass(frozen=True)
class NewTicket:
    title: str
    requester_addr: str
    requester_name: str
    queue: str
    priority: int
    ccs: tuple[str, ...]
    linked_to: int | None
    link_reason: str
    # set by the queue's routing rules (queues/rules.py); rule_hits say which and why
    tags: tuple[str, ...] = ()
    category: str = ""
    complexity: str = ""
    assignee: str = ""
    rule_hits: tuple[RuleHit, ...] = ()


@dataclass(frozen=True)
class Decision:
    action: Literal["new", "follow-up"]
    dedupe_key: str
    queues: tuple[str, ...]  # every queue the message was addressed to, primary first
    ticket_id: int | None  # the ticket a follow-up joins
    new_ticket: NewTicket | None
    reopen: bool
    new_ccs: tuple[str, ...]  # people the follow-up brings into the conversation
    customer_activity: bool  # a human wrote: touches state, timestamps and assignment
    acknowledge: ResponseDecision
    reasons: tuple[str, ...]
    rating: Rating | None = None  # the answer to the ticket's satisfaction survey
    auth: dict[str, object] | None = None  # SPF/DKIM/DMARC (parse/authentication.py)


def _made(cls: type[T], **fields: Any) -> T:
    """`cls(**fields)`, every field given in the class's order, without the frozen
    dataclass's `__init__` (parse/records.py: a Decision 2.2 against 0.7 us)."""
    return frozen_record(cls, fields)


def ccs_of(p: Parsed, ours: frozenset[str]) -> tuple[str, ...]:
    """Customers copied on the mail (To and Cc minus our own addresses and the sender)."""
    out: dict[str, None] = {}
    for a in (*p.to, *p.cc):
        if not a or a in ours or a == p.from_addr or a in out:
            continue  # (most addresses end here: the queue's own, no sub-address to undo)
        local, _, domain = a.partition("@")
        if local.split("+", 1)[0] + "@" + domain not in ours:
            out[a] = None
    return tuple(out)


def decide(
    *,
    parsed: Parsed,
    raw: bytes,
    queues: tuple[str, ...],
    verdict: Verdict,
    choice: ThreadChoice,
    acknowledge: ResponseDecision,
    initial_priority: int,
    our_addresses: frozenset[str],
    run: int = 1,
    survey_ticket: int | None = None,
    routing: Routing = NO_ROUTING,
    auth: dict[str, object] | None = None,
    key: str | None = None,  # dedupe_key(parsed, raw) when known (worked out ahead)
) -> Decision:
    """`routing` (the rules' result) and `initial_priority` apply to a new ticket only."""
    reasons = (*verdict.reasons, f"thread: {choice.reason}", f"ack: {acknowledge.reason}")
    key = dedupe_key(parsed, raw) if key is None else key
    # the requester answering a survey: kept on the ticket, never a reopen or a customer
    # reply; an auto-reply to the survey is no rating
    rating = None
    if survey_ticket is not None and not verdict.automatic:
        rating = read_rating(parsed.subject, parsed.text)
    if rating is not None:
        reasons += (f"satisfaction: rated {rating.score}/5 on #{survey_ticket}",)
        choice = ThreadChoice(survey_ticket, f"survey answer on #{survey_ticket}")
    if choice.ticket_id is not None:
        # automatic mail, a run of alike mails (a responder answering our answers) or a
        # survey answer: stored, inert, nobody notified
        inert = verdict.automatic or run >= RUN_IS_LOOP or rating is not None
        if run >= RUN_IS_LOOP:
            reasons += (f"loop: {run} near-identical messages from {parsed.from_addr} here",)
        return _made(
            Decision,
            action="follow-up",
            dedupe_key=key,
            queues=queues,
            ticket_id=choice.ticket_id,
            new_ticket=None,
            reopen=choice.reopen and not inert,
            new_ccs=()
            if inert
            else tuple(
                dict.fromkeys(
                    (*([choice.new_cc] if choice.new_cc else []), *ccs_of(parsed, our_addresses))
                )
            ),
            customer_activity=not inert,
            acknowledge=ResponseDecision(False, "follow-ups get no acknowledgement"),
            reasons=reasons,
            rating=rating,
            auth=auth,
        )
    ticket = _made(
        NewTicket,
        title=(parsed.subject or "(no subject)")[:500],
        requester_addr=parsed.from_addr,
        requester_name=parsed.from_name[:200],
        queue=routing.queue or queues[0],
        priority=initial_priority,
        ccs=ccs_of(parsed, our_addresses),
        linked_to=choice.linked_to,
        link_reason=choice.reason if choice.linked_to else "",
        tags=routing.tags,
        category=routing.category,
        complexity=routing.complexity,
        assignee=routing.assignee,
        rule_hits=routing.hits,
    )
    reasons += (*hit_lines(routing.hits), *routing.notes)
    return _made(
        Decision,
        action="new",
        dedupe_key=key,
        queues=queues,
        ticket_id=None,
        new_ticket=ticket,
        reopen=False,
        new_ccs=(),
        customer_activity=not verdict.automatic,
        acknowledge=acknowledge,
        reasons=reasons,
        rating=None,
        auth=auth,
    )
