"""The leases table: take, renew and give back a named job (db/models_leases.py).

A lease is taken when it is free, already ours, or ran out; the UPDATE's condition is
checked again on the row a concurrent writer left (PostgreSQL READ COMMITTED re-reads a
row it waited for), and two first INSERTs meet the primary key, so one holder wins.
Times are the daemons' clocks (UTC): keep them in step (NTP); a clock that runs ahead
takes leases early, which costs a duplicate fetch (deduped), never a lost message.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from mailgate.db.models_leases import Lease

leases: Table = Lease.__table__  # type: ignore[assignment]


def node_name(configured: str, spool_dir: os.PathLike[str] | str) -> str:
    """This daemon's name in the leases: the configured one, or hostname:spool directory.

    The spool is locked by one process at a time, so a daemon restarted on its spool after
    a crash is the same node and takes its leases back at once, without waiting them out.
    """
    return configured or f"{socket.gethostname()}:{os.fspath(spool_dir)}"


@dataclass(frozen=True)
class Holding:
    name: str
    holder: str
    expires_at: datetime
    acquired_at: datetime


def take(engine: Engine, name: str, holder: str, now: datetime, seconds: float) -> bool:
    """Hold `name` until now + seconds if it is free, ours or ran out; True if we hold it."""
    until = now + timedelta(seconds=seconds)
    with engine.begin() as conn:
        renewed = conn.execute(
            update(leases)
            .where(leases.c.name == name, leases.c.holder == holder)
            .values(expires_at=until)
        ).rowcount
        if renewed:
            return True
        taken = conn.execute(
            update(leases)
            .where(leases.c.name == name, leases.c.expires_at < now)
            .values(holder=holder, expires_at=until, acquired_at=now)
        ).rowcount
        if taken:
            return True
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(leases).values(name=name, holder=holder, expires_at=until, acquired_at=now)
            )
    except IntegrityError:
        return False  # someone else inserted it first
    return True


def release(engine: Engine, name: str, holder: str) -> None:
    """Give `name` back at once (a clean stop), if we still hold it."""
    with engine.begin() as conn:
        conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))


def holdings(engine: Engine, prefix: str = "") -> list[Holding]:
    """Every lease (whose name starts with `prefix`), by name."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(leases).where(leases.c.name.startswith(prefix)).order_by(leases.c.name)
        ).all()
    return [Holding(r.name, r.holder, r.expires_at, r.acquired_at) for r in rows]
