"""The scheduler's own bookkeeping per ticket (models.py stays the mail path's).

One row per ticket the sweeps have seen open in a queue with `[sla]`. The clock starts are
instants, moved forward past every pause (on hold, answered, closed), so an SLA test is one
column comparison against an instant computed once per queue and sweep (see sla.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mailgate.models import Base, UtcDateTime


class TicketSla(Base):
    __tablename__ = "ticket_sla"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    # priority without automatic growth: picks the SLA class
    class_priority: Mapped[int] = mapped_column(Integer)
    # growth: priority = min(99, base + steps(business time since grow_from)) while waiting
    base_priority: Mapped[int] = mapped_column(Integer)
    set_priority: Mapped[int] = mapped_column(Integer)  # the value the sweep last wrote
    wait_since: Mapped[datetime | None] = mapped_column(UtcDateTime())  # last_customer_at seen
    grow_from: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # clock starts, shifted past pauses
    resp_start: Mapped[datetime] = mapped_column(UtcDateTime())
    res_start: Mapped[datetime] = mapped_column(UtcDateTime())
    tier_seen: Mapped[str] = mapped_column(String(2))
    tier_start: Mapped[datetime] = mapped_column(UtcDateTime())
    paused_since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # what already happened (each fires once)
    fr_breached_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    res_breached_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    tier_breached_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    reminded_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    shift_flagged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
