"""Articles, their attachments and blobs, and the Message-IDs a ticket's thread is found by.

`add_article` is the one insert of an article: the worker's inbound mail, an agent's note,
answer or command summary, mailgate's own system notes all come through it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select

from mailgate.db.models import Article, Attachment, Blob, ThreadRef
from mailgate.parse.attachments import Attachment as ParsedAttachment
from mailgate.store import fast
from mailgate.store.batch import ON_CONN, BatchState, GivenState, current
from mailgate.store.ids import new_id
from mailgate.store.sql import insert_ignore, insert_ignore_stmt

articles: Table = Article.__table__  # type: ignore[assignment]
attachments: Table = Attachment.__table__  # type: ignore[assignment]
blobs: Table = Blob.__table__  # type: ignore[assignment]
thread_refs: Table = ThreadRef.__table__  # type: ignore[assignment]


_DUPLICATE = select(articles.c.ticket_id).where(articles.c.dedupe_key == bindparam("key"))


@functools.cache
def _duplicates(n: int) -> Any:
    c = articles.c
    return select(c.dedupe_key, c.ticket_id).where(c.dedupe_key.in_(fast.in_binds(n)))


def find_duplicate(conn: Connection, key: str, *, state: GivenState = ON_CONN) -> int | None:
    """The ticket that already holds this message (an article with its dedupe key), if any."""
    batch: BatchState | None = current(conn) if state is ON_CONN else state
    if batch is not None and (key in batch.dupes or key in batch.dupes_absent):
        return batch.dupes.get(key)
    return conn.execute(_DUPLICATE, {"key": key}).scalar()


def read_duplicates(conn: Connection, batch: BatchState, keys: list[str]) -> None:
    """Which of a batch's dedupe keys are stored already: one statement for the batch."""
    keys = [k for k in dict.fromkeys(keys) if k not in batch.dupes]
    batch.dupes.update(fast.rows_in(conn, _duplicates, keys))
    batch.dupes_absent.update(k for k in keys if k not in batch.dupes)


def put_blob(conn: Connection, sha256: str, data: bytes, *, state: GivenState = ON_CONN) -> None:
    row = {"sha256": sha256, "size": len(data), "data": data}
    batch: BatchState | None = current(conn) if state is ON_CONN else state
    if batch is None:
        insert_ignore(conn, blobs, row, count=False)
    elif sha256 not in batch.blobs:  # held to the flush; the same bytes once
        batch.blobs.add(sha256)
        batch.hold("blobs", insert_ignore_stmt(conn.dialect.name, blobs), row)


def add_thread_ref(
    conn: Connection,
    message_id: str,
    ticket_id: int,
    *,
    ours: bool = False,
    state: GivenState = ON_CONN,
) -> None:
    """A later mail referring to `message_id` belongs to this ticket.

    `ours`: a Message-ID mailgate has just made for a mail it queues (unique in the
    outbox, so queued once): a batch keeps it until its flush without asking the database
    first, as for a Message-ID it read ahead and found absent (no mail can refer to it
    before it is sent)."""
    mid = message_id[:998]
    row = {"message_id": mid, "ticket_id": ticket_id}
    batch: BatchState | None = current(conn) if state is ON_CONN else state
    if batch is not None and ours and not batch.known_ref(mid):
        batch.refs_absent.add(mid)
    if batch is None or not batch.known_ref(mid):
        insert_ignore(conn, thread_refs, row, count=False)  # unknown here: the database decides
    elif mid in batch.refs_absent:  # the first writer wins, as ON CONFLICT
        batch.refs_absent.discard(mid)
        batch.refs[mid] = ticket_id
        batch.defer(insert_ignore_stmt(conn.dialect.name, thread_refs), row)


_INSERT_ARTICLE = insert(articles).returning(articles.c.id)
_HELD_ARTICLE = insert(articles)
_ATTACH = insert(attachments)


def add_article(
    conn: Connection,
    *,
    ticket_id: int,
    kind: str,  # inbound | outbound | note | system
    body: str,
    now: datetime,
    dedupe_key: str | None = None,
    message_id: str = "",
    raw_sha256: str | None = None,
    from_addr: str = "",
    from_name: str = "",
    to: Iterable[str] = (),
    cc: Iterable[str] = (),
    subject: str = "",
    author: str = "",
    auto: bool = False,
    verdict: Mapping[str, Any] | None = None,
    defects: Iterable[str] = (),
    new_text: str = "",
    state: GivenState = ON_CONN,
) -> int:
    """Insert an article (and its Message-ID as a thread reference); its id."""
    batch: BatchState | None = current(conn) if state is ON_CONN else state
    # held to the flush with an id of the batch's (store/ids.py), the row made once
    head = {"id": new_id(conn, batch, "articles")} if batch is not None else {}
    if batch is not None and batch.index_later("articles"):
        head["search_pending"] = True
    row = {
        **head,
        "ticket_id": ticket_id,
        "kind": kind,
        "dedupe_key": dedupe_key,
        "message_id": message_id[:998],
        "raw_sha256": raw_sha256,
        "from_addr": from_addr[:320],
        "from_name": from_name[:200],
        "to_addrs": list(to),
        "cc_addrs": list(cc),
        "subject": subject,
        "body_text": body,
        "new_text": new_text,
        "author": author,
        "auto": auto,
        "verdict": dict(verdict or {}),
        "defects": list(defects),
        "created_at": now,
    }
    if batch is None:
        aid = int(fast.scalar(conn, _INSERT_ARTICLE, row))
    else:  # read back by store/repeats.py through the state
        aid = row["id"]
        batch.hold("articles", _HELD_ARTICLE, row)
        batch.articles_of.setdefault(ticket_id, []).append(row)
    if batch is not None and dedupe_key is not None:
        batch.dupes[dedupe_key] = ticket_id
        batch.dupes_absent.discard(dedupe_key)
    if message_id:
        add_thread_ref(conn, message_id, ticket_id, state=batch)
    return aid


def add_attachments(
    conn: Connection,
    article_id: int,
    parts: Iterable[ParsedAttachment],
    *,
    agent_only: bool,
    state: GivenState = ON_CONN,
) -> None:
    """Store the parts' bytes as blobs and list them on the article."""
    batch: BatchState | None = current(conn) if state is ON_CONN else state
    rows = []
    for a in parts:
        put_blob(conn, a.sha256, a.data, state=batch)
        rows.append(
            {
                "article_id": article_id,
                "blob_sha256": a.sha256,
                "filename": a.filename,
                "content_type": a.content_type[:255],
                "inline": a.inline,
                "agent_only": agent_only,
                "content_id": a.content_id[:255],
                "size": len(a.data),
            }
        )
    if batch is not None:
        for row in rows:
            batch.hold("attachments", _ATTACH, row)
    elif rows:
        conn.execute(_ATTACH, rows)


def system_article(conn: Connection, ticket_id: int, text: str, now: datetime) -> None:
    """A visible note on the ticket written by mailgate itself (e.g. a delivery failure)."""
    add_article(
        conn,
        ticket_id=ticket_id,
        kind="system",
        body=text,
        now=now,
        from_name="mailgate",
        author="mailgate",
        auto=True,
    )
