"""What one agent mail writes: its articles, audit events, its agent_mails row, its mail.

Every write goes through `mailgate.store` in the caller's transaction; mail goes through
the outbox in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from mailgate.agents import auth
from mailgate.agents.plan import LineResult
from mailgate.agents.reply import cleaned_note
from mailgate.config.model import Config
from mailgate.outgoing import agent_mails
from mailgate.outgoing.compose import Outgoing
from mailgate.parse.message import Parsed
from mailgate.pgp.keyring import Keyrings
from mailgate.pipeline.digests import dedupe_key
from mailgate.store import agent_mails as seen
from mailgate.store.articles import add_article
from mailgate.store.audit import audit
from mailgate.store.outbox import queue_mails


class MailEffects:
    """The writes of one authenticated agent mail, about the ticket `row` (None: the
    command address; set when #new opens a ticket)."""

    def __init__(
        self,
        conn: Connection,
        config: Config,
        reply: auth.AgentReply,
        p: Parsed,
        raw: bytes,
        now: datetime,
        row: Row[Any] | None,
        keyrings: Keyrings,
    ):
        self.conn = conn
        self.config = config
        self.reply = reply
        self.agent = reply.agent
        self.p = p
        self.raw = raw
        self.now = now
        self.row = row
        self.keyrings = keyrings  # the daemon's, closed by app.Daemon
        self.key = auth.message_key(p)  # the replay key, and the cause of every mail it sends
        self.content_key: str | None = None  # a signed body's key, accepted once
        self._dedupe_used = False

    def audit(self, action: str, **detail: Any) -> None:
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

    def record(self, outcome: str, detail: dict[str, Any]) -> None:
        """The agent_mails row: this Message-ID (and signed body) never runs again."""
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

    def article(self, *, kind: str, body: str, verdict: dict[str, Any], **more: Any) -> int:
        """An article of this mail on the ticket; the first one carries the mail's dedupe
        key, so a redelivery finds it."""
        assert self.row is not None
        dedupe = None if self._dedupe_used else dedupe_key(self.p, self.raw)
        self._dedupe_used = True
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

    def keep_as_note(self, outcome: str, reasons: list[str]) -> int | None:
        """The mail as an internal note (a mail that ran nothing), if on a ticket: cleaned
        of quotes, signature and tokens; the raw message is kept for admins."""
        if self.row is None:
            return None
        return self.article(
            kind="note",
            body=cleaned_note(self.p.text, self.agent.signature),
            verdict={"agent_mail": outcome, "reasons": reasons},
        )

    def queue(self, mails: Iterable[Outgoing]) -> int:
        cfg = self.config
        return queue_mails(self.conn, mails, self.now, cfg.relay.give_up_after_hours, cfg.governor)

    def result_mail(
        self,
        ok: bool,
        lines: tuple[LineResult, ...],
        headline: str,
        ticket_id: int,
        sections: tuple[str, ...] = (),
        reply_ticket: int | None = None,
    ) -> None:
        """Queue the agent's confirmation (ok) or transcript of what was wrong."""
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
        self.queue([mail])
