"""The governor's counts inside an optimistic batch: read once per batch, then kept.

Outside a batch `send_log.counts_for` counts with one SQL statement per mail. Counting
the acknowledgements of a queue's last minute walks every row of that minute, so a burst
of new tickets (the case the cap exists for) paid a count per mail that grew with the
burst. Inside a batch:

- the queue's acknowledgements of the last minute are read once, as their times;
- what was sent to an address in the last day (the longest window) is read once per
  address, for all the batch's senders with one statement (`read_history`), and every
  count about that address (automatic mail per hour and day, mail about one ticket) is
  taken from those rows;
- every send the batch logs afterwards (`note_sent`; its send_log insert is deferred to
  the flush) is added to the windows it matches, so each later count is a bisect.

The conditions are the SQL counts' own, written once as SQL and once in Python
(`WindowKind`); tests/unit/test_send_windows.py runs a random day of mail both ways and
requires the same mails held for the same reasons.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select

from mailgate.db.models import OutboxRow, SendLog
from mailgate.outgoing.governor import AUTOMATIC_KINDS, DAY, HOUR, MINUTE, Mail, is_notification
from mailgate.store import fast
from mailgate.store.batch import BatchState, Sent, Window

send_log: Table = SendLog.__table__  # type: ignore[assignment]
outbox: Table = OutboxRow.__table__  # type: ignore[assignment]
NOT_SENDING = ("held", "dropped", "digested")  # rows that do not count against a cap


@dataclass(frozen=True)
class WindowKind:
    name: str  # the Counts field
    seconds: int
    where: Any  # the SQL condition (bind parameters address, queue, ticket_id)
    key: Callable[[Mail], tuple[Any, ...]]  # (queue,) or (address, ...)
    matches: Callable[[Sent, tuple[Any, ...]], bool]  # the same condition, in Python


def window_kinds(c: Any) -> dict[str, WindowKind]:
    """The five counts of send_log.counts_for, each as SQL and as the same test in Python."""
    addr = c.address == bindparam("address")
    on_ticket = (addr, c.ticket_id == bindparam("ticket_id"))

    def mine(s: Sent, k: tuple[Any, ...]) -> bool:
        return s.address == k[0] and s.ticket_id is not None and s.ticket_id == k[1]

    def auto(s: Sent, k: tuple[Any, ...]) -> bool:
        return s.kind in AUTOMATIC_KINDS and s.address == k[0]

    kinds = (
        WindowKind(
            "acks_queue_minute",
            MINUTE,
            (c.queue == bindparam("queue"), c.kind == "ack"),
            lambda m: (m.queue,),
            lambda s, k: s.kind == "ack" and s.queue == k[0],
        ),
        WindowKind(
            "auto_hour", HOUR, (addr, c.kind.in_(AUTOMATIC_KINDS)), lambda m: (m.address,), auto
        ),
        WindowKind(
            "auto_day", DAY, (addr, c.kind.in_(AUTOMATIC_KINDS)), lambda m: (m.address,), auto
        ),
        WindowKind("ticket_hour", HOUR, on_ticket, lambda m: (m.address, m.ticket_id), mine),
        WindowKind(
            "notify_ticket_hour",
            HOUR,
            (*on_ticket, c.kind.like("notify-%")),
            lambda m: (m.address, m.ticket_id),
            lambda s, k: is_notification(s.kind) and mine(s, k),
        ),
    )
    return {k.name: k for k in kinds}


def _counted(*where: Any) -> Any:
    """send_log lines of rows that count (not held, dropped or digested), where ..."""
    return (
        select(send_log.c.address, send_log.c.ticket_id, send_log.c.queue, send_log.c.kind)
        .add_columns(send_log.c.created_at)
        .select_from(send_log.join(outbox, outbox.c.id == send_log.c.outbox_id))
        .where(*where, *(outbox.c.status != s for s in NOT_SENDING))  # fixed SQL: no IN
    )


KINDS = window_kinds(send_log.c)
_SINCE = send_log.c.created_at > bindparam("since")
_QUEUE_ACKS = _counted(*KINDS["acks_queue_minute"].where, _SINCE)


@functools.cache
def _history(n: int) -> Any:
    return _counted(send_log.c.address.in_(fast.in_binds(n)), _SINCE)


_BY_QUEUE = frozenset({"acks_queue_minute"})


def read_history(conn: Connection, batch: BatchState, addresses: list[str], now: datetime) -> None:
    """What was sent to these addresses in the last day: one statement for all of them."""
    since = now - timedelta(seconds=DAY)
    todo = [a for a in dict.fromkeys(addresses) if a not in batch.history]
    found: dict[str, list[Sent]] = {a: [] for a in todo}
    for r in fast.rows_in(conn, _history, todo, {"since": since}):
        found[r[0]].append(Sent(*r, counted=True))
    batch.history.update((a, (since, rows)) for a, rows in found.items())


def batch_count(
    conn: Connection, batch: BatchState, kind: WindowKind, mail: Mail, now: datetime
) -> int:
    """How many counted rows of `kind`'s window for `mail` are newer than now - window."""
    start = now - timedelta(seconds=kind.seconds)
    key = (kind.name, *kind.key(mail))
    window = batch.windows.get(key)
    if window is None or start < window.since:  # never read, or the clock went back
        # what this batch sent is not in the database before the flush: added here
        if kind.name in _BY_QUEUE:
            params = {"queue": mail.queue, "since": start}
            rows = [Sent(*r, counted=True) for r in fast.rows(conn, _QUEUE_ACKS, params)]
            rows += batch.sent
        else:
            read = batch.history.get(mail.address)
            if read is None or start < read[0]:
                batch.history.pop(mail.address, None)
                read_history(conn, batch, [mail.address], now)
            rows = batch.history[mail.address][1] + batch.sent_to.get(mail.address, [])
        times = [
            s.created_at
            for s in rows
            if s.counted and s.created_at > start and kind.matches(s, key[1:])
        ]
        window = batch.windows[key] = Window(start, sorted(times))
    return len(window.times) - bisect.bisect_right(window.times, start)


def note_sent(batch: BatchState, sent: list[Sent]) -> None:
    """Rows this batch logged: kept for windows read later, added to those read already."""
    batch.sent.extend(sent)
    for s in sent:
        batch.sent_to.setdefault(s.address, []).append(s)
    for (name, *key), window in batch.windows.items():
        for s in sent:
            if s.counted and s.created_at > window.since and KINDS[name].matches(s, tuple(key)):
                bisect.insort(window.times, s.created_at)
