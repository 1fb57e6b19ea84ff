"""The per-message pipeline as a named list of steps, in the order they run.

Each step reads what the earlier ones put on the `Message` and adds its own result. A
step that raises is named in the failure (`StepFailed.step`), so the shunt says which
step a bug is in; a step may end the message early by returning its Outcome (an agent
mail). The steps run on the batch's connection, inside its transaction (see worker.py).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.exc import InterfaceError, OperationalError

from mailgate.agents import handle as agent_mail
from mailgate.agents.notifications import notify_customer_mail
from mailgate.autoresponse.policy import ResponseDecision, looks_like_reply, should_respond
from mailgate.config.model import Config, Queue
from mailgate.outgoing.customer_mails import ack as build_ack
from mailgate.parse.limits import ParseRejected
from mailgate.parse.message import Parsed, parse
from mailgate.pgp.incoming import open_incoming
from mailgate.pgp.keyring import Keyrings
from mailgate.pgp.results import Opened
from mailgate.pipeline.classify import Verdict, classify
from mailgate.pipeline.decide import RUN_IS_LOOP, Decision, decide, run_length
from mailgate.pipeline.outcome import Outcome, Rejected, StepFailed
from mailgate.pipeline.thread import ThreadChoice, ThreadLookups, choose
from mailgate.queues.routing import route
from mailgate.runtime import Clock, utcnow
from mailgate.spool import SpoolEntry
from mailgate.store import pgp_secrets
from mailgate.store import tickets as store
from mailgate.store.articles import system_article
from mailgate.store.autoresponses import last_autoresponse, record_autoresponse
from mailgate.store.lookups import thread_lookups
from mailgate.store.outbox import add_outbox
from mailgate.store.repeats import recent_texts

TRACEBACK_FRAMES = 8  # from the step down: enough to find the bug, short enough to read


@dataclass(frozen=True)
class Context:
    """What every step of one message may use besides the message itself."""

    config: Config
    conn: Connection
    our_addresses: frozenset[str]
    agent_addresses: frozenset[str]
    keyrings: Keyrings  # the daemon's; closed by app.Daemon


@dataclass(eq=False)
class Message:
    """One message on its way through the steps; a field exists once its step has run."""

    entry: SpoolEntry
    raw: bytes
    now: datetime
    parsed: Parsed = field(init=False)
    queues: tuple[str, ...] = field(init=False)
    primary: Queue = field(init=False)
    opened: Opened | None = field(init=False)
    verdict: Verdict = field(init=False)
    lookups: ThreadLookups = field(init=False)
    choice: ThreadChoice = field(init=False)
    acknowledge: ResponseDecision = field(init=False)
    decision: Decision = field(init=False)
    applied: store.Applied = field(init=False)
    acked: bool = False
    run: int = 1  # near-identical messages from this sender on this ticket, this one included


Step = Callable[[Context, Message], Outcome | None]


def parse_step(ctx: Context, m: Message) -> None:
    try:
        m.parsed = parse(m.raw)
    except ParseRejected as e:
        raise Rejected("parse", e.reason) from e


def route_step(ctx: Context, m: Message) -> None:
    m.queues = route(m.entry.envelope, m.parsed, ctx.config)
    if not m.queues:
        rcpts = ", ".join(m.entry.envelope.rcpt_tos) or "none"
        raise Rejected("route", f"no queue for recipients ({rcpts}) or To/Cc headers")
    primary = ctx.config.queue(m.queues[0])
    assert primary is not None
    m.primary = primary


def pgp_step(ctx: Context, m: Message) -> None:
    # from here on the text hides any ciphertext; the decrypted parts are agent-only
    m.parsed, m.opened = open_incoming(ctx.config, m.queues, m.parsed, m.raw, ctx.keyrings)


def agent_step(ctx: Context, m: Message) -> Outcome | None:
    """An authenticated agent reply (commands, answer, notes) ends the message here."""
    envelope, p = m.entry.envelope, m.parsed
    r = agent_mail.handle(ctx.conn, ctx.config, envelope, p, m.raw, m.now, ctx.keyrings)
    if r is None:
        return None
    return Outcome(r.ticket_id, r.article_id, r.action, m.queues, False)


def classify_step(ctx: Context, m: Message) -> None:
    m.verdict = classify(m.parsed, ctx.our_addresses, ctx.config.main.hostname)
    if m.verdict.loop:
        # our own mail came back: never a ticket, an article or a mail; the shunt keeps it
        # with the reason (`mailgate shunt list`)
        loops = [r for r in m.verdict.reasons if r.startswith("loop:")]
        raise Rejected("classify", "dropped as a mail loop: " + "; ".join(loops))


def thread_step(ctx: Context, m: Message) -> None:
    m.lookups = thread_lookups(ctx.conn, m.parsed)
    window = m.primary.close.reopen_window_days
    m.choice = choose(
        m.parsed.from_addr,
        m.lookups,
        ctx.agent_addresses,
        m.now,
        None if window < 0 else timedelta(days=window),
        colleagues=m.primary.colleagues_may_follow_up,
    )
    tid = m.choice.ticket_id
    if tid is not None and not m.verdict.automatic:
        since = m.now - timedelta(days=1)
        earlier = recent_texts(ctx.conn, tid, since, kind="inbound", from_addr=m.parsed.from_addr)
        m.run = run_length(m.parsed.text, [body for body, _ in earlier])


def autoresponse_step(ctx: Context, m: Message) -> None:
    sender = m.parsed.from_addr
    last = (
        last_autoresponse(ctx.conn, m.primary.name, sender)
        if (m.choice.ticket_id is None and sender)
        else None
    )
    m.acknowledge = should_respond(
        verdict=m.verdict,
        sender=sender,
        enabled=m.primary.autoresponse.enabled,
        period=timedelta(hours=m.primary.autoresponse.period_hours),
        last_sent_at=last,
        now=m.now,
        reply=looks_like_reply(m.parsed),
    )


def decide_step(ctx: Context, m: Message) -> None:
    m.decision = decide(
        parsed=m.parsed,
        raw=m.raw,
        queues=m.queues,
        verdict=m.verdict,
        choice=m.choice,
        acknowledge=m.acknowledge,
        initial_priority=m.primary.priority.initial,
        our_addresses=ctx.our_addresses,
        run=m.run,
    )


def _ticket_queue(lookups: ThreadLookups, d: Decision) -> str:
    """The queue of the ticket a follow-up joins, when the lookups already know it."""
    for t in (lookups.tagged, *lookups.referenced):
        if t is not None and t.id == d.ticket_id:
            return t.queue
    return ""


def store_step(ctx: Context, m: Message) -> None:
    d, p = m.decision, m.parsed
    queue = _ticket_queue(m.lookups, d)
    m.applied = store.apply(ctx.conn, d, p, m.raw, m.now, ticket_queue=queue)
    pgp_secrets.save(ctx.conn, m.opened, m.applied, p.from_addr, m.now)  # agent-only parts
    if m.run == RUN_IS_LOOP and m.applied.article_id is not None:
        system_article(
            ctx.conn,
            m.applied.ticket_id,
            f"Mail loop: {m.run} near-identical messages from {p.from_addr} on this ticket; "
            "further ones are kept here but notify nobody and send nothing.",
            m.now,
        )


def ack_step(ctx: Context, m: Message) -> None:
    if not (m.applied.created and m.decision.acknowledge.send):
        return
    cfg = ctx.config
    out = build_ack(cfg, m.primary, m.applied.ticket_id, m.parsed, m.decision, m.now)
    deadline = m.now + timedelta(hours=cfg.relay.give_up_after_hours)
    m.acked = add_outbox(ctx.conn, out, m.now, deadline, cfg.governor, m.primary.name)
    if m.acked:
        record_autoresponse(ctx.conn, m.primary.name, m.parsed.from_addr, m.now)


def notify_step(ctx: Context, m: Message) -> None:
    if m.applied.article_id is None or not m.decision.customer_activity:
        return
    notify_customer_mail(
        ctx.conn,
        ctx.config,
        m.applied.ticket_id,
        created=m.applied.created,
        sender=m.parsed.from_addr,
        cause=m.decision.dedupe_key,
        now=m.now,
        article_id=m.applied.article_id,
    )


STEPS: tuple[tuple[str, Step], ...] = (
    ("parse", parse_step),
    ("route", route_step),
    ("pgp", pgp_step),
    ("agent", agent_step),
    ("classify", classify_step),
    ("thread", thread_step),
    ("autoresponse", autoresponse_step),
    ("decide", decide_step),
    ("store", store_step),
    ("ack", ack_step),
    ("notify", notify_step),
)


def _outcome(m: Message) -> Outcome:
    action = "duplicate" if m.applied.article_id is None else m.decision.action
    return Outcome(m.applied.ticket_id, m.applied.article_id, action, m.queues, m.acked)


class Pipeline:
    """Runs the steps for one message on the batch's connection and transaction."""

    def __init__(self, config: Config, clock: Clock = utcnow, *, keyrings: Keyrings):
        self.config = config
        self.clock = clock
        self.keyrings = keyrings
        self.ours = config.our_addresses
        self.agents = config.agent_addresses

    def process(self, conn: Connection, entry: SpoolEntry, raw: bytes) -> Outcome:
        """The message's Outcome; Rejected (never retried) or StepFailed naming the step."""
        ctx = Context(self.config, conn, self.ours, self.agents, self.keyrings)
        m = Message(entry, raw, self.clock())
        for name, step in STEPS:
            try:
                ended = step(ctx, m)
            except (Rejected, OperationalError, InterfaceError):
                raise  # not mail, or the database is in trouble: the worker decides
            except Exception as e:
                summary = f"{type(e).__name__}: {e}"
                raise StepFailed(name, summary, traceback.format_exc(TRACEBACK_FRAMES)) from e
            if ended is not None:
                return ended
        return _outcome(m)
