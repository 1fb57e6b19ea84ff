"""What the governor counts: one line per recipient of every queued outbox row."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select

from mailgate.config.governor import GovernorSettings
from mailgate.outgoing.compose import Outgoing
from mailgate.outgoing.governor import (
    DAY,
    HOUR,
    MINUTE,
    PASS,
    Counts,
    Mail,
    Verdict,
    check,
    held,
    rules_for,
)
from mailgate.store.batch import Sent, current
from mailgate.store.send_windows import (
    KINDS,
    NOT_SENDING,
    batch_count,
    note_sent,
    outbox,
    send_log,
)

# built once with bind parameters: building a statement per count was most of its cost
_PARAM = {MINUTE: "minute", HOUR: "hour", DAY: "day"}  # each window's bind parameter
_COUNTS = {
    k.name: select(func.count())
    .select_from(send_log.join(outbox, outbox.c.id == send_log.c.outbox_id))
    .where(*k.where, send_log.c.created_at > bindparam(_PARAM[k.seconds]))
    .where(outbox.c.status.not_in(NOT_SENDING))
    for k in KINDS.values()
}


def wanted_counts(mail: Mail, caps: GovernorSettings) -> tuple[str, ...]:
    """The Counts fields `mail`'s caps compare with."""
    return tuple(rule.count for rule in rules_for(mail, caps))


def counts_for(conn: Connection, mail: Mail, now: datetime, caps: GovernorSettings) -> Counts:
    """What `mail`'s caps need counted: in a batch from its windows, else one statement."""
    names = wanted_counts(mail, caps)
    if not names:
        return Counts()
    batch = current(conn)
    if batch is not None:
        return Counts(**{n: batch_count(conn, batch, KINDS[n], mail, now) for n in names})
    params = {
        "address": mail.address,
        "queue": mail.queue,
        "ticket_id": mail.ticket_id,
        "minute": now - timedelta(seconds=MINUTE),
        "hour": now - timedelta(seconds=HOUR),
        "day": now - timedelta(seconds=DAY),
    }
    row = conn.execute(_all_counts(names), params).one()
    return Counts(**dict(zip(names, row, strict=True)))


def verdict_for(conn: Connection, mail: Mail, now: datetime, caps: GovernorSettings) -> Verdict:
    """`check` of `mail` against its caps. In a batch each cap's window is counted only
    until one holds: the later caps could not change the verdict (the first that holds
    names itself), and a window's count is the same whenever in the batch it is made."""
    batch = current(conn)
    if batch is None:
        return check(mail, counts_for(conn, mail, now, caps), caps)
    for rule in rules_for(mail, caps):
        n = batch_count(conn, batch, KINDS[rule.count], mail, now)
        if n >= rule.limit:
            return held(rule, n, mail)
    return PASS


@functools.cache
def _all_counts(names: tuple[str, ...]) -> Any:
    """The wanted counts as one statement (a scalar subquery each, each on its index)."""
    return select(*(_COUNTS[n].scalar_subquery().label(n) for n in names))


def log_sends(
    conn: Connection,
    outbox_id: int,
    out: Outgoing,
    queue: str,
    now: datetime,
    counted: bool = True,  # False: the row was queued held (counts against no cap)
) -> None:
    rows = [
        {
            "outbox_id": outbox_id,
            "created_at": now,
            "address": a.lower(),
            "ticket_id": out.ticket_id,
            "queue": queue,
            "kind": out.kind,
        }
        for a in out.rcpt_tos
    ]
    batch = current(conn)
    if batch is None:
        conn.execute(_INSERT, rows)
        return
    for row in rows:  # read back only through the batch's windows until the flush
        batch.defer(_INSERT, row)
    sent = [Sent(r["address"], out.ticket_id, queue, out.kind, now, counted) for r in rows]
    note_sent(batch, sent)


_INSERT = insert(send_log)
