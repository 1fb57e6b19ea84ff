"""Address state: which customer addresses bounce, and until when automatic mail to them
pauses (store/addresses.py writes it; outgoing/governor.py holds the mail)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailgate.db.models import Base, UtcDateTime


class AddressState(Base):
    __tablename__ = "address_states"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)  # lower-cased
    status: Mapped[str] = mapped_column(String(10), default="failing")  # failing | ok
    hard: Mapped[bool] = mapped_column(Boolean, default=False)  # the last bounce was permanent
    bounces: Mapped[int] = mapped_column(Integer, default=0)
    delays: Mapped[int] = mapped_column(Integer, default=0)  # `Action: delayed`: noted only
    paused_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    first_failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_report_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_status: Mapped[str] = mapped_column(String(20), default="")
    last_diagnostic: Mapped[str] = mapped_column(Text, default="")
    last_ticket_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
