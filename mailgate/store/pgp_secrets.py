"""Decrypted PGP content, stored apart from the customer-visible article (docs/pgp.md).

`pgp_secrets` holds one row per encrypted part of an inbound message, in message order:
what it was (inline block, PGP/MIME body, encrypted attachment), whether it was decrypted,
the decrypted text or the reason it was not, the ciphertext's blob, and the signature that
covered it. Decrypted attachments are ordinary attachments of the article with
``agent_only = True``. A part that could not be decrypted keeps its ciphertext as a
visible attachment (it is ciphertext) and the agents get a system note on the ticket.

A ciphertext that already came in from another sender is not stored decrypted again: a
forwarded or replayed encrypted message gets "replayed" instead of the plaintext, so the
original sender's secret never joins the replayer's ticket.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from mailgate.db.models import pgp_secrets
from mailgate.pgp.armor import SECURED, packet_digest
from mailgate.pgp.results import DecryptedPart, Opened
from mailgate.pgp.verdicts import overall_signature, short_verdict, signature_dict
from mailgate.store.articles import articles, attachments, put_blob, system_article
from mailgate.store.audit import audit
from mailgate.store.tickets import Applied

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Saved:
    secret_ids: tuple[int, ...]
    decrypted: int
    failed: int


@dataclass(frozen=True)
class _Article:
    """The article the parts belong to, and the blobs already attached to it."""

    ticket_id: int
    article_id: int
    raw_sha: str | None
    attached: set[str]


def _cipher_name(part: DecryptedPart, seq: int) -> str:
    if part.source_name:
        return part.source_name
    armored = part.ciphertext.lstrip().startswith(b"-----BEGIN")
    return f"encrypted-{seq}.asc" if armored else f"encrypted-{seq}.pgp"


def _describe_part(part: DecryptedPart, seq: int, kept: str) -> str:
    where = {
        "inline": "encrypted text block",
        "pgp-mime": "PGP/MIME encrypted body",
        "attachment": f"encrypted attachment {part.source_name or '(unnamed)'}",
        "message": "whole message",
    }.get(part.kind, part.kind)
    if part.ok:
        extra = f", {len(part.attachments)} file(s)" if part.attachments else ""
        signed = f", {short_verdict(signature_dict(part.signature))}" if part.signature else ""
        return f"  {seq}. {where}: decrypted (agent-only{extra}){signed}"
    line = f"  {seq}. {where}: NOT decrypted: {part.reason}"
    return line + (f"; the encrypted data is kept as attachment {kept}" if kept else "")


def _replayed_from(conn: Connection, digest: str, sender: str) -> tuple[int, str] | None:
    """(ticket, sender) of an earlier arrival of this ciphertext from someone else."""
    row = conn.execute(
        select(pgp_secrets.c.ticket_id, pgp_secrets.c.sender)
        .where(pgp_secrets.c.packet_sha256 == digest, pgp_secrets.c.sender != sender)
        .order_by(pgp_secrets.c.id)
        .limit(1)
    ).first()
    return (row.ticket_id, row.sender) if row is not None else None


def _as_stored(
    conn: Connection, part: DecryptedPart, digest: str | None, sender: str, ticket_id: int
) -> DecryptedPart:
    """The part as stored: a replayed ciphertext turns an ok part into a failure."""
    earlier = _replayed_from(conn, digest, sender) if part.ok and digest is not None else None
    if earlier is None:
        return part
    log.warning("ticket #%d: replayed ciphertext (first on #%d)", ticket_id, earlier[0])
    reason = (
        f"replayed: this ciphertext came in before from {earlier[1]} "
        f"(ticket #{earlier[0]}); not decrypted for {sender or 'this sender'}"
    )
    return dataclasses.replace(part, ok=False, text="", attachments=(), reason=reason)


def _attach(
    conn: Connection, article_id: int, sha: str, name: str, ctype: str, agent_only: bool
) -> None:
    conn.execute(
        insert(attachments),
        {
            "article_id": article_id,
            "blob_sha256": sha,
            "filename": name[:255],
            "content_type": ctype[:255],
            "inline": False,
            "agent_only": agent_only,
        },
    )


def _save_part(
    conn: Connection,
    article: _Article,
    queue: str,
    seq: int,
    part: DecryptedPart,
    sender: str,
    now: datetime,
) -> tuple[int, DecryptedPart, str]:
    """(secret id, the part as stored, where its ciphertext is kept) for one part."""
    sha = hashlib.sha256(part.ciphertext).hexdigest() if part.ciphertext else None
    if sha is not None:
        put_blob(conn, sha, part.ciphertext)
    digest = packet_digest(part.ciphertext) if part.ciphertext else None
    stored = _as_stored(conn, part, digest, sender, article.ticket_id)
    meta: list[dict[str, Any]] = []
    for name, ctype, data in stored.attachments:
        fsha = hashlib.sha256(data).hexdigest()
        put_blob(conn, fsha, data)
        _attach(conn, article.article_id, fsha, name, ctype, True)
        meta.append({"filename": name, "content_type": ctype, "sha256": fsha, "size": len(data)})
    kept = ""
    if not stored.ok and sha is not None and sha != article.raw_sha:
        kept = _cipher_name(part, seq)
        if sha not in article.attached:  # an encrypted attachment is already there as sent
            _attach(conn, article.article_id, sha, kept, "application/pgp-encrypted", False)
            article.attached.add(sha)
    elif not stored.ok:
        kept = "(the raw message)"
    sid = conn.execute(
        insert(pgp_secrets).returning(pgp_secrets.c.id),
        {
            "ticket_id": article.ticket_id,
            "article_id": article.article_id,
            "seq": seq,
            "queue": queue,
            "sender": sender[:320],
            "kind": part.kind[:16],
            "ok": stored.ok,
            "text": stored.text,
            "reason": stored.reason,
            "source_name": part.source_name[:255],
            "ciphertext_sha256": sha,
            "packet_sha256": digest,
            "attachments": meta,
            "signature": signature_dict(part.signature),
            "created_at": now,
        },
    ).scalar_one()
    return sid, stored, kept


def _record_verdict(
    conn: Connection, article_id: int, opened: Opened, decrypted: int, failed: int
) -> tuple[dict[str, Any] | None, list[Any]]:
    """The signatures and counts on the article's verdict; (whole, partial) signatures."""
    result = opened.result
    whole = signature_dict(result.signature)
    partial = [signature_dict(s) for s in result.partial_signatures]
    verdict = dict(
        conn.execute(select(articles.c.verdict).where(articles.c.id == article_id)).scalar() or {}
    )
    verdict["signature"] = whole
    if partial:
        verdict["partial_signatures"] = partial
    verdict["pgp"] = {
        "queue": opened.queue,
        "parts": len(result.secrets),
        "decrypted": decrypted,
        "failed": failed,
        "ms": round(opened.seconds * 1000, 1),
    }
    conn.execute(update(articles).where(articles.c.id == article_id).values(verdict=verdict))
    return whole, partial


def save(
    conn: Connection,
    opened: Opened | None,
    applied: Applied,
    sender: str,
    now: datetime,
) -> Saved | None:
    """Store what the crypto stage found for the article `applied` just wrote.

    The worker calls this right after store.tickets.apply, in the same transaction, so the system
    note (failures) is in the history the agent notification shows. No-op for messages
    without PGP and for duplicates.
    """
    if opened is None or applied.article_id is None:
        return None
    aid, tid = applied.article_id, applied.ticket_id
    sender = sender.lower()
    raw_sha = conn.execute(select(articles.c.raw_sha256).where(articles.c.id == aid)).scalar()
    attached = conn.execute(
        select(attachments.c.blob_sha256).where(attachments.c.article_id == aid)
    ).scalars()
    article = _Article(tid, aid, raw_sha, set(attached.all()))
    ids: list[int] = []
    lines: list[str] = []
    decrypted = failed = 0
    secrets = opened.result.secrets
    for seq, part in enumerate(secrets, 1):
        sid, stored, kept = _save_part(conn, article, opened.queue, seq, part, sender, now)
        ids.append(sid)
        lines.append(_describe_part(stored, seq, kept))
        decrypted += stored.ok
        failed += not stored.ok
    whole, partial = _record_verdict(conn, aid, opened, decrypted, failed)
    if secrets:
        head = (
            f"PGP: the message from {sender or 'the sender'} held {len(secrets)} "
            f"encrypted part(s); the customer-visible text shows {SECURED} in their place."
        )
        how = (
            f"Decrypted content is agent-only: `mailgate tickets show {tid} --secrets`, "
            f"or `#secret {tid}` by mail (encrypted to your key)."
        )
        sig = overall_signature(whole, partial)
        system_article(conn, tid, "\n".join([head, *lines, sig, how]), now)
    audit(
        conn,
        tid,
        "mailgate",
        "pgp-opened",
        now,
        article=aid,
        decrypted=decrypted,
        failed=failed,
        signature=None if whole is None else whole["valid"],
    )
    return Saved(tuple(ids), decrypted, failed)
