"""What the crypto stage found in one inbound message: the decrypted parts, agent-only."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.pgp.armor import redact_message
from mailgate.pgp.verdicts import SignatureCheck


@dataclass(frozen=True)
class DecryptedPart:
    kind: str  # "inline" | "pgp-mime" | "attachment" | "message" (internal error)
    ok: bool
    text: str  # decrypted text ("" if failed or binary)
    attachments: tuple[tuple[str, str, bytes], ...]  # (sanitized filename, content type, data)
    ciphertext: bytes  # original armored/binary ciphertext (always kept)
    reason: str  # "" if ok, else why it failed
    signature: SignatureCheck | None
    source_name: str = ""  # sanitized filename of the encrypted attachment / PGP/MIME part


@dataclass(frozen=True)
class CryptoResult:
    customer_text: str  # the text with every encrypted block replaced by SECURED
    secrets: tuple[DecryptedPart, ...]  # in message order; agent-only
    signature: SignatureCheck | None  # a signature that covers the whole body, else None
    partial_signatures: tuple[SignatureCheck, ...] = ()  # signatures over only part of it

    @property
    def has_pgp(self) -> bool:
        return bool(self.secrets or self.signature or self.partial_signatures)

    @property
    def failures(self) -> tuple[str, ...]:
        return tuple(f"{p.kind}: {p.reason}" for p in self.secrets if not p.ok)


@dataclass(frozen=True)
class Opened:
    """What the crypto stage found in one message; the secrets are agent-only."""

    queue: str  # the queue whose keyring opened it
    result: CryptoResult
    seconds: float  # time spent in gpg for this message


def unopened(raw: bytes, text: str, reason: str) -> CryptoResult:
    """The message could not be opened: hide the ciphertext anyway and say why."""
    failure = DecryptedPart("message", False, "", (), raw, reason, None)
    return CryptoResult(redact_message(raw, text), (failure,), None)
