"""The figures /metrics and `mailgate stats` both read from disk and database, at once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from mailgate.db.models import OutboxRow
from mailgate.spool import Spool

OUTBOX_STATUSES = ("pending", "held", "failed", "sent", "dropped")


@dataclass(frozen=True)
class StoredFigures:
    spool_depth: int  # messages waiting for the worker
    shunt: int  # messages moved aside with a step and reason
    outbox: dict[str, int]  # outbox rows per status, every status of OUTBOX_STATUSES present


def outbox_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status)).all()
    counts = dict.fromkeys(OUTBOX_STATUSES, 0)
    counts.update({status: n for status, n in rows})
    return counts


def stored_figures(engine: Engine, spool: Spool) -> StoredFigures:
    return StoredFigures(spool.pending(), len(spool.shunted()), outbox_counts(engine))
