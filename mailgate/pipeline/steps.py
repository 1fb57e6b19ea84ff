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
from mailgate.envelope import imported_with
from mailgate.outgoing.customer_mails import ack as build_ack
from mailgate.parse.authentication import SenderAuth
from mailgate.parse.limits import ParseRejected
from mailgate.parse.message import Parsed, parse
from mailgate.pgp.incoming import open_incoming
from mailgate.pgp.keyring import Keyrings
from mailgate.pgp.results import Opened
from mailgate.pipeline import machine_mail
from mailgate.pipeline.classify import Verdict
from mailgate.pipeline.decide import Decision, decide
from mailgate.pipeline.digests import RUN_IS_LOOP, SEEN, run_length
from mailgate.pipeline.outcome import Outcome, Rejected, StepFailed
from mailgate.pipeline.pool import Ahead, PreparePool, pool_size
from mailgate.pipeline.prepare import NOT_PREPARED, TRACEBACK_FRAMES, Facts, Prepared, Settings
from mailgate.pipeline.thread import ThreadChoice, ThreadLookups, choose
from mailgate.queues.routing import route
from mailgate.queues.rules import NO_ROUTING, Routing, evaluate, initial_priority
from mailgate.runtime import Clock, utcnow
from mailgate.spool import SpoolEntry
from mailgate.store import pgp_secrets, satisfaction
from mailgate.store import tickets as store
from mailgate.store.addresses import read_pauses
from mailgate.store.articles import read_duplicates, system_article
from mailgate.store.audit import audit
from mailgate.store.autoresponses import last_autoresponse, read_autoresponses, record_autoresponse
from mailgate.store.batch import BatchState
from mailgate.store.lookups import open_survey, read_thread_ahead, thread_lookups
from mailgate.store.outbox import add_outbox
from mailgate.store.repeats import REPEATS_WINDOW, recent_inbound
from mailgate.store.send_windows import read_history


@dataclass(frozen=True)
class Context:
    """What every step of one message may use besides the message itself."""

    config: Config
    conn: Connection
    our_addresses: frozenset[str]
    agent_addresses: frozenset[str]
    keyrings: Keyrings  # the daemon's; closed by app.Daemon
    settings: Settings  # Settings.of(config)


@dataclass(eq=False)
class Message:
    """One message on its way through the steps; a field exists once its step has run."""

    entry: SpoolEntry
    raw: bytes
    now: datetime
    prepared: Prepared | None = None  # parsed ahead (pipeline/prepare.py), maybe elsewhere
    parsed: Parsed = field(init=False)
    queues: tuple[str, ...] = field(init=False)
    primary: Queue = field(init=False)  # the queue it arrived in
    routing: Routing = field(init=False)
    home: Queue = field(init=False)  # a new ticket's queue after the rules; else primary
    opened: Opened | None = field(init=False)
    facts: Facts = field(init=False)
    verdict: Verdict = field(init=False)
    auth: SenderAuth = field(init=False)
    lookups: ThreadLookups = field(init=False)
    choice: ThreadChoice = field(init=False)
    acknowledge: ResponseDecision = field(init=False)
    decision: Decision = field(init=False)
    applied: store.Applied = field(init=False)
    acked: bool = False
    run: int = 1  # near-identical messages from this sender on this ticket, this one included
    survey: satisfaction.Survey | None = None  # the survey this sender may be answering
    incoming: machine_mail.Incoming | None = None  # made by the first machine-mail step


Step = Callable[[Context, Message], Outcome | None]


def parse_step(ctx: Context, m: Message) -> None:
    pre = m.prepared
    if pre is None:
        try:
            m.parsed = parse(m.raw)
        except ParseRejected as e:
            raise Rejected("parse", e.reason) from e
    elif pre.parsed is not None:
        m.parsed = pre.parsed
    elif pre.rejected:
        raise Rejected("parse", pre.rejected)
    else:
        raise StepFailed("parse", pre.failed, pre.traceback)


def route_step(ctx: Context, m: Message) -> None:
    m.queues = route(m.entry.envelope, m.parsed, ctx.config)
    verp = None if m.queues else machine_mail.verp_queue(ctx.config, m.entry.envelope, m.parsed)
    if verp is not None:  # a bounce to a VERP address names no queue address
        m.queues = (verp.name,)
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
    pre = m.prepared or NOT_PREPARED
    m.facts = pre.facts_of(m.parsed, ctx.settings)  # worked out ahead unless pgp changed it
    m.verdict, m.auth = m.facts.verdict, m.facts.auth
    if m.verdict.loop:
        # our own mail came back: never a ticket, an article or a mail; the shunt keeps it
        # with the reason (`mailgate shunt list`)
        loops = [r for r in m.verdict.reasons if r.startswith("loop:")]
        raise Rejected("classify", "dropped as a mail loop: " + "; ".join(loops))


def _incoming(m: Message) -> machine_mail.Incoming:
    if m.incoming is None:  # once for the machine-mail steps (after pgp: it holds still)
        m.incoming = machine_mail.Incoming(m.entry.envelope, m.parsed, m.raw, m.queues, m.now)
    return m.incoming


def bounce_step(ctx: Context, m: Message) -> Outcome | None:
    """A bounce or report ends here: a system article on its ticket, or quarantined."""
    return machine_mail.handle_report(ctx.conn, ctx.config, _incoming(m), m.verdict, m.prepared)


def spam_step(ctx: Context, m: Message) -> Outcome | None:
    """The spam filter in front said spam, or DMARC failed with a reject policy: quarantined,
    on a ticket or not."""
    return machine_mail.spam(ctx.conn, _incoming(m), m.verdict, m.auth)


def thread_step(ctx: Context, m: Message) -> None:
    m.lookups = thread_lookups(ctx.conn, m.parsed, m.prepared)
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
        earlier = recent_inbound(ctx.conn, tid, m.now - REPEATS_WINDOW, m.parsed.from_addr)
        m.run = run_length(m.facts.digest, earlier)
    SEEN.remember(m.parsed.text, m.facts.digest)  # the earlier text of its follow-ups
    if not m.verdict.automatic:  # a person may be answering a resolved ticket's survey
        m.survey = open_survey(ctx.conn, m.lookups, m.choice, m.parsed.from_addr)


def rules_step(ctx: Context, m: Message) -> None:
    """A new ticket's routing rules (its arrival queue's): they may move it on."""
    m.routing = (
        NO_ROUTING if m.choice.ticket_id is not None else evaluate(m.primary.rules, m.parsed)
    )
    m.home = ctx.config.queue(m.routing.queue) or m.primary


def junk_step(ctx: Context, m: Message) -> Outcome | None:
    """An auto-reply that belongs to no ticket opens none: quarantined with the reason."""
    if m.choice.ticket_id is not None:
        return None
    return machine_mail.unthreaded_automatic(ctx.conn, _incoming(m), m.verdict)


def autoresponse_step(ctx: Context, m: Message) -> None:
    sender = m.parsed.from_addr
    last = (
        last_autoresponse(ctx.conn, m.home.name, sender)
        if (m.choice.ticket_id is None and sender)
        else None
    )
    m.acknowledge = should_respond(
        verdict=m.verdict,
        sender=sender,
        enabled=m.home.autoresponse.enabled,
        period=timedelta(hours=m.home.autoresponse.period_hours),
        last_sent_at=last,
        now=m.now,
        reply=looks_like_reply(m.parsed),
    )
    never = m.primary.ack_unauthenticated == "never"
    if m.acknowledge.send and never and not m.auth.authenticated:
        why = "sender not authenticated (ack_unauthenticated = never)"
        m.acknowledge = ResponseDecision(False, why)
    if m.acknowledge.send and not imported_with(m.entry.envelope, "ack", default=True):
        m.acknowledge = ResponseDecision(False, "imported from a mailbox (no --ack)")


def decide_step(ctx: Context, m: Message) -> None:
    m.decision = decide(
        parsed=m.parsed,
        raw=m.raw,
        queues=m.queues,
        verdict=m.verdict,
        choice=m.choice,
        acknowledge=m.acknowledge,
        initial_priority=initial_priority(m.routing, m.home),
        our_addresses=ctx.our_addresses,
        run=m.run,
        survey_ticket=m.survey.ticket_id if m.survey else None,
        routing=m.routing,
        auth=m.auth.as_dict() if m.auth.authserv_id or m.auth.ignored else None,
        key=m.prepared.dedupe_key if m.prepared and m.prepared.parsed is m.parsed else None,
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
    pre = m.prepared
    known = pre.new_text if pre and pre.parsed and pre.parsed.text == p.text else None
    m.applied = store.apply(ctx.conn, d, p, m.raw, m.now, ticket_queue=queue, new_text=known)
    pgp_secrets.save(ctx.conn, m.opened, m.applied, p.from_addr, m.now)  # agent-only parts
    if m.run == RUN_IS_LOOP and m.applied.article_id is not None:
        system_article(
            ctx.conn,
            m.applied.ticket_id,
            f"Mail loop: {m.run} near-identical messages from {p.from_addr} on this ticket; "
            "further ones are kept here but notify nobody and send nothing.",
            m.now,
        )


def satisfaction_step(ctx: Context, m: Message) -> None:
    rating, survey = m.decision.rating, m.survey
    if rating is None or survey is None or m.applied.article_id is None:
        return
    satisfaction.rate(
        ctx.conn, survey.id, rating.score, rating.comment, m.applied.article_id, m.now
    )
    audit(ctx.conn, survey.ticket_id, m.parsed.from_addr, "rated", m.now, rating=rating.score)


def ack_step(ctx: Context, m: Message) -> None:
    if not (m.applied.created and m.decision.acknowledge.send):
        return
    cfg = ctx.config
    out = build_ack(cfg, m.home, m.applied.ticket_id, m.parsed, m.decision, m.now)
    deadline = m.now + timedelta(hours=cfg.relay.give_up_after_hours)
    # an authenticated sender is no forged one: not counted against the queue's ack budget
    budget = not (m.auth.authenticated or m.home.ack_unauthenticated == "always")
    m.acked = add_outbox(ctx.conn, out, m.now, deadline, cfg.governor, m.home.name, budget)
    if m.acked:
        record_autoresponse(ctx.conn, m.home.name, m.parsed.from_addr, m.now)


def notify_step(ctx: Context, m: Message) -> None:
    if m.applied.article_id is None or not m.decision.customer_activity:
        return
    if not imported_with(m.entry.envelope, "notify", default=True):
        return  # an imported mailbox is history, not news for the agents
    notify_customer_mail(
        ctx.conn,
        ctx.config,
        m.applied.ticket_id,
        created=m.applied.created,
        sender=m.parsed.from_addr,
        cause=m.decision.dedupe_key,
        now=m.now,
        article_id=m.applied.article_id,
        html=m.parsed.html,
    )


STEPS: tuple[tuple[str, Step], ...] = (
    ("parse", parse_step),
    ("route", route_step),
    ("pgp", pgp_step),
    ("agent", agent_step),
    ("classify", classify_step),
    ("bounce", bounce_step),
    ("spam", spam_step),
    ("thread", thread_step),
    ("junk", junk_step),
    ("rules", rules_step),
    ("autoresponse", autoresponse_step),
    ("decide", decide_step),
    ("store", store_step),
    ("satisfaction", satisfaction_step),
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
        self.settings = Settings.of(config)
        self.pool: PreparePool | None = None  # started with the first batch that needs it
        self._context: Context | None = None  # the current batch's (one connection each)

    def prepare(self, incoming: str, names: list[str]) -> Ahead:
        """Start reading and parsing the claimed `names` ahead of the database, in order."""
        if self.pool is None:
            self.pool = PreparePool(pool_size(self.config.worker.parse_processes))
        return self.pool.submit(incoming, names, self.settings)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()

    def read_ahead(self, conn: Connection, batch: BatchState, prepared: list[Prepared]) -> None:
        """What the batch's messages look up, read with one statement each for them all."""
        ready = [p for p in prepared if p.parsed is not None]
        read_duplicates(conn, batch, [p.dedupe_key for p in ready])
        now = self.clock()  # once for all its reads (a clock may tick per call)
        read_thread_ahead(conn, batch, ready, now)
        senders = [p.parsed.from_addr for p in ready if p.parsed]
        read_autoresponses(conn, batch, senders)
        # bounce pauses of whom the batch may mail: its senders (acks) and the agents
        read_pauses(conn, batch, [*senders, *(a.address for a in self.config.agents)])
        if self.config.governor.enabled:  # what the acknowledgements' caps count
            read_history(conn, batch, [s.lower() for s in senders], now)

    def process(
        self, conn: Connection, entry: SpoolEntry, raw: bytes, prepared: Prepared | None = None
    ) -> Outcome:
        """The message's Outcome; Rejected (never retried) or StepFailed naming the step."""
        ctx = self._context
        if ctx is None or ctx.conn is not conn:  # made once for the messages of a batch
            ctx = Context(self.config, conn, self.ours, self.agents, self.keyrings, self.settings)
            self._context = ctx
        m = Message(entry, raw, self.clock(), prepared)
        for name, step in STEPS:
            try:
                ended = step(ctx, m)
            except (Rejected, StepFailed, OperationalError, InterfaceError):
                raise  # not mail, a step's own failure, or the database is in trouble
            except Exception as e:
                summary = f"{type(e).__name__}: {e}"
                raise StepFailed(name, summary, traceback.format_exc(TRACEBACK_FRAMES)) from e
            if ended is not None:
                return ended
        return _outcome(m)
