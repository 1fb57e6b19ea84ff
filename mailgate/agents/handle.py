"""The agent path: authenticate an agent's reply, run its commands, answer the customer.

Called by the worker right after routing, inside the message's savepoint. A mail is an
agent's command mail only when ALL of these hold (design invariant 6):

  1. From (the addr-spec, never the display name) is an agent's address;
  2. a recipient is a queue address with a reply token valid for that agent (tokens.py);
  3. its Message-ID was never processed before (table agent_mails; a replay does nothing);
  4. it is not automatic (an agent's out-of-office reply is kept as a note, never run);
  5. its Date is recent (queue setting, default 72 h) and not in the future;
  6. if a queue involved requires it, a valid PGP signature by the agent's registered key
     covers the whole body (and the same signed body is accepted only once).

Failing 1 or 2, the mail is not an agent's command mail at all: `handle` returns None and
the worker treats it as ordinary customer mail. Failing 3, nothing happens. Failing 4-6 or
any command, nothing is applied, the mail is kept on the ticket as an internal note and the
agent gets a transcript. Everything here writes in the caller's transaction with Core;
mail goes through the outbox in the same transaction.

`notify_customer_mail` queues the notifications for new tickets and customer replies.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Row,
    Table,
    bindparam,
    delete,
    insert,
    select,
    update,
)

from mailgate.agents import access, commands, tokens
from mailgate.agents.commands import Plan, PlanContext, TicketView
from mailgate.autoresponse.render import render
from mailgate.config.model import Config, Queue
from mailgate.config.schema import Agent
from mailgate.db.models import OPEN_STATUSES, TicketTag, agent_mails
from mailgate.outgoing import notify
from mailgate.outgoing.compose import Outgoing, compose, reply_subject, stable_message_id
from mailgate.parse.message import Parsed
from mailgate.pgp import crypto
from mailgate.pgp import store as pgp_store
from mailgate.pipeline.classify import classify
from mailgate.pipeline.decide import dedupe_key
from mailgate.spool import Envelope
from mailgate.store import tickets as store

log = logging.getLogger(__name__)

ticket_tags: Table = TicketTag.__table__  # type: ignore[assignment]
tickets = store.tickets
articles = store.articles

LIST_LIMIT = 50
_RECIPIENT_HEADERS = ("to", "cc", "delivered-to", "x-original-to", "envelope-to")


@dataclass(frozen=True)
class AgentMailResult:
    ticket_id: int  # 0: no ticket (the command address)
    article_id: int | None
    action: str  # agent-applied | agent-refused | agent-automatic | duplicate


@dataclass(frozen=True)
class AgentReply:
    """An agent mail whose token checked out: who, which ticket, through which queue."""

    agent: Agent
    ticket_id: int
    queue: Queue  # the queue whose address carried the token
    ambiguous: bool  # valid tokens for more than one ticket


# --------------------------------------------------------------------------- pure checks


def find_agent_reply(config: Config, envelope: Envelope, p: Parsed) -> AgentReply | None:
    """The agent and ticket a mail is authenticated for by From + token, or None."""
    agent = config.agent_by_address(p.from_addr) if p.from_addr else None
    if agent is None:
        return None
    values = [*envelope.rcpt_tos, *(v for h in _RECIPIENT_HEADERS for v in p.header_all(h))]
    valid = []
    for ra in tokens.reply_addresses(values):
        queue = config.queue_for_address(ra.queue_address)
        if queue is None or ra.queue_address not in queue.addresses:
            continue
        if tokens.verify(config.secret, agent.name, ra.ticket_id, ra.mac):
            valid.append((ra, queue))
    if not valid:
        log.info("mail from agent %s without a valid reply token: customer path", agent.name)
        return None
    ticket_ids = {ra.ticket_id for ra, _ in valid}
    ra, queue = valid[0]
    return AgentReply(agent, ra.ticket_id, queue, ambiguous=len(ticket_ids) > 1)


def date_problem(
    date: datetime | None, now: datetime, max_age_hours: float, max_future_minutes: float
) -> str:
    """Why a command mail's Date is not acceptable, or "" if it is."""
    if date is None:
        return "the mail has no readable Date header"
    age = now - date
    if age > timedelta(hours=max_age_hours):
        return f"the mail is dated {date.isoformat()}, more than {max_age_hours:g} h ago"
    if -age > timedelta(minutes=max_future_minutes):
        return f"the mail is dated {date.isoformat()}, in the future"
    return ""


def message_key(p: Parsed) -> str:
    """Replay key: the Message-ID (case-folded), or the raw bytes when there is none."""
    basis = f"mid:{p.message_id.strip().lower()}" if p.message_id else f"raw:{p.raw_sha256}"
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()


def agent_display(agent: Agent) -> str:
    """`Alice Example, Senior engineer`: the From name of an agent's answer."""
    name = agent.full_name or agent.name
    return f"{name}, {agent.description}" if agent.description else name


def ticket_values(
    ch: commands.TicketChange, answered: bool, before: Row[Any], now: datetime
) -> dict[str, Any]:
    """The tickets columns a plan sets: its changes, the answer's timestamps, the status."""
    values: dict[str, Any] = {"updated_at": now}
    if ch.assign:
        values["assignee"] = ch.assignee
    elif ch.queue or ch.tier:
        values["assignee"] = None  # moved or escalated: the new people pick it up
    for name in ("sticky", "priority", "title", "complexity", "queue", "tier"):
        value = getattr(ch, name)
        if value is not None:
            values[name] = value
    if ch.requester is not None:
        values.update(requester_addr=ch.requester, requester_name="")
    status = ch.status
    if answered:
        values["last_answer_at"] = now
        if before.first_response_at is None:
            values["first_response_at"] = now
        status = status or "answered"
    if status is None and ch.assign and ch.assignee and before.status == "new":
        status = "open"
    if status == "closed":
        values.update(status=status, closed_at=now)
    elif status == "resolved":
        values.update(status=status, resolved_at=now, closed_at=None)
    elif status is not None:
        values.update(status=status, closed_at=None, resolved_at=None)
    return values


# --------------------------------------------------------------------------- reads


# built once: a notification runs these per customer mail (half the cost of building each time)
_TID = bindparam("tid", type_=Integer)
_TICKET = select(tickets).where(tickets.c.id == _TID)
_QUEUES = select(store.ticket_queues.c.queue).where(store.ticket_queues.c.ticket_id == _TID)
_CCS = select(store.ticket_ccs.c.address).where(store.ticket_ccs.c.ticket_id == _TID)
_TAGS = select(ticket_tags.c.tag).where(ticket_tags.c.ticket_id == _TID)
_HISTORY = (
    select(
        articles.c.created_at,
        articles.c.kind,
        articles.c.author,
        articles.c.from_addr,
        articles.c.body_text,
    )
    .where(articles.c.ticket_id == _TID)
    .order_by(articles.c.id.desc())
    .limit(bindparam("n", type_=Integer))
)
_LATEST = (
    select(tickets.c.id, tickets.c.status, tickets.c.created_at, tickets.c.title)
    .where(tickets.c.requester_addr == bindparam("requester"), tickets.c.id != _TID)
    .order_by(tickets.c.created_at.desc(), tickets.c.id.desc())
    .limit(bindparam("n", type_=Integer))
)


def _ticket_row(conn: Connection, ticket_id: int) -> Row[Any] | None:
    return conn.execute(_TICKET, {"tid": ticket_id}).first()


def ticket_view(conn: Connection, row: Row[Any]) -> TicketView:
    tid = row.id
    queues = set(conn.execute(_QUEUES, {"tid": tid}).scalars())
    return TicketView(
        id=tid,
        queue=row.queue,
        queues=frozenset(queues | {row.queue}),
        status=row.status,
        priority=row.priority,
        assignee=row.assignee,
        sticky=bool(row.sticky),
        tier=row.tier,
        requester=row.requester_addr,
    )


def ticket_digest(conn: Connection, config: Config, row: Row[Any]) -> notify.TicketDigest:
    """What a mail to an agent shows about the ticket in `row` (a tickets row)."""
    ticket_id = row.id
    ccs = conn.execute(_CCS, {"tid": ticket_id}).scalars()
    tags = conn.execute(_TAGS, {"tid": ticket_id}).scalars()
    queue = config.queue(row.queue)
    settings = queue.agent_mail if queue else None
    n_history = settings.history_articles if settings else 5
    n_latest = settings.latest_tickets if settings else 5
    history = conn.execute(_HISTORY, {"tid": ticket_id, "n": n_history}).all()
    latest = conn.execute(
        _LATEST, {"tid": ticket_id, "requester": row.requester_addr, "n": n_latest}
    ).all()
    requester = (
        f"{row.requester_name} <{row.requester_addr}>" if row.requester_name else row.requester_addr
    )
    return notify.TicketDigest(
        id=ticket_id,
        title=row.title,
        queue=row.queue,
        status=row.status,
        priority=row.priority,
        assignee=row.assignee or "",
        sticky=bool(row.sticky),
        tier=row.tier,
        requester=requester,
        ccs=tuple(sorted(ccs)),
        tags=tuple(sorted(tags)),
        complexity=row.complexity,
        created=notify.when(row.created_at),
        history=tuple(
            notify.ArticleSummary(
                when=notify.when(a.created_at),
                kind=a.kind,
                who=a.author or a.from_addr or "mailgate",
                text=notify.shorten(a.body_text),
            )
            for a in reversed(history)
        ),
        latest=tuple(
            notify.OtherTicket(t.id, t.status, notify.when(t.created_at)[:10], t.title)
            for t in latest
        ),
    )


# --------------------------------------------------------------------------- notifications


def notify_customer_mail(
    conn: Connection,
    config: Config,
    ticket_id: int,
    *,
    created: bool,
    sender: str,
    cause: str,
    now: datetime,
) -> int:
    """Queue notifications for a new ticket or a customer reply; the number queued."""
    if not config.agents or not any(q.agent_mail.notify for q in config.queues):
        return 0  # the common case costs no query
    row = _ticket_row(conn, ticket_id)
    if row is None:
        return 0
    queue = config.queue(row.queue)
    if queue is None or not queue.agent_mail.notify or not config.agents:
        return 0
    view = ticket_view(conn, row)
    sender_agent = config.agent_by_address(sender) if sender else None
    exclude = sender_agent.name if sender_agent else ""
    if created:
        event = "new_ticket"
        recipients = access.queue_agents(config.agents, view.queues, exclude)
    else:
        event = "customer_reply"
        recipients = notify.customer_reply_recipients(
            config.agents, view.queues, row.assignee or "", bool(row.sticky), exclude
        )
    if not recipients:
        return 0
    digest = ticket_digest(conn, config, row)
    mails = notify.notifications(config, queue, recipients, event, digest, cause=cause, now=now)
    return _queue_all(conn, config, mails, now)


def _queue_all(conn: Connection, config: Config, mails: list[Outgoing], now: datetime) -> int:
    deadline = store.outbox_deadline(now, config.relay.give_up_after_hours)
    return sum(store.add_outbox(conn, m, now, deadline) for m in mails)


# --------------------------------------------------------------------------- the agent path


class _Refusal(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def handle(
    conn: Connection, config: Config, envelope: Envelope, p: Parsed, raw: bytes, now: datetime
) -> AgentMailResult | None:
    """Run an authenticated agent mail; None if the mail is not one (customer path)."""
    reply = find_agent_reply(config, envelope, p)
    if reply is None:
        return None
    return _AgentMail(conn, config, reply, p, raw, now).run()


class _AgentMail:
    """One authenticated agent mail, from checks to outbox rows."""

    def __init__(
        self,
        conn: Connection,
        config: Config,
        reply: AgentReply,
        p: Parsed,
        raw: bytes,
        now: datetime,
    ):
        self.conn = conn
        self.config = config
        self.agent = reply.agent
        self.reply = reply
        self.p = p
        self.raw = raw
        self.now = now
        self.key = message_key(p)
        self.row = _ticket_row(conn, reply.ticket_id) if reply.ticket_id else None
        self.content_key: str | None = None
        self.dedupe_used = False

    # -- entry
    def run(self) -> AgentMailResult:
        agent, tid = self.agent, self.reply.ticket_id
        if self._seen():
            log.info("agent %s: mail %s already processed: ignored", agent.name, self.p.message_id)
            store.audit(
                self.conn,
                self.row.id if self.row else None,
                agent.name,
                "agent-mail-replayed",
                self.now,
                message_id=self.p.message_id,
            )
            return AgentMailResult(tid, None, "duplicate")
        store.put_blob(self.conn, self.p.raw_sha256, self.raw)
        verdict = classify(self.p, self.config.our_addresses, self.config.main.hostname)
        if verdict.automatic or verdict.bulk:
            aid = self._keep_as_note("automatic", list(verdict.reasons))
            self._record("automatic", {"reasons": list(verdict.reasons)})
            return AgentMailResult(tid, aid, "agent-automatic")
        try:
            self._authenticate()
            plan = self._plan()
        except _Refusal as e:
            return self._refuse((commands.LineResult(0, "(mail)", False, f"refused: {e.reason}"),))
        if not plan.ok:
            return self._refuse(plan.lines)
        return self._apply(plan)

    def _seen(self) -> bool:
        return (
            self.conn.execute(
                select(agent_mails.c.id).where(agent_mails.c.message_key == self.key)
            ).first()
            is not None
        )

    # -- checks
    def _settings_queues(self) -> list[Queue]:
        queues = [self.reply.queue]
        if self.row is not None:
            q = self.config.queue(self.row.queue)
            if q is not None and q is not self.reply.queue:
                queues.append(q)
        return queues

    def _authenticate(self) -> None:
        if self.reply.ambiguous:
            raise _Refusal("the mail carries reply addresses of more than one ticket")
        if self.reply.ticket_id and self.row is None:
            raise _Refusal(f"ticket #{self.reply.ticket_id} does not exist")
        if not self.p.message_id:
            raise _Refusal("the mail has no Message-ID, so a replay could not be told apart")
        queues = self._settings_queues()
        problem = date_problem(
            self.p.date,
            self.now,
            min(q.agent_mail.max_command_age_hours for q in queues),
            min(q.agent_mail.max_command_future_minutes for q in queues),
        )
        if problem:
            raise _Refusal(problem)
        signed = [q for q in queues if q.agent_mail.require_signed_commands]
        if signed:
            self._check_signature(signed[0])

    def _check_signature(self, queue: Queue) -> None:
        want = self.agent.pgp_fingerprint.replace(" ", "").upper()
        if not want:
            raise _Refusal(f"queue {queue.name} requires signed commands; no key registered")
        home = (queue.source.parent / queue.agent_mail.agent_keyring).resolve()
        result = crypto.open_message(self.raw, self.p.text, _keyring(home), self.p.from_addr)
        sig = result.signature
        if sig is None:
            raise _Refusal(
                f"queue {queue.name} requires commands signed with your PGP key "
                "(the whole body); the mail has no such signature"
            )
        if not sig.valid:
            raise _Refusal(f"the PGP signature is not valid: {sig.reason}")
        if sig.fingerprint.upper() != want:
            raise _Refusal(f"signed by key {sig.fingerprint}, not by your registered key")
        body = self.raw.split(b"\r\n\r\n", 1)[-1] if b"\r\n\r\n" in self.raw else self.raw
        content_key = hashlib.sha256(b"signed\x1f" + body).hexdigest()
        replayed = self.conn.execute(
            select(agent_mails.c.id).where(agent_mails.c.content_key == content_key)
        ).first()
        if replayed is not None:
            raise _Refusal("this signed text was already processed (a replay)")
        self.content_key = content_key  # recorded with the mail: accepted once

    def _plan(self) -> Plan:
        config, agent = self.config, self.agent
        view = ticket_view(self.conn, self.row) if self.row is not None else None
        split = commands.split_reply(self.p.text, agent.signature)
        return commands.plan(
            split,
            PlanContext(
                agent=agent,
                agents={a.name: a for a in config.agents},
                queues=frozenset(q.name for q in config.queues),
                our_addresses=config.our_addresses,
                address_queue=self.reply.queue.name,
                ticket=view,
                subject=self.p.subject,
            ),
        )

    # -- refusal
    def _refuse(self, lines: tuple[commands.LineResult, ...]) -> AgentMailResult:
        errors = [f"{r.text}: {r.message}" for r in lines if not r.ok]
        aid = self._keep_as_note("refused", errors)
        self._record("refused", {"errors": errors})
        store.audit(
            self.conn,
            self.row.id if self.row else None,
            self.agent.name,
            "agent-mail-refused",
            self.now,
            message_id=self.p.message_id,
            errors=errors,
        )
        where = f"ticket #{self.row.id} is unchanged" if self.row else "nothing was changed"
        headline = f"Nothing was applied: {where} and nothing was sent to a customer.\n" + (
            "Your mail is kept on the ticket as an internal note." if self.row is not None else ""
        )
        self._queue(
            [
                notify.result_mail(
                    self.config,
                    self.reply.queue,
                    self.agent,
                    ok=False,
                    lines=lines,
                    ticket_id=self.reply.ticket_id,
                    subject=self.p.subject,
                    in_reply_to=self.p.message_id,
                    cause=self.key,
                    now=self.now,
                    headline=headline.strip(),
                )
            ]
        )
        log.info("agent %s: mail refused: %s", self.agent.name, "; ".join(errors))
        return AgentMailResult(self.reply.ticket_id, aid, "agent-refused")

    def _keep_as_note(self, outcome: str, reasons: list[str]) -> int | None:
        if self.row is None:
            return None
        return self._article(
            kind="note",
            body=self.p.text,
            verdict={"agent_mail": outcome, "reasons": reasons},
        )

    def _record(self, outcome: str, detail: dict[str, Any]) -> None:
        self.conn.execute(
            insert(agent_mails),
            {
                "message_key": self.key,
                "content_key": self.content_key,
                "message_id": self.p.message_id[:998],
                "agent": self.agent.name,
                "ticket_id": self.row.id if self.row is not None else None,
                "received_at": self.now,
                "outcome": outcome,
                "raw_sha256": self.p.raw_sha256,
                "detail": detail,
            },
        )

    def _article(
        self,
        *,
        kind: str,
        body: str,
        verdict: dict[str, Any],
        dedupe: str | None = None,
        ticket_id: int | None = None,
        message_id: str = "",
        from_addr: str = "",
        from_name: str = "",
        to: tuple[str, ...] = (),
        cc: tuple[str, ...] = (),
        subject: str | None = None,
    ) -> int:
        tid = ticket_id if ticket_id is not None else self.row.id  # type: ignore[union-attr]
        if dedupe is None and not self.dedupe_used:
            dedupe = dedupe_key(self.p, self.raw)  # the mail's first article: redelivery finds it
        self.dedupe_used = True
        aid = self.conn.execute(
            insert(articles).returning(articles.c.id),
            {
                "ticket_id": tid,
                "kind": kind,
                "dedupe_key": dedupe,
                "message_id": message_id[:998],
                "raw_sha256": self.p.raw_sha256,
                "from_addr": (from_addr or self.agent.address)[:320],
                "from_name": (from_name or self.agent.full_name)[:200],
                "to_addrs": list(to),
                "cc_addrs": list(cc),
                "subject": self.p.subject if subject is None else subject,
                "body_text": body,
                "author": self.agent.name,
                "auto": False,
                "verdict": verdict,
                "defects": list(self.p.defects),
                "created_at": self.now,
            },
        ).scalar_one()
        if message_id:
            store.insert_ignore(
                self.conn, store.thread_refs, {"message_id": message_id[:998], "ticket_id": tid}
            )
        return int(aid)

    def _queue(self, mails: list[Outgoing]) -> int:
        return _queue_all(self.conn, self.config, mails, self.now)

    # -- applying a plan
    def _apply(self, plan: Plan) -> AgentMailResult:
        conn, agent, now = self.conn, self.agent, self.now
        created = False
        if plan.new_requester:
            self.row = self._create_ticket(plan)
            created = True
        sections = self._answer_queries(plan)
        if self.row is None:  # queries only, on the command address
            self._record("applied", {"queries": len(plan.queries)})
            self._confirm(plan, sections, "Done.")
            return AgentMailResult(0, None, "agent-applied")
        tid = self.row.id
        ch = plan.change
        values = ticket_values(ch, bool(plan.answer), self.row, now)
        conn.execute(update(tickets).where(tickets.c.id == tid).values(**values))
        if ch.queue:
            store.add_queues(conn, tid, [ch.queue])
        self._set_members(tid, ch)
        after = _ticket_row(conn, tid)
        assert after is not None
        self.row = after

        main_article: int | None = None
        mails: list[Outgoing] = []
        if plan.note:
            main_article = self._article(
                kind="note", body=plan.note, verdict={"agent_mail": "note"}
            )
            store.audit(conn, tid, agent.name, "note", now, message_id=self.p.message_id)
        if plan.commands:
            summary = "; ".join(f"{r.text} ({r.message})" for r, _ in plan.commands)
            aid = self._article(
                kind="system",
                body=f"{agent.name}: {summary}",
                verdict={"agent_mail": "commands"},
                subject="",
            )
            main_article = main_article or aid
            for r, _ in plan.commands:
                store.audit(
                    conn,
                    tid,
                    agent.name,
                    "command",
                    now,
                    line=r.text,
                    result=r.message,
                    message_id=self.p.message_id,
                )
        if plan.answer:
            answer, aid = self._answer(plan.answer)
            mails.append(answer)
            main_article = aid
        mails += self._event_notifications(plan, created)
        self._record(
            "applied",
            {"commands": [r.text for r, _ in plan.commands], "answered": bool(plan.answer)},
        )
        self._queue(mails)
        if plan.commands or created:
            headline = f"Done: ticket #{tid}" + (" opened" if created else "")
            if plan.answer:
                headline += f"; your answer was sent to {after.requester_addr}"
            self._confirm(plan, sections, headline + ".")
        log.info(
            "agent %s: ticket #%d: %d command(s)%s",
            agent.name,
            tid,
            len(plan.commands),
            ", answer sent" if plan.answer else "",
        )
        return AgentMailResult(tid, main_article, "agent-applied")

    def _create_ticket(self, plan: Plan) -> Row[Any]:
        queue = self.reply.queue
        ch = plan.change
        tid = self.conn.execute(
            insert(tickets).returning(tickets.c.id),
            {
                "title": ch.title or plan.new_title,
                "requester_addr": plan.new_requester,
                "requester_name": "",
                "queue": queue.name,
                "status": "new",
                "type": "agent",
                "priority": ch.priority or queue.priority.initial,
                "sticky": False,
                "assignee": None,
                "tier": "L1",
                "category": "",
                "complexity": "",
                "created_at": self.now,
                "updated_at": self.now,
            },
        ).scalar_one()
        store.add_queues(self.conn, tid, [queue.name])
        store.audit(
            self.conn, tid, self.agent.name, "created", self.now, via="#new", queues=[queue.name]
        )
        row = _ticket_row(self.conn, tid)
        assert row is not None
        return row

    def _set_members(self, tid: int, ch: commands.TicketChange) -> None:
        conn, ccs = self.conn, store.ticket_ccs
        if ch.cc_add:
            store.insert_ignore(conn, ccs, [{"ticket_id": tid, "address": a} for a in ch.cc_add])
        if ch.cc_remove:
            conn.execute(delete(ccs).where(ccs.c.ticket_id == tid, ccs.c.address.in_(ch.cc_remove)))
        if ch.tag_add:
            store.insert_ignore(
                conn, ticket_tags, [{"ticket_id": tid, "tag": t} for t in ch.tag_add]
            )
        if ch.tag_remove:
            conn.execute(
                delete(ticket_tags).where(
                    ticket_tags.c.ticket_id == tid, ticket_tags.c.tag.in_(ch.tag_remove)
                )
            )

    # -- the answer to the customer
    def _answer(self, text: str) -> tuple[Outgoing, int]:
        conn, row = self.conn, self.row
        assert row is not None
        queue = self.config.queue(row.queue) or self.reply.queue
        last = conn.execute(
            select(articles.c.message_id, articles.c.subject)
            .where(
                articles.c.ticket_id == row.id,
                articles.c.kind == "inbound",
                articles.c.auto.is_(False),
                articles.c.message_id != "",
            )
            .order_by(articles.c.id.desc())
            .limit(1)
        ).first()
        known = conn.execute(
            select(articles.c.message_id)
            .where(
                articles.c.ticket_id == row.id,
                articles.c.kind.in_(("inbound", "outbound")),
                articles.c.message_id != "",
            )
            .order_by(articles.c.id.desc())
            .limit(20)
        ).scalars()
        references = [m for m in reversed(list(known)) if not last or m != last.message_id]
        if last is not None:
            references.append(last.message_id)
        ccs = tuple(
            sorted(
                conn.execute(
                    select(store.ticket_ccs.c.address).where(store.ticket_ccs.c.ticket_id == row.id)
                ).scalars()
            )
        )
        out, body = compose_answer(
            self.config,
            queue,
            self.agent,
            ticket_id=row.id,
            requester=(row.requester_name, row.requester_addr),
            ccs=ccs,
            subject=reply_subject(last.subject if last else row.title, queue.tag_for(row.id)),
            text=text,
            in_reply_to=last.message_id if last else "",
            references=tuple(references),
            cause=self.key,
            now=self.now,
        )
        aid = self._article(
            kind="outbound",
            body=body,
            verdict={"agent_mail": "answer", "agent_message_id": self.p.message_id},
            message_id=out.message_id,
            from_addr=queue.address,
            from_name=agent_display(self.agent),
            to=(row.requester_addr,),
            cc=ccs,
            subject=reply_subject(last.subject if last else row.title, queue.tag_for(row.id)),
        )
        store.audit(
            self.conn,
            row.id,
            self.agent.name,
            "answered",
            self.now,
            message_id=out.message_id,
            to=[row.requester_addr, *ccs],
        )
        return out, aid

    # -- notifications and replies to the agent
    def _event_notifications(self, plan: Plan, created: bool) -> list[Outgoing]:
        """Who must hear of the plan's events (each agent once, the actor never)."""
        config, row = self.config, self.row
        assert row is not None
        queue = config.queue(row.queue) or self.reply.queue
        told: set[str] = {self.agent.name}
        batches: list[tuple[str, list[Agent], str]] = []  # (event, agents, reason)

        def newly(agents: list[Agent]) -> list[Agent]:
            fresh = [a for a in agents if a.name not in told]
            told.update(a.name for a in fresh)
            return fresh

        for event in plan.events:
            if isinstance(event, commands.Assigned):
                target = config.agent(event.agent)
                batches.append(("assigned", newly([target] if target else []), ""))
            else:
                found = access.escalation_recipients(
                    config.agents, event.queue, event.tier, exclude=told
                )
                batches.append(("escalated", newly(found), event.reason))
        if created and queue.agent_mail.notify:
            members = access.queue_agents(config.agents, ticket_view(self.conn, row).queues)
            batches.append(("new_ticket", newly(members), ""))
        batches = [b for b in batches if b[1]]
        if not batches:
            return []
        digest = ticket_digest(self.conn, config, row)
        actor = agent_display(self.agent)
        return [
            mail
            for event, agents, reason in batches
            for mail in notify.notifications(
                config,
                queue,
                agents,
                event,
                digest,
                cause=self.key,
                now=self.now,
                actor=actor,
                reason=reason,
            )
        ]

    def _answer_queries(self, plan: Plan) -> tuple[str, ...]:
        config, agent, queue = self.config, self.agent, self.reply.queue
        sections: list[str] = []
        for q in plan.queries:
            if isinstance(q, commands.Help):
                sections.append(notify.help_section(config, queue, agent))
            elif isinstance(q, commands.ListMine):
                rows = self._list(tickets.c.assignee == agent.name)
                sections.append(
                    notify.list_section(config, queue, agent, "Your open tickets", rows)
                )
            elif isinstance(q, commands.ListUnassigned):
                cond = tickets.c.assignee.is_(None)
                if agent.role != "admin":
                    visible = select(store.ticket_queues.c.ticket_id).where(
                        store.ticket_queues.c.queue.in_(agent.queues)
                    )
                    cond = cond & tickets.c.id.in_(visible)
                rows = self._list(cond)
                sections.append(
                    notify.list_section(config, queue, agent, "Unassigned open tickets", rows)
                )
            elif isinstance(q, commands.Show):
                sections.append(self._show(q.ticket_id))
            elif isinstance(q, commands.Secret):
                sent = pgp_store.secret_for_agent(
                    self.conn, config, q.ticket_id, agent, self.now, cause=self.key
                )
                if isinstance(sent, str):
                    sections.append(sent)
                else:
                    self._queue([sent])
                    sections.append(f"#secret {q.ticket_id}: sent to you in a separate mail.")
        return tuple(sections)

    def _list(self, condition: Any) -> tuple[notify.ListedTicket, ...]:
        rows = self.conn.execute(
            select(
                tickets.c.id,
                tickets.c.priority,
                tickets.c.status,
                tickets.c.queue,
                tickets.c.created_at,
                tickets.c.title,
                tickets.c.assignee,
            )
            .where(tickets.c.status.in_(OPEN_STATUSES), condition)
            .order_by(tickets.c.priority.desc(), tickets.c.created_at.asc(), tickets.c.id.asc())
            .limit(LIST_LIMIT)
        ).all()
        return tuple(
            notify.ListedTicket(
                id=r.id,
                priority=r.priority,
                status=r.status,
                queue=r.queue,
                created=notify.when(r.created_at)[:10],
                title=r.title,
                assignee=r.assignee or "",
                reply_address=tokens.reply_address(
                    self.config.secret, self.agent.name, r.id, self._queue_address(r.queue)
                ),
            )
            for r in rows
        )

    def _queue_address(self, name: str) -> str:
        q = self.config.queue(name)
        return q.address if q else self.reply.queue.address

    def _show(self, ticket_id: int) -> str:
        row = _ticket_row(self.conn, ticket_id)
        if row is None or not _visible(self.agent, ticket_view(self.conn, row)):
            return f"#show {ticket_id}: no such ticket in your queues."
        queue = self.config.queue(row.queue) or self.reply.queue
        digest = ticket_digest(self.conn, self.config, row)
        return notify.show_section(self.config, queue, self.agent, digest)

    def _confirm(self, plan: Plan, sections: tuple[str, ...], headline: str) -> None:
        shows = [q.ticket_id for q in plan.queries if isinstance(q, commands.Show)]
        tid = self.row.id if self.row is not None else 0
        reply_ticket = shows[0] if not tid and len(shows) == 1 else tid
        self._queue(
            [
                notify.result_mail(
                    self.config,
                    self.reply.queue,
                    self.agent,
                    ok=True,
                    lines=plan.lines,
                    ticket_id=tid,
                    subject=self.p.subject,
                    in_reply_to=self.p.message_id,
                    cause=self.key,
                    now=self.now,
                    headline=headline,
                    sections=sections,
                    reply_ticket=reply_ticket,
                )
            ]
        )


def _visible(agent: Agent, view: TicketView) -> bool:
    return access.can_see(agent, view.queues, view.assignee)


def compose_answer(
    config: Config,
    queue: Queue,
    agent: Agent,
    *,
    ticket_id: int,
    requester: tuple[str, str],
    ccs: tuple[str, ...],
    subject: str,
    text: str,
    in_reply_to: str,
    references: tuple[str, ...],
    cause: str,
    now: datetime,
) -> tuple[Outgoing, str]:
    """The agent's answer as the customer sees it (and its body): from the queue, signed by
    the agent.

    Only the agent's own text and the footer template go in: never notes, history, tokens.
    """
    tag = queue.tag_for(ticket_id)
    footer = render(
        config.templates_dir,
        queue.name,
        "answer_footer.txt",
        {
            "agent_display": agent_display(agent),
            "agent_name": agent.full_name or agent.name,
            "agent_signature": agent.signature,
            "queue_name": queue.from_name,
            "queue_address": queue.address,
            "tag": tag,
            "ticket_id": ticket_id,
        },
    )
    if tokens.contains_token(text) or tokens.contains_token(footer):
        raise ValueError("refusing to send a reply token to a customer")
    mid = stable_message_id(config.main.hostname, "answer", cause)
    body = f"{text.rstrip()}\n\n{footer}"
    raw = compose(
        from_addr=queue.address,
        from_name=agent_display(agent),
        to=((requester[0], requester[1]),),
        cc=ccs,
        subject=subject,
        body=body,
        message_id=mid,
        date=now,
        hostname=config.main.hostname,
        in_reply_to=in_reply_to,
        references=references,
        auto_submitted="no",  # a person wrote it (RFC 3834); the loop header still marks it
    )
    out = Outgoing("answer", queue.address, (requester[1], *ccs), mid, raw, ticket_id)
    return out, body


_keyrings: dict[Path, crypto.Keyring] = {}


def _keyring(home: Path) -> crypto.Keyring:
    """One crypto.Keyring per GnuPG home (starting gnupg.GPG runs gpg once)."""
    ring = _keyrings.get(home)
    if ring is None:
        ring = _keyrings[home] = crypto.Keyring(home)
    return ring


__all__ = [
    "AgentMailResult",
    "AgentReply",
    "agent_display",
    "agent_mails",
    "compose_answer",
    "date_problem",
    "find_agent_reply",
    "handle",
    "message_key",
    "notify_customer_mail",
]
