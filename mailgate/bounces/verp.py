"""VERP envelope senders: `bounces+<row>.<mac>@<queue domain>`, bound to one outbox row. Pure.

A bounce comes back to the envelope sender of the mail it reports, so the address itself
says which outbox row bounced; the HMAC (the daemon's secret) means nobody can make a
bounce land on another ticket by guessing row numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import re

VERP_LOCAL = "bounces"
MAC_CHARS = 12
_VERP = re.compile(rf"^{VERP_LOCAL}\+(\d{{1,18}})\.([0-9a-f]{{{MAC_CHARS}}})@(.+)$")


def _mac(secret: bytes, row_id: int) -> str:
    return hmac.new(secret, f"verp\x1f{row_id}".encode(), hashlib.sha256).hexdigest()[:MAC_CHARS]


def verp_address(secret: bytes, row_id: int, base: str) -> str:
    """The envelope sender of outbox row `row_id`, in the domain of `base` (the queue address)."""
    domain = base.rpartition("@")[2]
    return f"{VERP_LOCAL}+{row_id}.{_mac(secret, row_id)}@{domain}"


def is_verp_shaped(address: str) -> bool:
    """Looks like one of ours (the listener takes it; the MAC is checked by `verp_row`)."""
    return _VERP.match(address.strip().strip("<>").lower()) is not None


def verp_row(secret: bytes, address: str) -> int | None:
    """The outbox row a VERP address names, or None (not VERP, or a MAC that does not match)."""
    m = _VERP.match(address.strip().strip("<>").lower())
    if m is None:
        return None
    row_id = int(m.group(1))
    return row_id if hmac.compare_digest(m.group(2), _mac(secret, row_id)) else None
