"""Address state: a bounce marks an address failing and pauses automatic mail to it.

Hard bounces pause longer than soft ones (`[bounces]`); `Action: delayed` is only noted.
`outgoing/governor.paused` decides from `paused_until` what store/outbox.py holds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Table, bindparam, delete, select, update

from mailgate.bounces.report import Recipient
from mailgate.config.machine_mail import BounceSettings
from mailgate.db.models_addresses import AddressState
from mailgate.store import fast
from mailgate.store.batch import BatchState, current
from mailgate.store.sql import insert_ignore

address_states: Table = AddressState.__table__  # type: ignore[assignment]


def record_report(
    conn: Connection,
    r: Recipient,
    ticket_id: int | None,
    now: datetime,
    settings: BounceSettings,
) -> datetime | None:
    """Note what a report says of one recipient; the pause it set (None for a delay)."""
    address = r.address.lower()
    insert_ignore(
        conn,
        address_states,
        {
            "address": address,
            "status": "ok",
            "hard": False,
            "bounces": 0,
            "delays": 0,
            "last_report_at": now,
            "last_status": "",
            "last_diagnostic": "",
        },
    )
    common = {
        "last_report_at": now,
        "last_status": r.status[:20],
        "last_diagnostic": r.diagnostic[:2000],
        "last_ticket_id": ticket_id,
    }
    where = address_states.c.address == address
    if r.action != "failed":
        conn.execute(
            update(address_states).where(where).values(delays=address_states.c.delays + 1, **common)
        )
        return None
    hours = settings.hard_pause_hours if r.hard else settings.soft_pause_hours
    until = now + timedelta(hours=hours)
    first = conn.execute(select(address_states.c.first_failed_at).where(where)).scalar()
    conn.execute(
        update(address_states)
        .where(where)
        .values(
            status="failing",
            hard=r.hard,
            bounces=address_states.c.bounces + 1,
            paused_until=until,
            first_failed_at=first or now,
            **common,
        )
    )
    batch = current(conn)
    if batch is not None and address in batch.pauses_read:
        batch.pauses[address] = until  # a later mail of the batch is held as it would be
    return until


_PAUSED = select(address_states.c.paused_until).where(
    address_states.c.address == bindparam("address"), address_states.c.status == "failing"
)  # built once: asked for every automatic mail


@functools.cache
def _paused_of(n: int) -> Any:
    c = address_states.c
    return select(c.address, c.paused_until).where(
        c.address.in_(fast.in_binds(n)), c.status == "failing"
    )


def paused_until(conn: Connection, address: str) -> datetime | None:
    address = address.lower()
    batch = current(conn)
    if batch is not None and address in batch.pauses_read:
        return batch.pauses.get(address)
    return fast.scalar(conn, _PAUSED, {"address": address})


def read_pauses(conn: Connection, batch: BatchState, addresses: Iterable[str]) -> None:
    """The pauses of a batch's recipients (its senders, the agents): one read for all."""
    wanted = [a for a in dict.fromkeys(a.lower() for a in addresses if a)]
    wanted = [a for a in wanted if a not in batch.pauses_read]
    for address, until in fast.rows_in(conn, _paused_of, wanted):
        batch.pauses[address] = until
    batch.pauses_read.update(wanted)


def list_states(conn: Connection, *, failing_only: bool = True) -> list[Row]:
    q = select(address_states).order_by(address_states.c.last_report_at.desc())
    if failing_only:
        q = q.where(address_states.c.status == "failing")
    return list(conn.execute(q))


def clear(conn: Connection, address: str) -> bool:
    """Forget an address's failures (it was fixed); True if there was anything to clear."""
    res = conn.execute(delete(address_states).where(address_states.c.address == address.lower()))
    return res.rowcount > 0
