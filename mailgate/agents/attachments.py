"""Customers' attachments for agents: which a notification lists and carries, and the
lookups behind `#attachment N` and `mailgate attachments`.

A notification lists every attachment of the customer's mail (number, name, type, size)
and carries them, in order, while their total stays within the queue's
`[agent_mail] attachments_max_bytes` (default 10 MiB); the rest are fetched one at a
time with `#attachment N`. Decrypted PGP attachments are agent-only and never carried
in clear (`#secret` sends them encrypted): "PGP plaintext is agent-only".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import NoResultFound

from mailgate.db.models import Article, Attachment, Blob
from mailgate.outgoing.compose import OutAttachment
from mailgate.parse.attachments import Attachment as ParsedAttachment
from mailgate.parse.filenames import safe_filename
from mailgate.store import fast

# parts of an agent's mail that are its signature or encryption, never the customer's files
_NOT_FILES = frozenset(
    {"application/pgp-signature", "application/pgp-encrypted", "application/pkcs7-signature"}
)

_attachments = Attachment.__table__
_articles = Article.__table__
_blobs = Blob.__table__


@dataclass(frozen=True)
class StoredAttachment:
    id: int
    ticket_id: int
    article_id: int
    filename: str
    content_type: str
    size: int
    inline: bool
    content_id: str
    agent_only: bool
    blob_sha256: str


_SELECT = select(
    _attachments.c.id,
    _articles.c.ticket_id,
    _attachments.c.article_id,
    _attachments.c.filename,
    _attachments.c.content_type,
    _attachments.c.size,
    _attachments.c.inline,
    _attachments.c.content_id,
    _attachments.c.agent_only,
    _attachments.c.blob_sha256,
).join(_articles, _articles.c.id == _attachments.c.article_id)


def _rows(conn: Connection, condition) -> list[StoredAttachment]:  # type: ignore[no-untyped-def]
    rows = conn.execute(_SELECT.where(condition).order_by(_attachments.c.id)).all()
    return [StoredAttachment(*r) for r in rows]


_OF_ARTICLE = _SELECT.where(_attachments.c.article_id == bindparam("aid")).order_by(
    _attachments.c.id
)  # built once: every notification of a customer mail asks


def of_article(conn: Connection, article_id: int) -> list[StoredAttachment]:
    return stored(fast.rows(conn, *of_article_read(article_id)))


def of_article_read(article_id: int) -> tuple[Any, dict[str, int]]:
    """`of_article`'s statement and parameters (to send with other reads: store/read_together)."""
    return _OF_ARTICLE, {"aid": article_id}


def stored(rows: Iterable[tuple[Any, ...]]) -> list[StoredAttachment]:
    return [StoredAttachment(*r) for r in rows]


def of_ticket(conn: Connection, ticket_id: int) -> list[StoredAttachment]:
    return _rows(conn, _articles.c.ticket_id == ticket_id)


def by_id(conn: Connection, attachment_id: int) -> StoredAttachment | None:
    found = _rows(conn, _attachments.c.id == attachment_id)
    return found[0] if found else None


_DATA = select(_blobs.c.data).where(_blobs.c.sha256 == bindparam("sha"))  # built once


def data(conn: Connection, a: StoredAttachment) -> bytes:
    found = fast.rows(conn, _DATA, {"sha": a.blob_sha256})
    if not found:  # as `scalar_one` raises it
        raise NoResultFound("No row was found when one was required")
    return found[0][0]


def out(conn: Connection, a: StoredAttachment) -> OutAttachment:
    return OutAttachment(a.filename, a.content_type, data(conn, a), a.content_id, a.inline)


def carried(items: list[StoredAttachment], cap: int) -> list[StoredAttachment]:
    """The attachments a notification carries: in order, while the total fits the cap."""
    kept, total = [], 0
    for a in items:
        if a.agent_only or total + a.size > cap:
            continue
        kept.append(a)
        total += a.size
    return kept


def of_answer(parts: tuple[ParsedAttachment, ...]) -> tuple[ParsedAttachment, ...]:
    """The files of an agent's answer that go to the customer: names sanitised again
    (`safe_filename`), signature and encryption parts left out."""
    return tuple(
        ParsedAttachment(
            safe_filename(a.filename), a.content_type, a.data, a.sha256, a.content_id, a.inline
        )
        for a in parts
        if a.content_type.lower() not in _NOT_FILES
    )


def outgoing(parts: tuple[ParsedAttachment, ...]) -> tuple[OutAttachment, ...]:
    return tuple(
        OutAttachment(a.filename, a.content_type, a.data, a.content_id, a.inline) for a in parts
    )


def without_quoted_images(
    parts: tuple[ParsedAttachment, ...], shown: set[str], quoted: set[str]
) -> tuple[ParsedAttachment, ...]:
    """An HTML answer's files without the images only its quoted part showed (`quoted`
    minus `shown`, Content-IDs): the notification's own images, quoted back by the client."""
    return tuple(a for a in parts if a.content_id.strip("<>") not in quoted - shown)


def answer_problem(parts: tuple[ParsedAttachment, ...], cap: int) -> str:
    """Why an answer's attachments may not go out, or ""."""
    total = sum(len(a.data) for a in parts)
    if total > cap:
        return (
            f"the attachments are {human_size(total)} in all, over this queue's cap of "
            f"{human_size(cap)}: nothing was sent (send fewer or smaller files)"
        )
    return ""


def human_size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"


def listing(items: list[StoredAttachment], carried_ids: set[int]) -> str:
    """The attachments section of a notification."""
    if not items:
        return ""
    lines = ["Attachments:"]
    for a in items:
        how = (
            "attached"
            if a.id in carried_ids
            else "encrypted: #secret " + str(a.ticket_id)
            if a.agent_only
            else f"not attached (over the size cap): reply #attachment {a.id}"
        )
        inline = ", inline" if a.inline else ""
        lines.append(
            f"  [{a.id}] {a.filename} ({a.content_type}, {human_size(a.size)}{inline}) - {how}"
        )
    return "\n".join(lines)
