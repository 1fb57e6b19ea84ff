"""The agent path: authenticate an agent's reply, run its commands, answer the customer.

Called by the worker right after routing, in the message's transaction. The rules a mail
must pass are in `auth`. Failing From + token, the mail is not an agent's command mail at
all: `handle` returns None and the worker treats it as ordinary customer mail. A replayed
Message-ID does nothing. An automatic mail, a refused check or a wrong command line applies
nothing: the mail is kept on the ticket as an internal note and the agent gets a
transcript. Everything is written through `mailgate.store` in the caller's transaction;
mail goes through the outbox in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from mailgate.agents import auth, commands
from mailgate.agents.answer import compose_answer
from mailgate.agents.changes import write_change
from mailgate.agents.commands import Plan, PlanContext
from mailgate.agents.notifications import event_notifications
from mailgate.agents.queries import answer_queries, ticket_ccs_of, ticket_row, ticket_view
from mailgate.agents.signature import body_signature
from mailgate.config.load import Config, Queue
from mailgate.outgoing import agent_mails
from mailgate.outgoing.compose import Outgoing
from mailgate.outgoing.customer_mails import agent_display
from mailgate.parse.message import Parsed
from mailgate.pipeline.classify import classify
from mailgate.pipeline.decide import dedupe_key
from mailgate.spool import Envelope
from mailgate.store import agent_mails as seen
from mailgate.store.articles import add_article, put_blob
from mailgate.store.audit import audit
from mailgate.store.outbox import queue_mails
from mailgate.store.tickets import insert_ticket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentMailResult:
    ticket_id: int  # 0: no ticket (the command address)
    article_id: int | None
    action: str  # agent-applied | agent-refused | agent-automatic | duplicate


def handle(
    conn: Connection, config: Config, envelope: Envelope, p: Parsed, raw: bytes, now: datetime
) -> AgentMailResult | None:
    """Run an authenticated agent mail; None if the mail is not one (customer path)."""
    reply = auth.find_agent_reply(config, p.from_addr, auth.recipients(envelope, p))
    if reply is None:
        return None
    return _AgentMail(conn, config, reply, p, raw, now).run()


class _AgentMail:
    """One authenticated agent mail, from checks to outbox rows."""

    def __init__(
        self,
        conn: Connection,
        config: Config,
        reply: auth.AgentReply,
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
        self.key = auth.message_key(p)
        self.row = ticket_row(conn, reply.ticket_id) if reply.ticket_id else None
        self.content_key: str | None = None
        self.dedupe_used = False

    # -- entry
    def run(self) -> AgentMailResult:
        agent, tid = self.agent, self.reply.ticket_id
        if seen.seen_message(self.conn, self.key):
            log.info("agent %s: mail %s already processed: ignored", agent.name, self.p.message_id)
            self._audit("agent-mail-replayed")
            return AgentMailResult(tid, None, "duplicate")
        put_blob(self.conn, self.p.raw_sha256, self.raw)
        verdict = classify(self.p, self.config.our_addresses, self.config.main.hostname)
        if verdict.automatic or verdict.bulk:
            aid = self._keep_as_note("automatic", list(verdict.reasons))
            self._record("automatic", {"reasons": list(verdict.reasons)})
            return AgentMailResult(tid, aid, "agent-automatic")
        problem = self._authentication_problem()
        if problem:
            return self._refuse((commands.LineResult(0, "(mail)", False, f"refused: {problem}"),))
        plan = self._plan()
        if not plan.ok:
            return self._refuse(plan.lines)
        return self._apply(plan)

    # -- checks
    def _settings_queues(self) -> list[Queue]:
        queues = [self.reply.queue]
        if self.row is not None:
            q = self.config.queue(self.row.queue)
            if q is not None and q is not self.reply.queue:
                queues.append(q)
        return queues

    def _authentication_problem(self) -> str:
        queues = self._settings_queues()
        problem = auth.refusal(
            self.reply,
            ticket_found=self.row is not None,
            message_id=self.p.message_id,
            date=self.p.date,
            now=self.now,
            queues=queues,
        )
        signing = auth.signing_queue(queues)
        if problem or signing is None:
            return problem
        sig = None
        if self.agent.pgp_fingerprint.strip():  # no key: refused without running gpg
            sig = body_signature(signing, self.raw, self.p.text, self.p.from_addr)
        problem = auth.signature_refusal(self.agent, signing, sig)
        if problem:
            return problem
        content_key = auth.signed_content_key(self.raw)
        if seen.seen_content(self.conn, content_key):
            return "this signed text was already processed (a replay)"
        self.content_key = content_key  # recorded with the mail: accepted once
        return ""

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
        self._audit("agent-mail-refused", errors=errors)
        where = f"ticket #{self.row.id} is unchanged" if self.row else "nothing was changed"
        headline = f"Nothing was applied: {where} and nothing was sent to a customer.\n" + (
            "Your mail is kept on the ticket as an internal note." if self.row is not None else ""
        )
        self._result_mail(False, lines, headline.strip(), self.reply.ticket_id)
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

    # -- writing
    def _audit(self, action: str, **detail: Any) -> None:
        tid = self.row.id if self.row is not None else None
        audit(
            self.conn,
            tid,
            self.agent.name,
            action,
            self.now,
            message_id=self.p.message_id,
            **detail,
        )

    def _record(self, outcome: str, detail: dict[str, Any]) -> None:
        seen.record_agent_mail(
            self.conn,
            message_key=self.key,
            content_key=self.content_key,
            message_id=self.p.message_id,
            agent=self.agent.name,
            ticket_id=self.row.id if self.row is not None else None,
            now=self.now,
            outcome=outcome,
            raw_sha256=self.p.raw_sha256,
            detail=detail,
        )

    def _article(self, *, kind: str, body: str, verdict: dict[str, Any], **more: Any) -> int:
        """An article of this mail on the ticket; the first one carries the mail's dedupe
        key, so a redelivery finds it."""
        assert self.row is not None
        dedupe = None if self.dedupe_used else dedupe_key(self.p, self.raw)
        self.dedupe_used = True
        fields: dict[str, Any] = {
            "from_addr": self.agent.address,
            "from_name": self.agent.full_name,
            "subject": self.p.subject,
            **more,
        }
        return add_article(
            self.conn,
            ticket_id=self.row.id,
            kind=kind,
            body=body,
            now=self.now,
            dedupe_key=dedupe,
            raw_sha256=self.p.raw_sha256,
            author=self.agent.name,
            verdict=verdict,
            defects=self.p.defects,
            **fields,
        )

    def _queue(self, mails: list[Outgoing]) -> int:
        return queue_mails(self.conn, mails, self.now, self.config.relay.give_up_after_hours)

    # -- applying a plan
    def _apply(self, plan: Plan) -> AgentMailResult:
        agent = self.agent
        created = False
        if plan.new_requester:
            self.row = self._create_ticket(plan)
            created = True
        sections, secret_mails = answer_queries(
            self.conn,
            self.config,
            agent,
            self.reply.queue,
            plan.queries,
            now=self.now,
            cause=self.key,
        )
        self._queue(secret_mails)
        if self.row is None:  # queries only, on the command address
            self._record("applied", {"queries": len(plan.queries)})
            self._confirm(plan, sections, "Done.")
            return AgentMailResult(0, None, "agent-applied")
        tid = self.row.id
        write_change(self.conn, self.row, plan.change, bool(plan.answer), self.now)
        self.row = ticket_row(self.conn, tid)
        assert self.row is not None

        main_article: int | None = None
        mails: list[Outgoing] = []
        if plan.note:
            main_article = self._article(
                kind="note", body=plan.note, verdict={"agent_mail": "note"}
            )
            self._audit("note")
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
                self._audit("command", line=r.text, result=r.message)
        if plan.answer:
            answer, main_article = self._answer(plan.answer)
            mails.append(answer)
        queue = self.config.queue(self.row.queue) or self.reply.queue
        mails += event_notifications(
            self.conn,
            self.config,
            queue,
            self.row,
            plan.events,
            actor=agent,
            actor_display=agent_display(agent),
            created=created,
            cause=self.key,
            now=self.now,
        )
        self._record(
            "applied",
            {"commands": [r.text for r, _ in plan.commands], "answered": bool(plan.answer)},
        )
        self._queue(mails)
        if plan.commands or created:
            headline = f"Done: ticket #{tid}" + (" opened" if created else "")
            if plan.answer:
                headline += f"; your answer was sent to {self.row.requester_addr}"
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
        tid = insert_ticket(
            self.conn,
            title=plan.change.title or plan.new_title,
            requester_addr=plan.new_requester,
            requester_name="",
            queues=[queue.name],
            type="agent",
            priority=plan.change.priority or queue.priority.initial,
            now=self.now,
        )
        audit(self.conn, tid, self.agent.name, "created", self.now, via="#new", queues=[queue.name])
        row = ticket_row(self.conn, tid)
        assert row is not None
        return row

    # -- the answer to the customer
    def _answer(self, text: str) -> tuple[Outgoing, int]:
        row = self.row
        assert row is not None
        queue = self.config.queue(row.queue) or self.reply.queue
        ccs = ticket_ccs_of(self.conn, row.id)
        out, body, subject = compose_answer(
            self.conn, self.config, queue, self.agent, row, ccs, text, cause=self.key, now=self.now
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
            subject=subject,
        )
        to = [row.requester_addr, *ccs]
        audit(
            self.conn,
            row.id,
            self.agent.name,
            "answered",
            self.now,
            message_id=out.message_id,
            to=to,
        )
        return out, aid

    # -- the reply to the agent
    def _confirm(self, plan: Plan, sections: tuple[str, ...], headline: str) -> None:
        shows = [q.ticket_id for q in plan.queries if isinstance(q, commands.Show)]
        tid = self.row.id if self.row is not None else 0
        reply_ticket = shows[0] if not tid and len(shows) == 1 else tid
        self._result_mail(True, plan.lines, headline, tid, sections, reply_ticket)

    def _result_mail(
        self,
        ok: bool,
        lines: tuple[commands.LineResult, ...],
        headline: str,
        ticket_id: int,
        sections: tuple[str, ...] = (),
        reply_ticket: int | None = None,
    ) -> None:
        mail = agent_mails.command_result(
            self.config,
            self.reply.queue,
            self.agent,
            ok=ok,
            lines=lines,
            ticket_id=ticket_id,
            subject=self.p.subject,
            in_reply_to=self.p.message_id,
            cause=self.key,
            now=self.now,
            headline=headline,
            sections=sections,
            reply_ticket=reply_ticket,
        )
        self._queue([mail])
