"""Decrypted PGP content, stored apart from the customer-visible article (design invariant 7).

`pgp_secrets` (migration 0004) holds one row per encrypted part of an inbound message, in
message order: what it was (inline block, PGP/MIME body, encrypted attachment), whether it
was decrypted, the decrypted text or the reason it was not, the ciphertext's blob, and the
signature that covered it. Decrypted attachments are ordinary attachments of the article
with ``agent_only = True``. A part that could not be decrypted keeps its ciphertext as a
visible attachment (it is ciphertext) and the agents get a system note on the ticket.

Agents see the plaintext only on request, and every request is audited:
`mailgate tickets show ID --secrets` (views.print_ticket) and the mail command `#secret ID`
(`secret_for_agent`: encrypted to the agent's registered key; in clear only if the queue
allows it).

A ciphertext that already came in from another sender is not stored decrypted again: a
forwarded or replayed encrypted message gets "replayed" instead of the plaintext, so the
original sender's secret never joins the replayer's ticket.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from typing import Any

from sqlalchemy import (
    Connection,
    insert,
    select,
    update,
)

from mailgate.agents.access import can_see
from mailgate.config.model import Config
from mailgate.config.schema import Agent
from mailgate.db.models import pgp_secrets
from mailgate.outgoing.compose import LOOP_HEADER, Outgoing, header_text, stable_message_id
from mailgate.pgp import crypto
from mailgate.pgp import stage as pgp_stage
from mailgate.store import tickets as store
from mailgate.store.tickets import Applied

log = logging.getLogger(__name__)


articles = store.articles
attachments = store.attachments
tickets = store.tickets


# --------------------------------------------------------------------------- pure helpers


def signature_dict(sig: crypto.SignatureCheck | None) -> dict[str, Any] | None:
    if sig is None:
        return None
    return {
        "valid": sig.valid,
        "fingerprint": sig.fingerprint,
        "signer_emails": list(sig.signer_emails),
        "matches_from": sig.matches_from,
        "reason": sig.reason,
    }


def signature_text(sig: dict[str, Any] | None) -> str:
    """One line for people: `valid, key F00..., signer a@b, matches From`."""
    if not sig:
        return "none"
    who = ", ".join(sig.get("signer_emails") or []) or "unknown signer"
    key = sig.get("fingerprint") or "?"
    if not sig.get("valid"):
        return f"NOT VALID ({sig.get('reason') or 'unknown reason'}), key {key}"
    match = "matches From" if sig.get("matches_from") else "DOES NOT match From"
    return f"valid, key {key} ({who}), {match}"


def _short_verdict(sig: dict[str, Any] | None) -> str:
    """For agent notifications (sent in clear): validity only, no identity from inside."""
    if not sig:
        return "not signed"
    if not sig.get("valid"):
        return "signature NOT valid"
    return "validly signed, " + ("matches From" if sig.get("matches_from") else "NOT by From")


def _overall_signature(whole: dict[str, Any] | None, partial: list[Any]) -> str:
    if whole is not None:
        return f"Signature over the whole message: {_short_verdict(whole)}."
    if partial:
        valid = sum(1 for p in partial if p and p.get("valid"))
        return (
            f"No signature over the whole message; {len(partial)} over a part of it "
            f"({valid} valid)."
        )
    return "Not signed."


def verdict_signature_lines(verdict: dict[str, Any]) -> list[str]:
    """`tickets show`: the signature results stored on an article (none if not checked)."""
    if "signature" not in verdict:
        return []
    out = ["PGP signature (whole message): " + signature_text(verdict.get("signature"))]
    for sig in verdict.get("partial_signatures") or []:
        out.append("PGP signature (part of it): " + signature_text(sig))
    return out


def _cipher_name(part: crypto.DecryptedPart, seq: int) -> str:
    if part.source_name:
        return part.source_name
    armored = part.ciphertext.lstrip().startswith(b"-----BEGIN")
    return f"encrypted-{seq}.asc" if armored else f"encrypted-{seq}.pgp"


def _describe_part(part: crypto.DecryptedPart, seq: int, kept: str) -> str:
    where = {
        "inline": "encrypted text block",
        "pgp-mime": "PGP/MIME encrypted body",
        "attachment": f"encrypted attachment {part.source_name or '(unnamed)'}",
        "message": "whole message",
    }.get(part.kind, part.kind)
    if part.ok:
        extra = f", {len(part.attachments)} file(s)" if part.attachments else ""
        signed = f", {_short_verdict(signature_dict(part.signature))}" if part.signature else ""
        return f"  {seq}. {where}: decrypted (agent-only{extra}){signed}"
    line = f"  {seq}. {where}: NOT decrypted: {part.reason}"
    return line + (f"; the encrypted data is kept as attachment {kept}" if kept else "")


# --------------------------------------------------------------------------- writes


@dataclass(frozen=True)
class Saved:
    secret_ids: tuple[int, ...]
    decrypted: int
    failed: int


_ARMOR_LINE = re.compile(
    r"^(-----(BEGIN|END) PGP [A-Z ,/0-9]+-----|[A-Za-z-]+: .*|=[A-Za-z0-9+/]{4})$"
)


def packet_digest(ciphertext: bytes) -> str:
    """sha256 of the OpenPGP packets: the same for any armor wrapping, quoting or line ends."""
    if b"-----BEGIN PGP" in ciphertext[:200]:
        lines = [ln.strip(" \t>") for ln in ciphertext.decode("latin-1").splitlines()]
        b64 = "".join(ln for ln in lines if ln and not _ARMOR_LINE.match(ln))
        try:
            data = base64.b64decode(b64 + "=" * (-len(b64) % 4))
        except (binascii.Error, ValueError):
            data = re.sub(rb"\s+", b"", ciphertext)
    else:
        data = ciphertext
    return hashlib.sha256(data).hexdigest()


def _replayed_from(conn: Connection, digest: str, sender: str) -> tuple[int, str] | None:
    """(ticket, sender) of an earlier arrival of this ciphertext from someone else."""
    row = conn.execute(
        select(pgp_secrets.c.ticket_id, pgp_secrets.c.sender)
        .where(pgp_secrets.c.packet_sha256 == digest, pgp_secrets.c.sender != sender)
        .order_by(pgp_secrets.c.id)
        .limit(1)
    ).first()
    return (row.ticket_id, row.sender) if row is not None else None


def save(
    conn: Connection,
    opened: pgp_stage.Opened | None,
    applied: Applied,
    sender: str,
    now: datetime,
) -> Saved | None:
    """Store what the crypto stage found for the article `applied` just wrote.

    The worker calls this right after store.apply, in the same transaction, so the system
    note (failures) is in the history the agent notification shows. No-op for messages
    without PGP and for duplicates.
    """
    if opened is None or applied.article_id is None:
        return None
    result = opened.result
    aid, tid = applied.article_id, applied.ticket_id
    sender = sender.lower()
    raw_sha = conn.execute(select(articles.c.raw_sha256).where(articles.c.id == aid)).scalar()
    kept_shas = set(
        conn.execute(select(attachments.c.blob_sha256).where(attachments.c.article_id == aid))
        .scalars()
        .all()
    )
    ids: list[int] = []
    lines: list[str] = []
    decrypted = failed = 0
    for seq, part in enumerate(result.secrets, 1):
        sha = hashlib.sha256(part.ciphertext).hexdigest() if part.ciphertext else None
        if sha is not None:
            store.put_blob(conn, sha, part.ciphertext)
        ok, text, reason, files = part.ok, part.text, part.reason, part.attachments
        digest = packet_digest(part.ciphertext) if part.ciphertext else None
        if ok and digest is not None:
            earlier = _replayed_from(conn, digest, sender)
            if earlier is not None:
                ok, text, files = False, "", ()
                reason = (
                    f"replayed: this ciphertext came in before from {earlier[1]} "
                    f"(ticket #{earlier[0]}); not decrypted for {sender or 'this sender'}"
                )
                log.warning("ticket #%d: replayed ciphertext (first on #%d)", tid, earlier[0])
        meta: list[dict[str, Any]] = []
        for name, ctype, data in files:
            fsha = hashlib.sha256(data).hexdigest()
            store.put_blob(conn, fsha, data)
            conn.execute(
                insert(attachments),
                {
                    "article_id": aid,
                    "blob_sha256": fsha,
                    "filename": name[:255],
                    "content_type": ctype[:255],
                    "inline": False,
                    "agent_only": True,
                },
            )
            meta.append(
                {"filename": name, "content_type": ctype, "sha256": fsha, "size": len(data)}
            )
        kept = ""
        if not ok and sha is not None and sha != raw_sha:
            kept = _cipher_name(part, seq)
            if sha not in kept_shas:  # an encrypted attachment is already there as sent
                conn.execute(
                    insert(attachments),
                    {
                        "article_id": aid,
                        "blob_sha256": sha,
                        "filename": kept[:255],
                        "content_type": "application/pgp-encrypted",
                        "inline": False,
                        "agent_only": False,
                    },
                )
                kept_shas.add(sha)
        elif not ok:
            kept = "(the raw message)"
        decrypted += ok
        failed += not ok
        sid = conn.execute(
            insert(pgp_secrets).returning(pgp_secrets.c.id),
            {
                "ticket_id": tid,
                "article_id": aid,
                "seq": seq,
                "queue": opened.queue,
                "sender": sender[:320],
                "kind": part.kind[:16],
                "ok": ok,
                "text": text,
                "reason": reason,
                "source_name": part.source_name[:255],
                "ciphertext_sha256": sha,
                "packet_sha256": digest,
                "attachments": meta,
                "signature": signature_dict(part.signature),
                "created_at": now,
            },
        ).scalar_one()
        ids.append(sid)
        shown = _as_stored(part, ok, reason, files)
        lines.append(_describe_part(shown, seq, kept))

    whole = signature_dict(result.signature)
    partial = [signature_dict(s) for s in result.partial_signatures]
    verdict = dict(
        conn.execute(select(articles.c.verdict).where(articles.c.id == aid)).scalar() or {}
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
    conn.execute(update(articles).where(articles.c.id == aid).values(verdict=verdict))

    if result.secrets:
        head = (
            f"PGP: the message from {sender or 'the sender'} held {len(result.secrets)} "
            f"encrypted part(s); the customer-visible text shows {crypto.SECURED} in their place."
        )
        how = (
            f"Decrypted content is agent-only: `mailgate tickets show {tid} --secrets`, "
            f"or `#secret {tid}` by mail (encrypted to your key)."
        )
        sig = _overall_signature(whole, partial)
        store.system_article(conn, tid, "\n".join([head, *lines, sig, how]), now)
    store.audit(
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


def _as_stored(
    part: crypto.DecryptedPart,
    ok: bool,
    reason: str,
    files: Sequence[tuple[str, str, bytes]],
) -> crypto.DecryptedPart:
    """The part as stored (a replay turns an ok part into a failure)."""
    if ok == part.ok and reason == part.reason:
        return part
    return crypto.DecryptedPart(
        part.kind, ok, "", tuple(files), part.ciphertext, reason, part.signature, part.source_name
    )


# --------------------------------------------------------------------------- reads


def secrets_of(conn: Connection, ticket_id: int) -> list[Any]:
    """Every pgp_secrets row of a ticket, in arrival order (includes failures)."""
    return list(
        conn.execute(
            select(pgp_secrets)
            .where(pgp_secrets.c.ticket_id == ticket_id)
            .order_by(pgp_secrets.c.article_id, pgp_secrets.c.seq)
        ).all()
    )


def secret_lines(row: Any, *, with_text: bool) -> list[str]:
    """How `tickets show` prints one stored part (the text only when asked for)."""
    where = row.kind + (f" {row.source_name}" if row.source_name else "")
    sig = f"; signature {signature_text(row.signature)}" if row.signature else ""
    if not row.ok:
        return [f"  secret {row.id} ({where}): NOT decrypted: {row.reason}{sig}"]
    files = ", ".join(
        f"{a['filename']} ({a['content_type']}, {a['size']} bytes)" for a in row.attachments
    )
    out = [f"  secret {row.id} ({where}): decrypted{sig}" + (f"; files: {files}" if files else "")]
    if with_text and row.text:
        out += ["    | " + line for line in row.text.rstrip().splitlines()]
    return out


# --------------------------------------------------------------------------- `#secret N`


def _visible_to(conn: Connection, agent: Agent, ticket: Any) -> bool:
    queues = set(
        conn.execute(
            select(store.ticket_queues.c.queue).where(store.ticket_queues.c.ticket_id == ticket.id)
        ).scalars()
    )
    return can_see(agent, queues | {ticket.queue}, ticket.assignee or "")


def _refuse(conn: Connection, ticket_id: int | None, agent: Agent, now: datetime, why: str) -> str:
    store.audit(conn, ticket_id, agent.name, "secret-refused", now, reason=why)
    return why


def secret_for_agent(
    conn: Connection,
    config: Config,
    ticket_id: int,
    agent: Agent,
    now: datetime,
    *,
    cause: str = "",
) -> Outgoing | str:
    """The mail answering `#secret ID`: the ticket's decrypted PGP content for this agent.

    Encrypted (PGP/MIME) to the agent's registered key (Agent.pgp_fingerprint, which must be
    in the queue's keyring with a uid of exactly the agent's address); in clear only when
    the queue sets allow_plaintext_secrets_to_agents and the agent has no key. Otherwise, or
    when the agent may not see the ticket, an error text for the agent's transcript.
    Audited either way (secret-sent / secret-refused). The caller queues the Outgoing
    (store.add_outbox); `cause` (e.g. the agent mail's replay key) makes its Message-ID
    stable.
    """
    ticket = conn.execute(select(tickets).where(tickets.c.id == ticket_id)).first()
    if ticket is None:
        return _refuse(conn, None, agent, now, f"#secret {ticket_id}: no such ticket")
    if not _visible_to(conn, agent, ticket):
        return _refuse(
            conn, ticket_id, agent, now, f"#secret {ticket_id}: no such ticket in your queues"
        )
    rows = [r for r in secrets_of(conn, ticket_id) if r.ok]
    if not rows:
        return _refuse(
            conn, ticket_id, agent, now, f"#secret {ticket_id}: no decrypted PGP content"
        )
    qname = rows[0].queue
    queue = config.queue(qname) or config.queue(ticket.queue)
    settings = queue.pgp if queue else None
    if queue is None or settings is None:
        return _refuse(
            conn, ticket_id, agent, now, f"#secret {ticket_id}: queue {qname} has no usable [pgp]"
        )
    want = agent.pgp_fingerprint.replace(" ", "").upper()
    fpr: str | None = None
    if want:
        ring = pgp_stage.keyring(settings)
        info = ring.key(want)
        if info is None or not info.usable or not info.can_encrypt:
            return _refuse(
                conn,
                ticket_id,
                agent,
                now,
                f"#secret {ticket_id}: your key {want} is not usable in queue {queue.name}'s "
                f"keyring (import it: mailgate keys import {queue.name} FILE)",
            )
        if agent.address.lower() not in info.emails:
            return _refuse(
                conn,
                ticket_id,
                agent,
                now,
                f"#secret {ticket_id}: key {want} has no user id for {agent.address}; "
                "not encrypting to it",
            )
        fpr = want
    elif not settings.allow_plaintext_secrets_to_agents:
        return _refuse(
            conn,
            ticket_id,
            agent,
            now,
            f"#secret {ticket_id}: queue {queue.name} sends decrypted content only encrypted; "
            "register your PGP key (pgp_fingerprint in the agents file)",
        )

    body = [
        f"Decrypted PGP content of ticket #{ticket_id} ({header_text(ticket.title)}).",
        "Agent-only: never quote or forward it to the customer. Replies to this mail are",
        "not processed.",
        "",
    ]
    files: list[tuple[str, str, bytes]] = []
    for r in rows:
        body.append(
            f"--- secret {r.id}: {r.kind} from {r.sender} ({r.created_at:%Y-%m-%d %H:%M} UTC)"
        )
        body.append(f"    signature: {signature_text(r.signature)}")
        if r.text:
            body += [r.text.rstrip(), ""]
        for a in r.attachments:
            data = conn.execute(
                select(store.blobs.c.data).where(store.blobs.c.sha256 == a["sha256"])
            ).scalar()
            if data is not None:
                files.append((a["filename"], a["content_type"], data))
                body.append(f"    file: {a['filename']} (attached)")
        body.append("")
    tag = queue.tag_for(ticket_id)
    mid = stable_message_id(
        config.main.hostname,
        "secret",
        agent.name,
        ticket_id,
        cause or now.isoformat(),
        *(r.id for r in rows),
    )
    msg = EmailMessage()
    msg["From"] = formataddr((header_text(f"{queue.from_name} (mailgate)"), queue.address))
    msg["To"] = formataddr((header_text(agent.full_name), agent.address))
    msg["Reply-To"] = agent.address  # never back into the mail path, not even to the queue
    msg["Subject"] = f"{tag} Secured information"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = mid
    msg["Auto-Submitted"] = "auto-generated"
    msg[LOOP_HEADER] = config.main.hostname
    msg["X-Mailgate-Ticket"] = str(ticket_id)
    msg.set_content("\n".join(body))
    for name, ctype, data in files:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(
            data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=name,
        )
    if fpr is not None:
        ring = pgp_stage.keyring(settings)
        try:
            sign = settings.key if settings.sign_outgoing else None
            msg = crypto.encrypt_mime(msg, [fpr], sign, keyring=ring)
        except crypto.CryptoError as e:
            return _refuse(
                conn, ticket_id, agent, now, f"#secret {ticket_id}: encryption failed: {e}"
            )
    raw = msg.as_bytes(policy=SMTP)
    store.audit(
        conn,
        ticket_id,
        agent.name,
        "secret-sent",
        now,
        secrets=[r.id for r in rows],
        encrypted=fpr is not None,
        fingerprint=fpr or "",
        message_id=mid,
    )
    return Outgoing("secret", "", (agent.address,), mid, raw, ticket_id)


__all__ = [
    "Saved",
    "save",
    "secret_for_agent",
    "secret_lines",
    "secrets_of",
    "signature_dict",
    "signature_text",
    "verdict_signature_lines",
]
