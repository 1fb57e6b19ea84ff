"""The PGP signature over a command mail's whole body, checked in the queue's agent keyring."""

from __future__ import annotations

from pathlib import Path

from mailgate.config.load import Queue
from mailgate.pgp import crypto

_keyrings: dict[Path, crypto.Keyring] = {}


def _keyring(home: Path) -> crypto.Keyring:
    """One crypto.Keyring per GnuPG home (starting gnupg.GPG runs gpg once)."""
    ring = _keyrings.get(home)
    if ring is None:
        ring = _keyrings[home] = crypto.Keyring(home)
    return ring


def body_signature(
    queue: Queue, raw: bytes, text: str, from_addr: str
) -> crypto.SignatureCheck | None:
    """The signature covering the whole body, by a key of the queue's agent keyring."""
    home = (queue.source.parent / queue.agent_mail.agent_keyring).resolve()
    return crypto.open_message(raw, text, _keyring(home), from_addr).signature
