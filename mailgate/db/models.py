"""SQLAlchemy models, every table: tickets, articles, blobs, attachments, audit, outbox,
auto-response history, IMAP checkpoints, PGP secrets and the scheduler's per-ticket state.

Portable across SQLite and PostgreSQL: no dialect-specific types. The hot path in
`mailgate.store` uses these tables through Core; the CLI reads them through the ORM.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from mailgate.db.utc import UtcDateTime

TICKET_STATUSES = ("new", "open", "answered", "on-hold", "resolved", "closed", "reopened")
OPEN_STATUSES = ("new", "open", "answered", "on-hold", "reopened")


class Base(DeclarativeBase):
    pass


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(500), default="")
    requester_addr: Mapped[str] = mapped_column(String(320), index=True)
    requester_name: Mapped[str] = mapped_column(String(200), default="")
    queue: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(16), default="new")
    type: Mapped[str] = mapped_column(String(16), default="email")
    priority: Mapped[int] = mapped_column(Integer, default=50)
    sticky: Mapped[bool] = mapped_column(Boolean, default=False)
    assignee: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    tier: Mapped[str] = mapped_column(String(2), default="L1")
    category: Mapped[str] = mapped_column(String(100), default="")
    complexity: Mapped[str] = mapped_column(String(10), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)  # 0003 creates it
    first_response_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_customer_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_answer_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    search_pending: Mapped[bool] = mapped_column(Boolean, server_default="0")

    articles: Mapped[list[Article]] = relationship(
        back_populates="ticket", order_by="Article.id", lazy="selectin"
    )
    queues: Mapped[list[TicketQueue]] = relationship(lazy="selectin")
    ccs: Mapped[list[TicketCc]] = relationship(lazy="selectin")
    tags: Mapped[list[TicketTag]] = relationship(lazy="selectin")

    __table_args__ = (Index("ix_tickets_open_order", "status", "priority", "created_at"),)


class TicketQueue(Base):
    """Every queue a ticket is visible in: its own plus any other addressed queue."""

    __tablename__ = "ticket_queues"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    queue: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class TicketCc(Base):
    __tablename__ = "ticket_ccs"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)


class TicketTag(Base):
    __tablename__ = "ticket_tags"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(60), primary_key=True)


class TicketLink(Base):
    """A ticket that was opened because of another (a stranger used its tag, a late reply)."""

    __tablename__ = "ticket_links"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    linked_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(200), default="")


class Blob(Base):
    """Content-addressed bytes: raw messages and attachments, stored once."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Article(Base):
    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    # one article per (Message-ID, sender) or per raw hash: redelivery is a no-op
    dedupe_key: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    message_id: Mapped[str] = mapped_column(String(998), default="")
    raw_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"), nullable=True)
    from_addr: Mapped[str] = mapped_column(String(320), default="")
    from_name: Mapped[str] = mapped_column(String(200), default="")
    to_addrs: Mapped[list[str]] = mapped_column(JSON, default=list)
    cc_addrs: Mapped[list[str]] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    # inbound: what the customer wrote this time, quoted history cut (agents/reply.new_text)
    new_text: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(40), default="")
    auto: Mapped[bool] = mapped_column(Boolean, default=False)
    verdict: Mapped[dict] = mapped_column(JSON, default=dict)
    defects: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    search_pending: Mapped[bool] = mapped_column(Boolean, server_default="0")

    ticket: Mapped[Ticket] = relationship(back_populates="articles")
    attachments: Mapped[list[Attachment]] = relationship(lazy="selectin")


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), index=True)
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    agent_only: Mapped[bool] = mapped_column(Boolean, default=False)
    content_id: Mapped[str] = mapped_column(String(255), default="")  # an inline image's cid
    size: Mapped[int] = mapped_column(Integer, default=0)  # bytes of the decoded payload


class ThreadRef(Base):
    """Every Message-ID we stored or sent, and the ticket it belongs to."""

    __tablename__ = "thread_refs"

    message_id: Mapped[str] = mapped_column(String(998), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(60))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class OutboxRow(Base):
    """A message to send; written in the same transaction as the change that caused it."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_tos: Mapped[list[str]] = mapped_column(JSON)
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deadline: Mapped[datetime] = mapped_column(UtcDateTime())
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # 0 customer-facing, 1 agent notifications, 2 reminders and digests (outgoing/claims.py)
    priority: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    # a sender's lease on the row: set when claimed, cleared when its result is recorded
    claim_token: Mapped[str | None] = mapped_column(String(40))
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # per recipient: the last relay answer ("250 ...", "452 ...", "550 ..."); recipients
    # with a 2xx or a 5xx are done and never tried again
    rcpt_results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")

    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_class", "status", "priority", "next_attempt_at"),
    )


class SendLog(Base):
    """One line per recipient of each outbox row: what outgoing/governor.py counts."""

    __tablename__ = "send_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    address: Mapped[str] = mapped_column(String(320))  # lower-cased
    ticket_id: Mapped[int | None] = mapped_column(Integer)
    queue: Mapped[str] = mapped_column(String(40), default="")
    kind: Mapped[str] = mapped_column(String(30))

    __table_args__ = (
        Index("ix_send_log_address", "address", "created_at"),
        Index("ix_send_log_ticket", "address", "ticket_id", "created_at"),
        Index("ix_send_log_queue", "queue", "kind", "created_at"),
    )


class AutoResponseLog(Base):
    """When each (queue, sender) last got an auto-response: at most one per period."""

    __tablename__ = "autoresponse_log"

    queue: Mapped[str] = mapped_column(String(40), primary_key=True)
    sender: Mapped[str] = mapped_column(String(320), primary_key=True)
    last_sent_at: Mapped[datetime] = mapped_column(UtcDateTime())
    count: Mapped[int] = mapped_column(Integer, default=1)


class ImapCheckpoint(Base):
    """Where each polled mailbox folder was left: UIDVALIDITY and the last UID taken."""

    __tablename__ = "imap_checkpoints"

    mailbox: Mapped[str] = mapped_column(String(500), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (UniqueConstraint("mailbox"),)


class PgpSecret(Base):
    """One encrypted part of an inbound message: decrypted (agent-only) or why not."""

    __tablename__ = "pgp_secrets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1-based position in the message
    queue: Mapped[str] = mapped_column(String(40))  # whose keyring opened it
    sender: Mapped[str] = mapped_column(String(320))  # From addr-spec of the message
    kind: Mapped[str] = mapped_column(String(16))  # inline | pgp-mime | attachment | message
    ok: Mapped[bool] = mapped_column(Boolean)
    text: Mapped[str] = mapped_column(Text, default="")  # decrypted text ("" if not ok)
    reason: Mapped[str] = mapped_column(Text, default="")  # why not decrypted
    source_name: Mapped[str] = mapped_column(String(255), default="")  # encrypted file name
    ciphertext_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"), nullable=True)
    # sha256 of the OpenPGP packets (armor removed): finds the same ciphertext re-wrapped
    packet_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # decrypted attachments: [{"filename", "content_type", "sha256", "size"}]
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


pgp_secrets: Table = PgpSecret.__table__  # type: ignore[assignment]


class TicketSla(Base):
    """The scheduler's bookkeeping per ticket.

    One row per ticket the sweeps have seen open. `m_*` columns mirror the ticket as the last
    sync saw it: the sweeps find candidates on this narrow, indexed table and re-check the live
    ticket only for the few they act on, so a minute's work does not read every ticket row
    again. The clock starts are instants, moved forward past every pause (on hold, answered,
    closed), so an SLA test is one comparison against an instant computed once per queue.
    """

    __tablename__ = "ticket_sla"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    # the ticket as the last sync saw it
    m_queue: Mapped[str] = mapped_column(String(40))
    m_status: Mapped[str] = mapped_column(String(16))
    m_updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    m_customer_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    m_answer_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    m_first_response_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    m_assignee: Mapped[str | None] = mapped_column(String(40))
    tier_seen: Mapped[str] = mapped_column(String(2))
    set_priority: Mapped[int] = mapped_column(Integer)  # seen, or last written by the sweep
    # priority without automatic growth: picks the SLA class
    class_priority: Mapped[int] = mapped_column(Integer)
    # growth: priority = min(99, base + steps(business time since grow_from)) while waiting
    base_priority: Mapped[int] = mapped_column(Integer)
    steps_done: Mapped[int] = mapped_column(Integer)  # growth applied; 98: grows no more
    wait_since: Mapped[datetime | None] = mapped_column(UtcDateTime())  # the wait's message
    grow_from: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # clock starts, shifted past pauses
    resp_start: Mapped[datetime] = mapped_column(UtcDateTime())
    res_start: Mapped[datetime] = mapped_column(UtcDateTime())
    tier_start: Mapped[datetime] = mapped_column(UtcDateTime())
    paused_since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # what already happened (each fires once)
    fr_breached_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    res_breached_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    tier_breached_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    reminded_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    shift_flagged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    # each sweep's candidates are one index range: what is running, not yet done, near due
    __table_args__ = (
        Index("ix_ticket_sla_state", "m_status", "m_queue"),
        Index(
            "ix_ticket_sla_fr",
            "m_queue",
            "paused_since",
            "tier_seen",
            "fr_breached_at",
            "m_first_response_at",
            "resp_start",
        ),
        Index(
            "ix_ticket_sla_res",
            "m_queue",
            "paused_since",
            "tier_seen",
            "res_breached_at",
            "res_start",
        ),
        Index(
            "ix_ticket_sla_tier",
            "m_queue",
            "paused_since",
            "tier_seen",
            "tier_breached_at",
            "tier_start",
        ),
        Index("ix_ticket_sla_escalated", "tier_seen", "m_queue", "m_updated_at"),
        Index("ix_ticket_sla_touched", "m_queue", "m_updated_at"),
        Index("ix_ticket_sla_resume", "m_status", "paused_since"),
        Index("ix_ticket_sla_growth", "m_queue", "paused_since", "steps_done", "grow_from"),
    )


# every authenticated agent mail, whatever came of it (a Core table: the agent path
# writes it with INSERT ... ON CONFLICT, never through the ORM)
agent_mails = Table(
    "agent_mails",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("message_key", String(64), nullable=False, unique=True),
    Column("content_key", String(64), nullable=True, unique=True),
    Column("message_id", String(998), nullable=False),
    Column("agent", String(40), nullable=False),
    Column("ticket_id", Integer, nullable=True),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("raw_sha256", String(64), ForeignKey("blobs.sha256"), nullable=True),
    Column("detail", JSON, nullable=False),
    Index("ix_agent_mails_agent_received", "agent", "received_at"),
    Index("ix_agent_mails_ticket_id", "ticket_id"),
)
