"""The agent path: authenticate an agent's reply, run its commands, answer the customer.

Called by the worker right after routing, in the message's transaction. The rules a mail
must pass are in `auth`. Failing From + token, the mail is not an agent's command mail at
all: `handle` returns None and the worker treats it as ordinary customer mail. A replayed
Message-ID does nothing. An automatic mail, a refused check or a wrong command line applies
nothing: the mail is kept on the ticket as an internal note and the agent gets a
transcript. The writes are `effects`'.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row

from mailgate.agents import attachments, auth, planner
from mailgate.agents.answer import compose_answer
from mailgate.agents.changes import write_change
from mailgate.agents.checks import authentication_problem
from mailgate.agents.commands.queries import Show
from mailgate.agents.effects import MailEffects
from mailgate.agents.html_reply import answer_html
from mailgate.agents.no_token import handle_without_token
from mailgate.agents.notifications import event_notifications
from mailgate.agents.plan import LineResult, Plan, PlanContext
from mailgate.agents.queries import answer_queries, ticket_ccs_of, ticket_row, ticket_view
from mailgate.agents.reply import split_reply
from mailgate.agents.survey import ask_on_resolve
from mailgate.config.model import Config
from mailgate.outgoing.agent_mails import answers_digest
from mailgate.outgoing.compose import Outgoing, shown_cids
from mailgate.outgoing.customer_mails import agent_display
from mailgate.parse.attachments import Attachment as ParsedAttachment
from mailgate.parse.message import Parsed
from mailgate.pgp.armor import SECURED
from mailgate.pgp.keyring import Keyrings
from mailgate.pipeline.classify import classify
from mailgate.pipeline.digests import text_digest
from mailgate.spool import Envelope
from mailgate.store import agent_mails as seen
from mailgate.store.articles import add_attachments, put_blob
from mailgate.store.audit import audit
from mailgate.store.repeats import recent_texts
from mailgate.store.tickets import insert_ticket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentMailResult:
    ticket_id: int  # 0: no ticket (the command address)
    article_id: int | None
    action: str  # agent-applied | agent-refused | agent-automatic | agent-no-token | duplicate


def handle(
    conn: Connection,
    config: Config,
    envelope: Envelope,
    p: Parsed,
    raw: bytes,
    now: datetime,
    keyrings: Keyrings,
) -> AgentMailResult | None:
    """Run an authenticated agent mail; None if the mail is not one (customer path)."""
    reply = (  # the recipients only when From is an agent's: most mail is a customer's
        auth.find_agent_reply(config, p.from_addr, auth.recipients(envelope, p))
        if p.from_addr and config.agent_by_address(p.from_addr) is not None
        else None
    )
    if reply is None:  # an agent's mail without a token about a ticket: a note, never a reply
        done = handle_without_token(conn, config, p, raw, now)
        return AgentMailResult(*done) if done else None
    row = ticket_row(conn, reply.ticket_id) if reply.ticket_id else None
    return _AgentMail(MailEffects(conn, config, reply, p, raw, now, row, keyrings)).run()


class _AgentMail:
    """One authenticated agent mail, from checks to outbox rows."""

    def __init__(self, fx: MailEffects):
        self.fx = fx
        self.conn, self.config, self.reply = fx.conn, fx.config, fx.reply
        self.agent, self.p, self.now = fx.agent, fx.p, fx.now

    def run(self) -> AgentMailResult:
        fx, tid = self.fx, self.reply.ticket_id
        if seen.seen_message(self.conn, fx.key):
            log.info(
                "agent %s: mail %s already processed: ignored", self.agent.name, self.p.message_id
            )
            fx.audit("agent-mail-replayed")
            return AgentMailResult(tid, None, "duplicate")
        put_blob(self.conn, self.p.raw_sha256, fx.raw)
        verdict = classify(self.p, self.config.our_addresses, self.config.main.hostname)
        if verdict.automatic or verdict.bulk:
            aid = fx.keep_as_note("automatic", list(verdict.reasons))
            fx.record("automatic", {"reasons": list(verdict.reasons)})
            return AgentMailResult(tid, aid, "agent-automatic")
        if answers_digest(self.p):  # whatever answers a digest, a person or a responder
            aid = fx.keep_as_note("digest-reply", ["a reply to a digest runs nothing"])
            fx.record("digest-reply", {})
            return AgentMailResult(tid, aid, "agent-automatic")
        problem, fx.content_key = authentication_problem(
            self.conn, self.config, self.reply, fx.row, self.p, fx.raw, self.now, fx.keyrings
        )
        own = split_reply(self.p.text, self.agent.signature)  # what the agent wrote, unquoted
        if not problem and SECURED in own.text:
            problem = (
                "the mail is encrypted: its text cannot be read for commands nor sent to a "
                "customer, so nothing was sent; send it again unencrypted (signed is fine)"
            )
        if problem:
            return self._refuse((LineResult(0, "(mail)", False, f"refused: {problem}"),))
        plan = self._plan()
        if not plan.ok:
            return self._refuse(plan.lines)
        files = attachments.of_answer(self.p.attachments) if plan.answer else ()
        queue = self.config.queue(fx.row.queue) if fx.row is not None else None
        cap = (queue or self.reply.queue).agent_mail.answer_attachments_max_bytes
        problem = attachments.answer_problem(files, cap)
        if problem:
            return self._refuse((*plan.lines, LineResult(0, "(attachments)", False, problem)))
        return self._apply(plan, files)

    def _plan(self) -> Plan:
        config, agent, row = self.config, self.agent, self.fx.row
        split = split_reply(self.p.text, agent.signature)
        return planner.plan(
            split,
            PlanContext(
                agent=agent,
                agents={a.name: a for a in config.agents},
                queues=frozenset(q.name for q in config.queues),
                our_addresses=config.our_addresses,
                address_queue=self.reply.queue.name,
                ticket=ticket_view(self.conn, row) if row is not None else None,
                subject=self.p.subject,
            ),
        )

    def _refuse(self, lines: tuple[LineResult, ...]) -> AgentMailResult:
        fx = self.fx
        errors = [f"{r.text}: {r.message}" for r in lines if not r.ok]
        aid = fx.keep_as_note("refused", errors)
        fx.record("refused", {"errors": errors})
        fx.audit("agent-mail-refused", errors=errors)
        where = f"ticket #{fx.row.id} is unchanged" if fx.row else "nothing was changed"
        headline = f"Nothing was applied: {where} and nothing was sent to a customer.\n" + (
            "Your mail is kept on the ticket as an internal note." if fx.row is not None else ""
        )
        answer = split_reply(self.p.text, self.agent.signature).text
        quoted = (
            (
                "Your text, not sent (fix the lines above and send it again):\n\n"
                + "\n".join(f"> {s}" if s else ">" for s in answer.split("\n"))
                + "\n",
            )
            if answer.strip() and SECURED not in answer
            else ()
        )
        fx.result_mail(False, lines, headline.strip(), self.reply.ticket_id, quoted)
        log.info("agent %s: mail refused: %s", self.agent.name, "; ".join(errors))
        return AgentMailResult(self.reply.ticket_id, aid, "agent-refused")

    # -- applying a plan
    def _apply(self, plan: Plan, files: tuple[ParsedAttachment, ...] = ()) -> AgentMailResult:
        agent = self.agent
        created = False
        if plan.new_requester:
            self.fx.row = self._create_ticket(plan)
            created = True
        sections, secret_mails = answer_queries(
            self.conn,
            self.config,
            agent,
            self.reply.queue,
            plan.queries,
            now=self.now,
            cause=self.fx.key,
            keyrings=self.fx.keyrings,
        )
        self.fx.queue(secret_mails)
        if self.fx.row is None:  # queries only, on the command address
            self.fx.record("applied", {"queries": len(plan.queries)})
            self._confirm(plan, sections, "Done.")
            return AgentMailResult(0, None, "agent-applied")
        tid, before = self.fx.row.id, self.fx.row
        write_change(self.conn, self.fx.row, plan.change, bool(plan.answer), self.now)
        self.fx.row = ticket_row(self.conn, tid)
        assert self.fx.row is not None

        main_article: int | None = None
        mails: list[Outgoing] = []
        if plan.note:
            main_article = self.fx.article(
                kind="note", body=plan.note, verdict={"agent_mail": "note"}
            )
            self.fx.audit("note")
        if plan.commands:
            summary = "; ".join(f"{r.text} ({r.message})" for r, _ in plan.commands)
            aid = self.fx.article(
                kind="system",
                body=f"{agent.name}: {summary}",
                verdict={"agent_mail": "commands"},
                subject="",
            )
            main_article = main_article or aid
            for r, _ in plan.commands:
                self.fx.audit("command", line=r.text, result=r.message)
        repeated = plan.answer and self._answered_alike(plan.answer)
        if repeated:
            aid = self.fx.article(
                kind="note",
                body=plan.answer,
                verdict={"agent_mail": "repeated-answer", "reasons": [repeated]},
            )
            main_article = main_article or aid
            self.fx.audit("answer-not-resent", reason=repeated)
        elif plan.answer:
            answer, main_article = self._answer(plan.answer, files)
            mails.append(answer)
        queue = self.config.queue(self.fx.row.queue) or self.reply.queue
        mails += event_notifications(
            self.conn,
            self.config,
            queue,
            self.fx.row,
            plan.events,
            actor=agent,
            actor_display=agent_display(agent),
            created=created,
            cause=self.fx.key,
            now=self.now,
        )
        mails += ask_on_resolve(
            self.conn, self.config, queue, before, self.fx.row, cause=self.fx.key, now=self.now
        )
        self.fx.record(
            "applied",
            {"commands": [r.text for r, _ in plan.commands], "answered": bool(plan.answer)},
        )
        self.fx.queue(mails)
        if plan.commands or created:
            headline = f"Done: ticket #{tid}" + (" opened" if created else "")
            if repeated:
                headline += f"; {repeated}"
            elif plan.answer:
                headline += f"; your answer was sent to {self.fx.row.requester_addr}"
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
    def _answered_alike(self, text: str) -> str:
        """Why this answer is not sent: the agent sent the same text here within the hour."""
        assert self.fx.row is not None
        since = self.now - timedelta(hours=1)
        digest = text_digest(text)
        for _, verdict in recent_texts(
            self.conn, self.fx.row.id, since, kind="outbound", author=self.agent.name
        ):
            if verdict.get("answer_digest") == digest:
                return "the same answer was sent on this ticket within the hour: not sent again"
        return ""

    def _answer(self, text: str, files: tuple[ParsedAttachment, ...]) -> tuple[Outgoing, int]:
        row = self.fx.row
        assert row is not None
        queue = self.config.queue(row.queue) or self.reply.queue
        ccs = ticket_ccs_of(self.conn, row.id)
        html, signed = self._html_answer(text)
        if html:
            quoted = shown_cids(self.p.html)
            files = attachments.without_quoted_images(files, shown_cids(html), quoted)
        out, body, subject = compose_answer(
            self.conn,
            self.config,
            queue,
            self.agent,
            row,
            ccs,
            text,
            cause=self.fx.key,
            now=self.now,
            attachments=attachments.outgoing(files),
            html=html,
            html_signed=signed,
        )
        aid = self.fx.article(
            kind="outbound",
            body=body,
            verdict={
                "agent_mail": "answer",
                "agent_message_id": self.p.message_id,
                "answer_digest": text_digest(text),
            },
            message_id=out.message_id,
            from_addr=queue.address,
            from_name=agent_display(self.agent),
            to=(row.requester_addr,),
            cc=ccs,
            subject=subject,
        )
        add_attachments(self.conn, aid, files, agent_only=False)  # by hash, on the ticket
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

    def _html_answer(self, text: str) -> tuple[str, bool]:
        """The answer as HTML when the agent wrote HTML that says what `text` says."""
        if not self.p.html:
            return "", False
        own = split_reply(self.p.text, self.agent.signature)
        return answer_html(self.p.html, text, len(own.command_lines), self.agent.signature)

    # -- the reply to the agent
    def _confirm(self, plan: Plan, sections: tuple[str, ...], headline: str) -> None:
        shows = [q.ticket_id for q in plan.queries if isinstance(q, Show)]
        tid = self.fx.row.id if self.fx.row is not None else 0
        reply_ticket = shows[0] if not tid and len(shows) == 1 else tid
        self.fx.result_mail(True, plan.lines, headline, tid, sections, reply_ticket)
