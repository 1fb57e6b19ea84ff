"""Satisfaction surveys: one row each time a resolving or closing mail asked the customer
to rate the support 1-5, and the rating and comment once they answered."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, SmallInteger, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailgate.db.models import Base, UtcDateTime


class SatisfactionSurvey(Base):
    __tablename__ = "satisfaction_surveys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    queue: Mapped[str] = mapped_column(String(40))
    # who the rating counts for: the ticket's assignee when the survey was sent
    agent: Mapped[str | None] = mapped_column(String(40), nullable=True)
    requester_addr: Mapped[str] = mapped_column(String(320))
    trigger: Mapped[str] = mapped_column(String(16))  # resolved | closed | auto-close
    asked_at: Mapped[datetime] = mapped_column(UtcDateTime())
    rating: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)  # 1..5
    comment: Mapped[str] = mapped_column(Text, default="")
    rated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    article_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id"), nullable=True)

    __table_args__ = (Index("ix_satisfaction_rated", "rated_at"),)


satisfaction_surveys: Table = SatisfactionSurvey.__table__  # type: ignore[assignment]
