"""Is this mail an agent's command mail? Pure, given the agents, the queues and the secret.

A mail is an agent's command mail only when ALL of these hold (docs/agents.md):

  1. From (the addr-spec, never the display name) is an agent's address;
  2. a recipient is a queue address with a reply token valid for that agent (tokens.py);
  3. its Message-ID was never processed before (`message_key`; a replay does nothing);
  4. it is not automatic (an agent's out-of-office reply is kept as a note, never run);
  5. its Date is recent (queue setting, default 72 h) and not in the future;
  6. if a queue involved requires it, a valid PGP signature by the agent's registered key
     covers the whole body (and the same signed body is accepted only once:
     `signed_content_key`).

`find_agent_reply` decides 1 and 2: failing them, the mail is ordinary customer mail.
`refusal` and `signature_refusal` give the reason a mail that passed them is refused (5, 6
and the mail's own shape); `agents.handle` runs the lookups for 3, 4 and 6.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import getaddresses
from typing import Protocol

from mailgate.agents import tokens
from mailgate.config.model import Queue
from mailgate.config.schema import Agent
from mailgate.parse.message import Parsed
from mailgate.pgp.verdicts import SignatureCheck
from mailgate.spool import Envelope

log = logging.getLogger(__name__)

RECIPIENT_HEADERS = ("to", "cc", "delivered-to", "x-original-to", "envelope-to")


class Directory(Protocol):
    """Who the agents and queues are (a Config is one)."""

    @property
    def secret(self) -> bytes: ...
    @property
    def accepted_secrets(self) -> tuple[bytes, ...]: ...
    def agent_by_address(self, address: str) -> Agent | None: ...
    def queue_for_address(self, address: str) -> Queue | None: ...


@dataclass(frozen=True)
class AgentReply:
    """An agent mail whose token checked out: who, which ticket, through which queue."""

    agent: Agent
    ticket_id: int  # 0: the agent's command address
    queue: Queue  # the queue whose address carried the token
    ambiguous: bool  # valid tokens for more than one ticket


def recipients(envelope: Envelope, p: Parsed) -> list[str]:
    """Every place a token may be: the envelope recipients and the addr-specs of the
    recipient headers. Only an address counts: a token in a display name
    (`"support+t1.k...@x" <support@x>`) authenticates nothing."""
    values = [v for h in RECIPIENT_HEADERS for v in p.header_all(h)]
    return [*envelope.rcpt_tos, *(addr for _, addr in getaddresses(values) if addr)]


def find_agent_reply(
    directory: Directory, from_addr: str, recipient_values: Iterable[str]
) -> AgentReply | None:
    """The agent and ticket a mail is authenticated for by From + token, or None."""
    agent = directory.agent_by_address(from_addr) if from_addr else None
    if agent is None:
        return None
    valid = []
    for ra in tokens.reply_addresses(recipient_values):
        queue = directory.queue_for_address(ra.queue_address)
        if queue is None or ra.queue_address not in queue.addresses:
            continue
        if any(
            tokens.verify(key, agent.name, ra.ticket_id, ra.mac)
            for key in directory.accepted_secrets
        ):
            valid.append((ra, queue))
    if not valid:
        log.info("mail from agent %s without a valid reply token: customer path", agent.name)
        return None
    ticket_ids = {ra.ticket_id for ra, _ in valid}
    ra, queue = valid[0]
    return AgentReply(agent, ra.ticket_id, queue, ambiguous=len(ticket_ids) > 1)


def message_key(p: Parsed) -> str:
    """Replay key: the Message-ID (case-folded), or the raw bytes when there is none."""
    basis = f"mid:{p.message_id.strip().lower()}" if p.message_id else f"raw:{p.raw_sha256}"
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()


def signed_content_key(raw: bytes) -> str:
    """Replay key of a signed body: the same signed text is accepted once, whatever headers."""
    body = raw.split(b"\r\n\r\n", 1)[-1] if b"\r\n\r\n" in raw else raw
    return hashlib.sha256(b"signed\x1f" + body).hexdigest()


def date_problem(
    date: datetime | None, now: datetime, max_age_hours: float, max_future_minutes: float
) -> str:
    """Why a command mail's Date is not acceptable, or "" if it is."""
    if date is None:
        return "the mail has no readable Date header"
    age = now - date
    if age > timedelta(hours=max_age_hours):
        return f"the mail is dated {date.isoformat()}, more than {max_age_hours:g} h ago"
    if -age > timedelta(minutes=max_future_minutes):
        return f"the mail is dated {date.isoformat()}, in the future"
    return ""


def refusal(
    reply: AgentReply,
    *,
    ticket_found: bool,
    message_id: str,
    date: datetime | None,
    now: datetime,
    queues: Sequence[Queue],
) -> str:
    """Why an authenticated mail must not run, or "": `queues` are the token's queue and the
    ticket's (the strictest setting of the two applies)."""
    if reply.ambiguous:
        return "the mail carries reply addresses of more than one ticket"
    if reply.ticket_id and not ticket_found:
        return f"ticket #{reply.ticket_id} does not exist"
    if not message_id:
        return "the mail has no Message-ID, so a replay could not be told apart"
    return date_problem(
        date,
        now,
        min(q.agent_mail.max_command_age_hours for q in queues),
        min(q.agent_mail.max_command_future_minutes for q in queues),
    )


def signing_queue(queues: Sequence[Queue]) -> Queue | None:
    """The first of the queues that requires signed commands, if any."""
    return next((q for q in queues if q.agent_mail.require_signed_commands), None)


def signature_refusal(agent: Agent, queue: Queue, sig: SignatureCheck | None) -> str:
    """Why the whole-body signature `sig` does not authorise the agent's commands, or ""."""
    want = agent.pgp_fingerprint.replace(" ", "").upper()
    if not want:
        return f"queue {queue.name} requires signed commands; no key registered"
    if sig is None:
        return (
            f"queue {queue.name} requires commands signed with your PGP key "
            "(the whole body); the mail has no such signature"
        )
    if not sig.valid:
        return f"the PGP signature is not valid: {sig.reason}"
    if sig.fingerprint.upper() != want:
        return f"signed by key {sig.fingerprint}, not by your registered key"
    return ""
