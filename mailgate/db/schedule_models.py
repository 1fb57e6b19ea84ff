"""The scheduler's own bookkeeping per ticket (models.py stays the mail path's).

One row per ticket the sweeps have seen open. `m_*` columns mirror the ticket as the last
sync saw it: the sweeps find candidates on this narrow, indexed table and re-check the live
ticket only for the few they act on, so a minute's work does not read every ticket row
again. The clock starts are instants, moved forward past every pause (on hold, answered,
closed), so an SLA test is one comparison against an instant computed once per queue.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mailgate.db.models import Base, UtcDateTime


class TicketSla(Base):
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
