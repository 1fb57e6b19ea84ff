"""The PGP signature over a command mail's whole body, checked in the queue's agent keyring."""

from __future__ import annotations

from mailgate.config.model import Queue
from mailgate.pgp.keyring import Keyrings
from mailgate.pgp.opener import open_message
from mailgate.pgp.verdicts import SignatureCheck


def body_signature(
    queue: Queue, raw: bytes, text: str, from_addr: str, keyrings: Keyrings
) -> SignatureCheck | None:
    """The signature covering the whole body, by a key of the queue's agent keyring."""
    home = (queue.source.parent / queue.agent_mail.agent_keyring).resolve()
    return open_message(raw, text, keyrings.get(home), from_addr).signature
