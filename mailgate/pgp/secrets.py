"""Reading decrypted PGP content: `tickets show --secrets` lines and the `#secret ID` answer.

Agents see the plaintext only on request, and every request is audited:
`mailgate tickets show ID --secrets` (cli.views) and the mail command `#secret ID`
(`secret_for_agent`: encrypted to the agent's registered key; in clear only if the queue
allows it). The rows are written by store.pgp_secrets.
"""

from __future__ import annotations

import logging
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

from sqlalchemy import Connection, select

from mailgate.agents.access import can_see
from mailgate.config.model import Config, Queue
from mailgate.config.pgp import PgpSettings
from mailgate.config.schema import Agent
from mailgate.db.models import pgp_secrets
from mailgate.outgoing.builders import agent_only_headers
from mailgate.outgoing.compose import Outgoing, header_text, stable_message_id
from mailgate.pgp.keyring import CryptoError, Keyrings
from mailgate.pgp.outgoing import encrypt_mime
from mailgate.pgp.verdicts import signature_text
from mailgate.store.articles import blobs
from mailgate.store.audit import audit
from mailgate.store.tickets import ticket_queues, tickets

log = logging.getLogger(__name__)


class _Refused(Exception):
    """`#secret` is not answered; the reason goes to the agent's transcript."""


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
            select(ticket_queues.c.queue).where(ticket_queues.c.ticket_id == ticket.id)
        ).scalars()
    )
    return can_see(agent, queues | {ticket.queue}, ticket.assignee or "")


def _settings(
    config: Config, ticket_id: int, qname: str, fallback: str
) -> tuple[Queue, PgpSettings]:
    queue = config.queue(qname) or config.queue(fallback)
    settings = queue.pgp if queue else None
    if queue is None or settings is None:
        raise _Refused(f"#secret {ticket_id}: queue {qname} has no usable [pgp]")
    return queue, settings


def _agent_key(
    keyrings: Keyrings, settings: PgpSettings, queue: Queue, agent: Agent, ticket_id: int
) -> str | None:
    """The fingerprint to encrypt to; None: send in clear (only where the queue allows it)."""
    want = agent.pgp_fingerprint.replace(" ", "").upper()
    if not want:
        if settings.allow_plaintext_secrets_to_agents:
            return None
        raise _Refused(
            f"#secret {ticket_id}: queue {queue.name} sends decrypted content only encrypted; "
            "register your PGP key (pgp_fingerprint in the agents file)"
        )
    info = keyrings.get(settings.home, settings.passphrase()).key(want)
    if info is None or not info.usable or not info.can_encrypt:
        raise _Refused(
            f"#secret {ticket_id}: your key {want} is not usable in queue {queue.name}'s "
            f"keyring (import it: mailgate keys import {queue.name} FILE)"
        )
    if agent.address.lower() not in info.emails:
        raise _Refused(
            f"#secret {ticket_id}: key {want} has no user id for {agent.address}; "
            "not encrypting to it"
        )
    return want


def _secret_mail(
    conn: Connection,
    config: Config,
    queue: Queue,
    agent: Agent,
    ticket: Any,
    rows: list[Any],
    message_id: str,
    now: datetime,
) -> EmailMessage:
    """The mail in clear: every decrypted text and file of the ticket, for this agent."""
    body = [
        f"Decrypted PGP content of ticket #{ticket.id} ({header_text(ticket.title)}).",
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
            data = conn.execute(select(blobs.c.data).where(blobs.c.sha256 == a["sha256"])).scalar()
            if data is not None:
                files.append((a["filename"], a["content_type"], data))
                body.append(f"    file: {a['filename']} (attached)")
        body.append("")
    msg = EmailMessage()
    subject = f"{queue.tag_for(ticket.id)} Secured information"
    for name, value in agent_only_headers(
        config, queue, agent, subject=subject, message_id=message_id, now=now
    ):
        msg[name] = value
    msg["X-Mailgate-Ticket"] = str(ticket.id)
    msg.set_content("\n".join(body))
    for name, ctype, data in files:
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(
            data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=name,
        )
    return msg


def _refuse(conn: Connection, ticket_id: int | None, agent: Agent, now: datetime, why: str) -> str:
    audit(conn, ticket_id, agent.name, "secret-refused", now, reason=why)
    return why


def secret_for_agent(
    conn: Connection,
    config: Config,
    ticket_id: int,
    agent: Agent,
    now: datetime,
    keyrings: Keyrings,
    *,
    cause: str = "",
) -> Outgoing | str:
    """The mail answering `#secret ID`: the ticket's decrypted PGP content for this agent.

    Encrypted (PGP/MIME) to the agent's registered key (Agent.pgp_fingerprint, which must be
    in the queue's keyring with a uid of exactly the agent's address); in clear only when
    the queue sets allow_plaintext_secrets_to_agents and the agent has no key. Otherwise, or
    when the agent may not see the ticket, an error text for the agent's transcript.
    Audited either way (secret-sent / secret-refused). The caller queues the Outgoing
    (store.outbox.add_outbox); `cause` (e.g. the agent mail's replay key) makes its Message-ID
    stable.
    """
    ticket = conn.execute(select(tickets).where(tickets.c.id == ticket_id)).first()
    if ticket is None:
        return _refuse(conn, None, agent, now, f"#secret {ticket_id}: no such ticket")
    try:
        if not _visible_to(conn, agent, ticket):
            raise _Refused(f"#secret {ticket_id}: no such ticket in your queues")
        rows = [r for r in secrets_of(conn, ticket_id) if r.ok]
        if not rows:
            raise _Refused(f"#secret {ticket_id}: no decrypted PGP content")
        queue, settings = _settings(config, ticket_id, rows[0].queue, ticket.queue)
        fpr = _agent_key(keyrings, settings, queue, agent, ticket_id)
        mid = stable_message_id(
            config.main.hostname,
            "secret",
            agent.name,
            ticket_id,
            cause or now.isoformat(),
            *(r.id for r in rows),
        )
        msg = _secret_mail(conn, config, queue, agent, ticket, rows, mid, now)
        if fpr is not None:
            ring = keyrings.get(settings.home, settings.passphrase())
            sign = settings.key if settings.sign_outgoing else None
            try:
                msg = encrypt_mime(msg, [fpr], sign, keyring=ring)
            except CryptoError as e:
                raise _Refused(f"#secret {ticket_id}: encryption failed: {e}") from e
    except _Refused as refused:
        return _refuse(conn, ticket_id, agent, now, str(refused))
    audit(
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
    return Outgoing("secret", "", (agent.address,), mid, msg.as_bytes(policy=SMTP), ticket_id)
