"""One optimistic batch's reads ahead and deferred writes, kept on the batch's connection.

The worker opens a `BatchState` for the transaction of an optimistic batch
(pipeline/worker.py). The batch's duplicate keys, thread references and auto-response
times are then read with one statement each for the whole batch, and the writes nobody
reads back inside the transaction except through this state (thread references, audit
events, the auto-response log) are kept here and written with one executemany per
statement just before the commit. What the batch writes is recorded here too, so a
follow-up of a ticket created earlier in the same batch is threaded exactly.

On SQLite the batch's new articles and tickets are indexed for full-text search at the
flush too, one INSERT ... SELECT per table (`index_later`, db/models_search.py).

The batch's own new rows (tickets and their queues, CCs, tags, links and rule hits; blobs,
articles, attachments, outbox rows) and the follow-ups' ticket updates are held back too
(`hold`) and written at the flush, parents first, one executemany per statement; their
ids are the batch's (store/ids.py). The reads the worker runs for every message see them
through this state (`tickets`, `articles_of`); any other statement on one of those tables
(`live`) first writes them (`fast.BEFORE`). After a write the state then forgets what it
knew of them, so the rest reads the database as before; after a SELECT (or for the
waiting notifications) it keeps what it knows of the batch's tickets, since nothing but
the held rows went in.

The notifications of the batch's customer mails wait here too (`Notices`,
agents/notifications.py): they are queued when the held rows are next written, which
happens before any statement on a table they read (those tables are `live` while one
waits), before a later mail of the batch is stored on one of their tickets or for one of
their requesters (`settle_before_storing`), and at the flush. So each reads its ticket
exactly as its own mail left it, and the batch's rows stay held with agents notified.

A batch redone with a SAVEPOINT per message runs without a state (every read and write
goes straight to the database), because a message rolled back alone must not leave its
writes in here.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import Connection, TextClause, text

from mailgate.db.models_search import FULL_TEXT_COLUMNS
from mailgate.store import fast

_KEY = "mailgate.batch"


@dataclass(frozen=True)
class Sent:
    """One recipient line of send_log the batch wrote (store/send_windows.py)."""

    address: str
    ticket_id: int | None
    queue: str
    kind: str
    created_at: datetime
    counted: bool  # False: queued held, which counts against no cap


@dataclass
class Window:
    """A governor count's rows, read once in the batch (store/send_windows.py)."""

    since: datetime  # rows at or before this were not read
    times: list[datetime]  # created_at of the counted rows after `since`, sorted


@dataclass
class TicketState:
    """A ticket's thread facts as the database holds them once the batch is flushed."""

    requester: str
    status: str
    queue: str
    closed_at: datetime | None
    ccs: set[str]


@dataclass
class RecentInbound:
    """A ticket's latest inbound texts by sender since `since`, read ahead for the batch's
    loop breaker (store/repeats.py)."""

    since: datetime
    by_sender: dict[str, list[tuple[datetime, str]]]  # (created_at, body), newest first


@dataclass
class Notices:
    """Notifications waiting for the batch's held rows to be written, in the order their
    mails came (each item is what `settle` needs to queue one)."""

    settle: Callable[[Connection, list[Any]], None]
    pending: list[Any] = field(default_factory=list)
    tickets: set[int] = field(default_factory=set)
    requesters: set[str] = field(default_factory=set)  # lower case


# what a waiting notification reads: a statement on one of them first queues it
NOTICE_READS = frozenset(
    {"tickets", "ticket_queues", "ticket_ccs", "ticket_tags", "articles", "attachments", "blobs"}
)

# held rows are written in this order: a parent before the rows that point at it
PARENTS_FIRST = (
    "tickets", "ticket_queues", "ticket_ccs", "ticket_tags", "ticket_links", "ticket_rule_hits",
    "blobs", "articles", "attachments", "outbox",
)  # fmt: skip


@dataclass
class BatchState:
    # Message-ID -> ticket, as the database holds it once the deferred writes are flushed
    refs: dict[str, int] = field(default_factory=dict)
    refs_absent: set[str] = field(default_factory=set)  # not in the database, nor written
    dupes: dict[str, int] = field(default_factory=dict)  # dedupe key -> its ticket
    dupes_absent: set[str] = field(default_factory=set)
    # (queue, sender) -> last auto-response (None: never), for the senders read ahead
    autoresponses: dict[tuple[str, str], datetime | None] = field(default_factory=dict)
    senders_read: set[str] = field(default_factory=set)
    # address -> paused_until of a failing address (absent: not paused), for those read
    pauses: dict[str, datetime | None] = field(default_factory=dict)
    pauses_read: set[str] = field(default_factory=set)
    deferred: dict[Any, list[dict[str, Any]]] = field(default_factory=dict)  # stmt -> rows
    windows: dict[tuple[Any, ...], Window] = field(default_factory=dict)  # (count, *key)
    sent: list[Sent] = field(default_factory=list)  # send_log lines this batch wrote
    sent_to: dict[str, list[Sent]] = field(default_factory=dict)  # the same, by address
    sent_about: dict[tuple[str, int], list[Sent]] = field(default_factory=dict)  # and ticket
    new_tickets: set[int] = field(default_factory=set)  # created in this batch: no history
    # address -> (since, the automatic mail send_log held for it after `since` when read)
    history: dict[str, tuple[datetime, list[Sent]]] = field(default_factory=dict)
    statements: int = 0  # how many statements the flush ran (for the bench)
    full_text_later: bool = False  # SQLite: inserted rows are indexed by the flush
    to_index: set[str] = field(default_factory=set)  # tables with rows waiting for it
    size: int = 64  # messages in the batch: PostgreSQL takes ids in blocks of it
    held: dict[str, dict[Any, list[dict[str, Any]]]] = field(default_factory=dict)
    live: set[str] = field(default_factory=set)  # tables with rows held or ids counted here
    next_ids: dict[str, int] = field(default_factory=dict)  # SQLite: table -> its next id
    free_ids: dict[str, list[int]] = field(default_factory=dict)  # PostgreSQL: taken, unused
    tickets: dict[int, TicketState] = field(default_factory=dict)  # with rows held
    new_rows: dict[int, dict[str, Any]] = field(default_factory=dict)  # their held INSERTs
    read_facts: dict[int, TicketState] = field(default_factory=dict)  # read from the database
    articles_of: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # held, by ticket
    outbox_ids: set[str] = field(default_factory=set)  # Message-IDs of the held outbox rows
    blobs: set[str] = field(default_factory=set)  # held
    # read ahead for the batch's follow-ups (Pipeline.read_ahead); their tables are in
    # `live` then, so any other statement on them writes the held rows and forgets these
    facts_ahead: dict[int, TicketState | None] = field(default_factory=dict)  # None: no ticket
    recent_ahead: dict[int, RecentInbound] = field(default_factory=dict)  # by ticket
    notices: Notices | None = None  # notifications queued when the held rows are written

    def hold(self, table: str, stmt: Any, row: dict[str, Any]) -> None:
        """A row written at the flush (or before a statement on its table)."""
        self.held.setdefault(table, {}).setdefault(stmt, []).append(row)
        self.live.add(table)

    def tracked(self, ticket_id: int) -> TicketState | None:
        """The state of a ticket that may get rows held: created in the batch, or its facts
        read in it (then they are kept here from now on)."""
        found = self.tickets.get(ticket_id)
        if found is None and ticket_id in self.read_facts:
            read = self.read_facts[ticket_id]
            found = self.tickets[ticket_id] = TicketState(
                read.requester, read.status, read.queue, read.closed_at, set(read.ccs)
            )
        return found

    def defer(self, stmt: Any, row: dict[str, Any]) -> None:
        self.deferred.setdefault(stmt, []).append(row)

    def hold_notice(
        self,
        settle: Callable[[Connection, list[Any]], None],
        item: Any,
        ticket_id: int,
        requester: str,
    ) -> None:
        """A notification about `ticket_id` (of `requester`) queued by `settle` when the
        held rows are next written."""
        if self.notices is None:
            self.notices = Notices(settle)
        self.notices.pending.append(item)
        self.notices.tickets.add(ticket_id)
        self.notices.requesters.add(requester.lower())
        self.live.update(NOTICE_READS)

    def requester_of(self, ticket_id: int) -> str | None:
        """The requester of a ticket the state knows the facts of (None: not known)."""
        for known in (self.tickets, self.read_facts, self.facts_ahead):
            found = known.get(ticket_id)
            if found is not None:
                return found.requester
        return None

    def known_ref(self, message_id: str) -> bool:
        return message_id in self.refs or message_id in self.refs_absent

    def index_later(self, table: str) -> bool:
        """Whether a row inserted into `table` now (articles, tickets) is left to the
        flush to index for full-text search: its `search_pending` value."""
        if self.full_text_later:
            self.to_index.add(table)
        return self.full_text_later


@functools.cache
def _index_statements(table: str) -> tuple[TextClause, TextClause]:
    """`_index_pending`'s two statements for `table`, built once (store/fast.py plans them
    once and runs them on the DBAPI cursor)."""
    fts, columns = FULL_TEXT_COLUMNS[table]
    cols = ", ".join(columns)
    return (
        text(
            f"INSERT INTO {fts}(rowid, {cols}) SELECT id, {cols} FROM {table} WHERE search_pending"
        ),
        text(f"UPDATE {table} SET search_pending = 0 WHERE search_pending"),
    )


def _index_pending(conn: Connection, table: str) -> None:
    """The table's pending rows into its full-text index, then no longer pending (on the
    partial index of the pending rows: the batch's, never older ones)."""
    for stmt in _index_statements(table):
        fast.run(conn, stmt, {})


def write_held(
    conn: Connection, state: BatchState, count_again: bool = True, keep: bool = False
) -> None:
    """The held rows, parents first (PRAGMA foreign_keys=ON on SQLite): one executemany per
    statement, in the order held; then the waiting notifications are queued (their outbox
    rows written too). `count_again`: SQLite's ids are read again (what runs next may
    insert). Afterwards the state knows nothing more of the rows, unless `keep`: nothing
    but the held rows went in, so what it knows of the batch's tickets is still so."""
    notices, state.notices = state.notices, None
    _write_rows(conn, state, count_again, keep)
    if notices is not None:
        notices.settle(conn, notices.pending)
        _write_rows(conn, state, count_again, keep)


def _write_rows(conn: Connection, state: BatchState, count_again: bool, keep: bool) -> None:
    for table in PARENTS_FIRST:
        for stmt, rows in state.held.pop(table, {}).items():
            fast.run_many(conn, stmt, rows)
            state.statements += 1
    assert not state.held, f"held rows of an unordered table: {sorted(state.held)}"
    if keep:
        state.new_rows.clear()  # their INSERTs went in: a change of one is an UPDATE now
        state.articles_of.clear()  # stored now, where a read finds them; and the texts
        state.recent_ahead.clear()  # read ahead before them are read again
        # `live` stays: a write elsewhere on these tables still makes the state forget
        return
    state.live.clear()
    for known in (state.tickets, state.new_rows, state.read_facts, state.articles_of):
        known.clear()
    state.facts_ahead.clear()
    state.recent_ahead.clear()
    state.outbox_ids.clear()
    state.blobs.clear()
    if count_again:
        state.next_ids.clear()
    elif state.next_ids:  # ids still counted here: a statement on their tables waits on us
        state.live.update(state.next_ids)


def settle_before_storing(
    conn: Connection,
    state: BatchState,
    ticket_id: int | None,
    requesters: tuple[str, ...] | None,
) -> None:
    """Before a mail is stored on `ticket_id` (None: a new ticket), changing the tickets
    of `requesters` (None: not known): the waiting notifications about that ticket or
    those requesters' tickets read them as their own mails left them, so the held rows
    are written and they are queued first (the state keeps what it knows: nothing else
    was written)."""
    n = state.notices
    if n is None:
        return
    if (
        ticket_id in n.tickets
        or requesters is None
        or any(r.lower() in n.requesters for r in requesters)
    ):
        write_held(conn, state, count_again=False, keep=True)


def _before(conn: Connection, tables: frozenset[str] | None, writes: bool) -> None:
    """Before a statement that does not see the held rows, on a table the state knows
    of: a write makes it write them and forget what it knows; a SELECT, which changes
    nothing and inserts nothing, has the held rows of its tables written (and the
    waiting notifications queued), the state keeping what it knows and SQLite's count
    of ids as it is."""
    state = current(conn)
    if state is None or not state.live:
        return
    if tables is not None and tables.isdisjoint(state.live):
        return
    if writes:
        write_held(conn, state)
    elif tables is None or not tables.isdisjoint(state.held) or state.notices is not None:
        write_held(conn, state, count_again=False, keep=True)


def current(conn: Connection) -> BatchState | None:
    """The state of the batch running on `conn`, if it runs optimistically."""
    return conn.info.get(_KEY)


class _OnConn(enum.Enum):
    ON_CONN = "on_conn"


# a writer's `state` argument when its caller has not looked the batch's state up: the
# writer does (`store.apply` looks it up once and passes it to each writer it calls)
ON_CONN: Final = _OnConn.ON_CONN
# what a writer's `state` may be: the batch's state, None (no batch), or ON_CONN
GivenState = BatchState | None | Literal[_OnConn.ON_CONN]


@contextmanager
def batch_state(conn: Connection) -> Iterator[BatchState]:
    """Keep a BatchState on `conn` for the block (the caller flushes it before commit)."""
    state = BatchState(full_text_later=conn.dialect.name == "sqlite")
    conn.info[_KEY] = state
    conn.info[fast.BEFORE] = _before
    conn.info[fast.LIVE] = state.live  # the same set: fast asks only while it is not empty
    try:
        with fast.pipelined(conn):  # PostgreSQL: writes go with the next statement
            yield state
    finally:
        conn.info.pop(_KEY, None)  # conn.info outlives the transaction (pooled connection)
        conn.info.pop(fast.BEFORE, None)
        conn.info.pop(fast.LIVE, None)


def flush(conn: Connection, state: BatchState) -> None:
    """Write the held and deferred rows: one executemany per statement, in first-deferred
    order (on the DBAPI cursor, compiled once: store/fast.py; on PostgreSQL all in one
    round trip)."""
    if state.notices is not None:  # their reads go before the writes sent together
        write_held(conn, state)
    with fast.writes_together(conn):  # PostgreSQL: one round trip for all of them
        write_held(conn, state)  # the parents of the deferred rows
        for stmt, rows in state.deferred.items():
            fast.run_many(conn, stmt, rows)
            state.statements += 1
    state.deferred.clear()
    for table in sorted(state.to_index):
        _index_pending(conn, table)
        state.statements += 2
    state.to_index.clear()
    state.sent.clear()  # in the database now: a window read later finds them there
    state.sent_to.clear()
    state.sent_about.clear()
    state.new_tickets.clear()  # their sends are in the database now
    state.history.clear()
