"""Reply tokens: HMAC-SHA256 codes that bind a reply address to one (agent, ticket). Pure.

Every mail mailgate sends an agent carries a Reply-To such as

    support+t123.k7f3a9c2d1e4b5a6f708@example.test

`t123` names the ticket (`t0` is the agent's command address, for `#new`, `#list` ...) and
`k...` is HMAC-SHA256(config.secret, "mailgate-reply-v1", agent name, ticket) cut to 80 bits,
in lowercase hex. Only the canonical spelling is accepted: no upper case, no leading zeros,
no encodings, so there is exactly one string per (agent, ticket). The agent is not written
in the address: it is the mail's From, which must be that agent's exact address.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

TOKEN_HEX_CHARS = 20  # 80 bits
COMMAND_TICKET = 0  # the ticket number of an agent's command address (#new, #list, #help)
_PURPOSE = b"mailgate-reply-v1"
_REPLY_ADDRESS_RE = re.compile(
    r"(?P<local>[^\s+@<>\"]+)\+t(?P<ticket>0|[1-9][0-9]{0,11})"
    r"\.k(?P<mac>[0-9a-f]{" + str(TOKEN_HEX_CHARS) + r"})@(?P<domain>[^\s@<>\"]+)"
)
# anything shaped like a token, in any case: used to keep tokens out of customer mail
TOKEN_LIKE_RE = re.compile(r"\+t\d+\.k[0-9a-fA-F]{16,}@", re.ASCII)
_ADDRESS_IN_TEXT_RE = re.compile(r"[^\s<>,;:\"'()\[\]]+@[^\s<>,;:\"'()\[\]]+")


@dataclass(frozen=True)
class ReplyAddress:
    """A queue address with a token, as found in a recipient address."""

    address: str  # as written
    queue_address: str  # the address without the token, lower case
    ticket_id: int
    mac: str


def token_mac(secret: bytes, agent: str, ticket_id: int) -> str:
    """The token's code: HMAC-SHA256 over purpose, agent name and ticket, 80 bits of hex."""
    msg = b"\x1f".join((_PURPOSE, agent.encode("utf-8"), str(int(ticket_id)).encode("ascii")))
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()[:TOKEN_HEX_CHARS]


def reply_address(secret: bytes, agent: str, ticket_id: int, queue_address: str) -> str:
    """`support+t123.k<mac>@example.test` for this agent and ticket."""
    if ticket_id < 0:
        raise ValueError("ticket id must not be negative")
    local, _, domain = queue_address.partition("@")
    return f"{local}+t{int(ticket_id)}.k{token_mac(secret, agent, ticket_id)}@{domain}"


def command_address(secret: bytes, agent: str, queue_address: str) -> str:
    """The agent's command address for a queue (ticket 0): `#new`, `#list`, `#help` ..."""
    return reply_address(secret, agent, COMMAND_TICKET, queue_address)


def parse_reply_address(address: str) -> ReplyAddress | None:
    """The token in an address, if it is in canonical form; None otherwise."""
    address = address.strip().strip("<>")
    m = _REPLY_ADDRESS_RE.fullmatch(address)
    if m is None:
        return None
    return ReplyAddress(
        address=address,
        queue_address=f"{m['local']}@{m['domain']}".lower(),
        ticket_id=int(m["ticket"]),
        mac=m["mac"],
    )


def verify(secret: bytes, agent: str, ticket_id: int, mac: str) -> bool:
    """True when `mac` is this agent's token for this ticket (constant-time comparison)."""
    expected = token_mac(secret, agent, ticket_id)
    return hmac.compare_digest(expected.encode("ascii"), mac.encode("ascii", "replace"))


def reply_addresses(values: Iterable[str]) -> tuple[ReplyAddress, ...]:
    """Every canonical token address in recipient values (envelope or header text)."""
    found: dict[str, ReplyAddress] = {}
    for value in values:
        for candidate in _ADDRESS_IN_TEXT_RE.findall(value or ""):
            ra = parse_reply_address(candidate)
            if ra is not None:
                found.setdefault(ra.address, ra)
    return tuple(found.values())


def contains_token(text: str) -> bool:
    """Does the text hold something shaped like a reply token (which a customer must not see)?"""
    return TOKEN_LIKE_RE.search(text) is not None
