"""PGP on the way out: PGP/MIME encryption (RFC 3156), the sender's hook, the ack's key hint.

`prepare_outgoing` (called by the sender right before delivery): customer-facing mail of a
queue with `[pgp]` is sent PGP/MIME encrypted when every recipient has a usable key whose
uid is exactly that recipient's address; it is held back when it would carry decrypted
content of its ticket (docs/pgp.md).
"""

from __future__ import annotations

import copy
import logging
import secrets as _random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP, EmailPolicy, compat32
from email.policy import default as default_policy
from email.utils import getaddresses, parseaddr

from sqlalchemy import Engine, select

from mailgate.config.model import Config, Queue
from mailgate.db.models import pgp_secrets
from mailgate.pgp import keys as keymgmt
from mailgate.pgp.keyring import CryptoError, Keyring, Keyrings
from mailgate.pgp.leaks import leaked_secret

log = logging.getLogger(__name__)

# mail a customer reads: encrypted to them when we hold their key (the rest go to agents)
CUSTOMER_KINDS = frozenset({"ack", "answer", "escalated", "closed", "survey"})
PUBLIC_KEY_CACHE_SECONDS = 300.0


# --------------------------------------------------------------------------- PGP/MIME


def _is_content_header(name: str) -> bool:
    lower = name.lower()
    return lower.startswith("content-") or lower == "mime-version"


def encrypt_mime(
    msg: EmailMessage,
    recipients: list[str],
    sign_with: str | None = None,
    *,
    keyring: Keyring,
) -> EmailMessage:
    """RFC 3156 PGP/MIME: the body becomes the encrypted entity, routing headers stay outside.

    Raises CryptoError; the caller must then not send the message in clear.
    """
    inner = copy.deepcopy(msg)
    for name in {k.lower() for k in inner}:
        if not _is_content_header(name) or name == "mime-version":
            del inner[name]
    if inner.get("Content-Type") is None:
        inner["Content-Type"] = "text/plain; charset=us-ascii"
    policy = msg.policy if isinstance(msg.policy, EmailPolicy) else default_policy
    inner_bytes = inner.as_bytes(policy=policy.clone(linesep="\r\n"))
    armored = keyring.encrypt(inner_bytes, recipients, sign_with=sign_with)

    outer = EmailMessage(policy=policy)
    for name, value in msg.items():
        if not _is_content_header(name):
            outer[name] = value
    boundary = f"mailgate-pgp-{_random.token_hex(12)}"
    outer["MIME-Version"] = "1.0"
    outer["Content-Type"] = (
        f'multipart/encrypted; protocol="application/pgp-encrypted"; boundary="{boundary}"'
    )
    outer.preamble = "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)"
    control = EmailMessage(policy=policy)
    control["Content-Type"] = "application/pgp-encrypted"
    control["Content-Description"] = "PGP/MIME version identification"
    control.set_payload("Version: 1\n")
    data = EmailMessage(policy=policy)
    data["Content-Type"] = 'application/octet-stream; name="encrypted.asc"'
    data["Content-Description"] = "OpenPGP encrypted message"
    data["Content-Disposition"] = 'inline; filename="encrypted.asc"'
    data.set_payload(armored)
    outer.set_payload([control, data])
    return outer


# --------------------------------------------------------------------------- the sender's hook


@dataclass(frozen=True)
class Prepared:
    """An outbox row's bytes as they go on the wire, or why they must not go."""

    raw: bytes
    error: str = ""  # non-empty: do not deliver
    permanent: bool = False  # retrying will not help
    encrypted: bool = False


def _sender_queue(config: Config, raw: bytes) -> Queue | None:
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    addr = parseaddr(str(headers.get("From", "")))[1]
    return config.queue_for_address(addr) if addr else None


def _ticket_secrets(engine: Engine, ticket_id: int) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(pgp_secrets.c.text).where(
                    pgp_secrets.c.ticket_id == ticket_id,
                    pgp_secrets.c.ok.is_(True),
                    pgp_secrets.c.text != "",
                )
            ).scalars()
        )


def prepare_outgoing(
    config: Config,
    engine: Engine,
    keyrings: Keyrings,
    *,
    kind: str,
    rcpt_tos: Iterable[str],
    raw: bytes,
    ticket_id: int | None,
) -> Prepared:
    """The sender's hook: encrypt customer-facing mail to recipients whose key we hold.

    Only for queues with `[pgp]`, only for CUSTOMER_KINDS, only when EVERY recipient has a
    usable key whose uid is exactly their address (else the mail goes as it is: it never
    holds decrypted content). Encryption failing defers the row: never send in clear what
    was meant to be encrypted. A customer-facing mail that carries decrypted content of its
    ticket is refused for good (a system note on the ticket says so).
    """
    if kind not in CUSTOMER_KINDS or not any(q.pgp is not None for q in config.queues):
        return Prepared(raw)
    if ticket_id is not None:
        secrets = _ticket_secrets(engine, ticket_id)
        if secrets and leaked_secret(raw, secrets):
            log.error(
                "outbox %s mail for ticket #%s carries decrypted PGP content", kind, ticket_id
            )
            return Prepared(
                raw,
                "refused: the mail quotes decrypted PGP content of this ticket "
                "(agent-only); write the answer without it",
                permanent=True,
            )
    queue = _sender_queue(config, raw)
    if queue is None or queue.pgp is None:
        return Prepared(raw)
    settings = queue.pgp
    if not settings.encrypt_to_customers:
        return Prepared(raw)
    rcpts = [a for _, a in getaddresses(list(rcpt_tos)) if a]
    try:
        ring = keyrings.get(settings.home, settings.passphrase())
        fprs = [ring.public_key_for(r) for r in rcpts]
        if not rcpts or any(f is None for f in fprs):
            return Prepared(raw)
        msg = message_from_bytes(raw, _class=EmailMessage, policy=default_policy)
        assert isinstance(msg, EmailMessage)
        sign = settings.key if settings.sign_outgoing else None
        wanted = [f for f in dict.fromkeys(fprs) if f is not None]
        out = encrypt_mime(msg, wanted, sign, keyring=ring)
        wire = out.as_bytes(policy=SMTP)
    except (CryptoError, OSError, ValueError, keymgmt.KeyManagementError) as e:
        log.error("queue %s: encrypting %s mail failed: %s", queue.name, kind, e)
        return Prepared(raw, f"PGP encryption failed: {e}")
    log.info("%s mail to %s encrypted to %s", kind, ", ".join(rcpts), ", ".join(wanted))
    return Prepared(wire, encrypted=True)


# --------------------------------------------------------------------------- the ack's hint

# exported public keys by (home, fingerprint): text only, no gpg process behind it
_public_keys: dict[tuple[str, str], tuple[float, str]] = {}


def group_fingerprint(fpr: str) -> str:
    """`ABCD 1234 ...`: how people compare fingerprints."""
    return " ".join(fpr[i : i + 4] for i in range(0, len(fpr), 4))


def ack_context(queue: Queue) -> dict[str, str]:
    """Variables for the new-ticket acknowledgement: `pgp_fingerprint` (grouped) and
    `pgp_public_key` (armored), both "" unless the queue sets publish_key_hint."""
    empty = {"pgp_fingerprint": "", "pgp_public_key": ""}
    settings = queue.pgp
    if settings is None or not settings.publish_key_hint:
        return empty
    cache_key = (str(settings.home), settings.key)
    now = time.monotonic()
    cached = _public_keys.get(cache_key)
    if cached is not None and now - cached[0] < PUBLIC_KEY_CACHE_SECONDS:
        armored = cached[1]
    else:
        try:
            armored = keymgmt.export_public(settings.home, settings.key).strip()
        except keymgmt.KeyManagementError as e:
            log.error("queue %s: cannot export the queue key for the ack: %s", queue.name, e)
            return empty
        _public_keys[cache_key] = (now, armored)
    return {"pgp_fingerprint": group_fingerprint(settings.key), "pgp_public_key": armored}
