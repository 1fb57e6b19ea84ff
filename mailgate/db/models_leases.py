"""Leases: which daemon does a job that only one may do at a time (an IMAP mailbox).

A row names the job, its holder and until when it holds it; the holder renews it while
it works, and anyone may take it once it ran out (store/leases.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from mailgate.db.models import Base, UtcDateTime


class Lease(Base):
    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(500), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime())
