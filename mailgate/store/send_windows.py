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
  the flush) is added to the windows it matches, so each later count is a bisect;
- a queue's window keeps the times of its first `NEAR` seconds only (the rows a later
  count of the same batch can see leave the window) and the number of rows after them
  (counted in SQL, never turned into datetimes: in a burst, every counted ack of the
  minute); a count that starts past them reads the window again;
- a window with nothing in it is not kept: an address or a new ticket without sends is
  counted again from the batch's lists, which hold every send a kept window would have.

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

from sqlalchemy import Connection, Table, bindparam, func, or_, select

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
    scope: str  # queue | address | ticket: what the window is kept per
    where: Any  # the SQL condition (bind parameters address, queue, ticket_id)
    matches: Callable[[Sent], bool]  # the same condition in Python, within the scope

    def key(self, queue: str, address: str, ticket_id: int | None) -> tuple[Any, ...]:
        if self.scope == "queue":
            return (self.name, queue)
        return (self.name, address) if self.scope == "address" else (self.name, address, ticket_id)


def window_kinds(c: Any) -> dict[str, WindowKind]:
    """The five counts of send_log.counts_for, each as SQL and as the same test in Python."""
    addr = c.address == bindparam("address")
    on_ticket = (addr, c.ticket_id == bindparam("ticket_id"))
    kinds = (
        WindowKind(
            "acks_queue_minute",
            MINUTE,
            "queue",
            (c.queue == bindparam("queue"), c.kind == "ack"),
            lambda s: s.kind == "ack",
        ),
        # automatic mail to one address, per hour and per day
        *(
            WindowKind(
                name,
                seconds,
                "address",
                (addr, c.kind.in_(AUTOMATIC_KINDS)),
                lambda s: s.kind in AUTOMATIC_KINDS,
            )
            for name, seconds in (("auto_hour", HOUR), ("auto_day", DAY))
        ),
        WindowKind("ticket_hour", HOUR, "ticket", on_ticket, lambda s: True),
        WindowKind(
            "notify_ticket_hour",
            HOUR,
            "ticket",
            (*on_ticket, c.kind.like("notify-%")),
            lambda s: is_notification(s.kind),
        ),
    )
    return {k.name: k for k in kinds}


_LINE = (send_log.c.address, send_log.c.ticket_id, send_log.c.queue, send_log.c.kind)


def _counted(*where: Any, columns: tuple[Any, ...] = _LINE) -> Any:
    """send_log lines (`columns` and created_at) of rows that count (not held, dropped or
    digested), where ..."""
    return (
        select(*columns)
        .add_columns(send_log.c.created_at)
        .select_from(send_log.join(outbox, outbox.c.id == send_log.c.outbox_id))
        .where(*where, *(outbox.c.status != s for s in NOT_SENDING))  # fixed SQL: no IN
    )


KINDS = window_kinds(send_log.c)
TICKET_KINDS = tuple(k for k in KINDS.values() if k.scope == "ticket")  # read the same rows
_SPAN = {k.seconds: timedelta(seconds=k.seconds) for k in KINDS.values()}  # made once
_SINCE = send_log.c.created_at > bindparam("since")
_AUTOMATIC = or_(*(send_log.c.kind == k for k in sorted(AUTOMATIC_KINDS)))
# per scope, what a window is read from (ticket: on the (address, ticket_id) index)
# a queue's acks: their times alone (a burst's window holds every ack of the minute, the
# held ones too, read again by every batch: no more than the times is made of them)
_QUEUE_ACKS = KINDS["acks_queue_minute"].where
_UNTIL = send_log.c.created_at <= bindparam("until")
_QUEUE_ACK_TIMES = _counted(*_QUEUE_ACKS, _SINCE, _UNTIL, columns=())
_QUEUE_ACKS_AFTER = _counted(*_QUEUE_ACKS, ~_UNTIL, columns=()).with_only_columns(func.count())
NEAR = timedelta(seconds=10)  # longer than a batch: its later counts need no new read
_ABOUT_TICKET = _counted(*KINDS["ticket_hour"].where, _SINCE)


@dataclass
class QueueWindow(Window):
    """A queue's acknowledgements: `times` those of (since, until] and the batch's own
    sends, `later` how many the database held after `until` when it was read."""

    until: datetime = datetime.max
    later: int = 0


@functools.cache
def _automatic_to(n: int) -> Any:
    """The automatic mail (the address-wide caps) sent to `n` addresses."""
    return _counted(send_log.c.address.in_(fast.in_binds(n)), _AUTOMATIC, _SINCE)


def read_history(conn: Connection, batch: BatchState, addresses: list[str], now: datetime) -> None:
    """The automatic mail sent to these addresses in the last day (what the address-wide
    caps count): one statement for all of them."""
    since = now - timedelta(seconds=DAY)
    todo = [a for a in dict.fromkeys(addresses) if a not in batch.history]
    found: dict[str, list[Sent]] = {a: [] for a in todo}
    for r in fast.rows_in(conn, _automatic_to, todo, {"since": since}):
        found[r[0]].append(Sent(*r, counted=True))
    batch.history.update((a, (since, rows)) for a, rows in found.items())


def _rows(
    conn: Connection,
    batch: BatchState,
    kind: WindowKind,
    mail: Mail,
    now: datetime,
    start: datetime,
) -> list[Sent]:
    """What a window of `kind` for `mail` (from `start`) is built from: the database's rows
    of the window and what this batch sent (not in the database before the flush)."""
    if kind.scope == "ticket":
        rows = []
        if mail.ticket_id not in batch.new_tickets:  # a ticket this batch made has no past
            params = {"address": mail.address, "ticket_id": mail.ticket_id, "since": start}
            rows = [Sent(*r, counted=True) for r in fast.rows(conn, _ABOUT_TICKET, params)]
        return rows + batch.sent_about.get((mail.address, mail.ticket_id), [])
    read = batch.history.get(mail.address)
    if read is None or start < read[0]:
        batch.history.pop(mail.address, None)
        read_history(conn, batch, [mail.address], now)  # the day: every address window
    return batch.history[mail.address][1] + batch.sent_to.get(mail.address, [])


def batch_count(
    conn: Connection, batch: BatchState, kind: WindowKind, mail: Mail, now: datetime
) -> int:
    """How many counted rows of `kind`'s window for `mail` are newer than now - window."""
    start = now - _SPAN[kind.seconds]
    key = kind.key(mail.queue, mail.address, mail.ticket_id)
    window = batch.windows.get(key)
    if window is None or start < window.since:  # never read, or the clock went back
        if kind.scope == "queue":
            return _queue_count(conn, batch, key, mail.queue, start)
        rows = _rows(conn, batch, kind, mail, now, start)
        if not rows and (kind.scope == "address" or mail.ticket_id in batch.new_tickets):
            batch.windows.pop(key, None)  # made again from the batch's lists, as cheaply
            return 0
        window = batch.windows[key] = _window(kind, rows, start)
        if kind.scope == "ticket":
            _share_ticket_rows(batch, kind, mail, rows, start)
    elif isinstance(window, QueueWindow):
        if start >= window.until:  # past the times read: the later rows are not told apart
            return _queue_count(conn, batch, key, mail.queue, start)
        return window.later + len(window.times) - bisect.bisect_right(window.times, start)
    return len(window.times) - bisect.bisect_right(window.times, start)


def _window(kind: WindowKind, rows: list[Sent], start: datetime) -> Window:
    """`kind`'s window from `start`, made of the rows it was read from."""
    times = [s.created_at for s in rows if s.counted and s.created_at > start and kind.matches(s)]
    return Window(start, sorted(times))


def _share_ticket_rows(
    batch: BatchState, read: WindowKind, mail: Mail, rows: list[Sent], start: datetime
) -> None:
    """The other ticket windows of the same length for `mail` made from the rows just read
    for `read` (a notification counts both: one statement, not two), each where a count of
    it now would read it: not kept yet, or kept from a later `since` (the clock went back)."""
    for kind in TICKET_KINDS:
        if kind is read or kind.seconds != read.seconds:
            continue
        key = kind.key(mail.queue, mail.address, mail.ticket_id)
        kept = batch.windows.get(key)
        if kept is None or start < kept.since:
            batch.windows[key] = _window(kind, rows, start)


def _queue_count(
    conn: Connection, batch: BatchState, key: tuple[Any, ...], queue: str, start: datetime
) -> int:
    """A queue's acknowledgements after `start`, read into its window: the database's rows
    (counted, matching) and the acknowledgements this batch queued."""
    params = {"queue": queue, "since": start, "until": start + NEAR}
    times = fast.scalars(conn, _QUEUE_ACK_TIMES, params)
    later = fast.scalar(conn, _QUEUE_ACKS_AFTER, params)
    kind = KINDS["acks_queue_minute"]
    times += [
        s.created_at
        for s in batch.sent
        if s.queue == queue and s.counted and s.created_at > start and kind.matches(s)
    ]
    times.sort()
    batch.windows[key] = QueueWindow(start, times, start + NEAR, later)
    return later + len(times) - bisect.bisect_right(times, start)


def note_sent(batch: BatchState, sent: list[Sent]) -> None:
    """Rows this batch logged: kept for windows read later, added to those read already."""
    batch.sent.extend(sent)
    for s in sent:
        batch.sent_to.setdefault(s.address, []).append(s)
        if s.ticket_id is not None:
            batch.sent_about.setdefault((s.address, s.ticket_id), []).append(s)
        if not s.counted:
            continue
        for kind in KINDS.values():
            if kind.scope == "ticket" and s.ticket_id is None:
                continue
            window = batch.windows.get(kind.key(s.queue, s.address, s.ticket_id))
            if window is not None and s.created_at > window.since and kind.matches(s):
                bisect.insort(window.times, s.created_at)
