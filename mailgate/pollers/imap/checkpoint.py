"""Where a mailbox folder's intake stands: (UIDVALIDITY, last UID) in `imap_checkpoints`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select, update

from mailgate.config.imap import ImapSettings
from mailgate.db.models import ImapCheckpoint

CHECKPOINTS = ImapCheckpoint.__table__


def mailbox_key(queue: str, settings: ImapSettings, folder: str) -> str:
    """The checkpoint key and Envelope source suffix: queue/user@host:port/folder."""
    return f"{queue}/{settings.account()}/{folder}"


@dataclass(frozen=True)
class Checkpoint:
    uidvalidity: int
    last_uid: int


class CheckpointStore:
    """One row per mailbox key in imap_checkpoints (each key has exactly one writer).

    `guard` runs before each write and raises if this daemon may not write any more
    (pollers/imap/lease.py: another daemon holds the mailbox now).
    """

    def __init__(self, engine: Engine, key: str, guard: Callable[[], None] | None = None):
        self.engine = engine
        self.key = key
        self.guard = guard

    def load(self) -> Checkpoint | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(CHECKPOINTS.c.uidvalidity, CHECKPOINTS.c.last_uid).where(
                    CHECKPOINTS.c.mailbox == self.key
                )
            ).first()
        return None if row is None else Checkpoint(int(row[0]), int(row[1]))

    def save(self, cp: Checkpoint) -> None:
        if self.guard is not None:
            self.guard()
        values = {"uidvalidity": cp.uidvalidity, "last_uid": cp.last_uid, "updated_at": _now()}
        with self.engine.begin() as conn:
            done = conn.execute(
                update(CHECKPOINTS).where(CHECKPOINTS.c.mailbox == self.key).values(**values)
            )
            if done.rowcount == 0:
                conn.execute(insert(CHECKPOINTS).values(mailbox=self.key, **values))


def _now() -> datetime:
    return datetime.now(UTC)
