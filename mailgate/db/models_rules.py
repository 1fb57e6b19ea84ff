"""Which routing rules matched a new ticket's first mail, and why (queues/rules.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mailgate.db.models import Base


class TicketRuleHit(Base):
    """One matching rule of a ticket, in the order the rules ran; `reasons` per matcher."""

    __tablename__ = "ticket_rule_hits"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(200))
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
