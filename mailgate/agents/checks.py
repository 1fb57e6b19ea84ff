"""The checks of an authenticated agent mail: `auth`'s rules with their lookups (the
ticket's queue settings, the PGP signature, the signed bodies already seen)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from mailgate.agents import auth
from mailgate.agents.signature import body_signature
from mailgate.config.model import Config, Queue
from mailgate.parse.message import Parsed
from mailgate.pgp.keyring import Keyrings
from mailgate.store import agent_mails as seen


def settings_queues(config: Config, reply: auth.AgentReply, row: Row[Any] | None) -> list[Queue]:
    """The queues whose [agent_mail] settings apply: the token's and the ticket's."""
    queues = [reply.queue]
    if row is not None:
        q = config.queue(row.queue)
        if q is not None and q is not reply.queue:
            queues.append(q)
    return queues


def authentication_problem(
    conn: Connection,
    config: Config,
    reply: auth.AgentReply,
    row: Row[Any] | None,
    p: Parsed,
    raw: bytes,
    now: datetime,
    keyrings: Keyrings,
) -> tuple[str, str | None]:
    """Why the mail must not run ("" if it may), and the key of its signed body, which is
    recorded with the mail so that body is accepted only once."""
    queues = settings_queues(config, reply, row)
    problem = auth.refusal(
        reply,
        ticket_found=row is not None,
        message_id=p.message_id,
        date=p.date,
        now=now,
        queues=queues,
    )
    signing = auth.signing_queue(queues)
    if problem or signing is None:
        return problem, None
    sig = None
    if reply.agent.pgp_fingerprint.strip():  # no key: refused without running gpg
        sig = body_signature(signing, raw, p.text, p.from_addr, keyrings)
    problem = auth.signature_refusal(reply.agent, signing, sig)
    if problem:
        return problem, None
    content_key = auth.signed_content_key(raw)
    if seen.seen_content(conn, content_key):
        return "this signed text was already processed (a replay)", None
    return "", content_key
