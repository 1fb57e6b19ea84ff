"""The quarantine ("junk"): mail no person wrote that belongs to no ticket, kept whole with
the reason (store/junk.py; `mailgate junk list|show|release`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailgate.db.models import Base, UtcDateTime


class JunkMail(Base):
    __tablename__ = "junk"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # bounce | report | auto-reply | spam | dmarc
    category: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    raw_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # redelivery: one row
    from_addr: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(String(998), default="")
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    envelope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # for release
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    __table_args__ = (Index("ix_junk_created", "created_at"),)
