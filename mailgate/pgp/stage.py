"""PGP at the mail path's edges: the `[pgp]` table of a queue, the incoming decrypt stage,
outgoing encryption to customers whose key we hold, and the ack's key hint (docs/pgp.md).

The `[pgp]` table is typed at load (config/pgp.py, `Queue.pgp`).

Incoming (`open_incoming`, called by the worker right after routing): a message without PGP
markers costs a byte search; one with them is opened with the queue's keyring
(crypto.open_message: at most crypto.MAX_BLOCKS gpg operations per message) and goes on
with its text replaced by the customer-visible text, where every encrypted block reads
``| secured information |``. The decrypted parts travel apart in `Opened` and are stored
by pgp_store.save (design invariant 7).

Outgoing (`prepare_outgoing`, called by the sender right before delivery): customer-facing
mail of a queue with `[pgp]` is sent PGP/MIME encrypted when every recipient has a usable
key whose uid is exactly that recipient's address; it is held back when it would carry
decrypted content of its ticket.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP, compat32
from email.policy import default as default_policy
from email.utils import getaddresses, parseaddr
from typing import TYPE_CHECKING

from mailgate.config.model import Config, Queue
from mailgate.config.pgp import PgpSettings
from mailgate.pgp import keys as keymgmt

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from mailgate.parse.message import Parsed
    from mailgate.pgp import crypto

log = logging.getLogger(__name__)

# mail a customer reads: encrypted to them when we hold their key (the rest go to agents)
CUSTOMER_KINDS = frozenset({"ack", "answer", "escalated", "closed"})
# a decrypted line this long found in customer-facing mail holds the mail back
MIN_LEAK_LINE = 24
MIN_LEAK_TEXT = 8
_HEX = re.compile(r"^[0-9A-F]{40}$|^[0-9A-F]{64}$")
_QUOTE = re.compile(r"^[ \t>|]*", re.M)
_SPACE = re.compile(r"\s+")
_ARMOR = b"-----BEGIN PGP MESSAGE-----"


def pgp_problems(config: Config) -> list[str]:
    """For check-config: runs gpg to see that each queue key and its secret half are in
    the queue's home and usable (the `[pgp]` tables themselves were validated at load)."""
    problems: list[str] = []
    for q in config.queues:
        s = q.pgp
        if s is None:
            continue
        try:
            found = keymgmt.list_keys(s.home)
        except keymgmt.KeyManagementError as e:
            problems.append(f"{q.source}: pgp.gnupg_home: {e}")
            continue
        if not s.key:
            if not any(k.secret and k.usable for k in found):
                problems.append(f"{q.source}: pgp.gnupg_home: no usable secret key in {s.home}")
            continue
        info = next((k for k in found if k.fingerprint == s.key), None)
        if info is None:
            problems.append(f"{q.source}: pgp.key: {s.key} is not in {s.home}")
        elif not info.secret:
            problems.append(f"{q.source}: pgp.key: the secret key of {s.key} is not in {s.home}")
        elif not info.usable:
            problems.append(f"{q.source}: pgp.key: {s.key} is expired, revoked or disabled")
    return problems


# --------------------------------------------------------------------------- keyrings

_rings: dict[tuple[str, str | None], crypto.Keyring] = {}
_rings_lock = threading.Lock()


def keyring(settings: PgpSettings) -> crypto.Keyring:
    """One crypto.Keyring per (home, passphrase), shared by the worker and the sender."""
    from mailgate.pgp import crypto

    key = (str(settings.home), settings.passphrase())
    with _rings_lock:
        ring = _rings.get(key)
        if ring is None:
            ring = _rings[key] = crypto.Keyring(settings.home, key[1])
        return ring


def stop_agents() -> None:
    """Stop the gpg-agents of every home used so far (shutdown, tests)."""
    with _rings_lock:
        rings = list(_rings.values())
        _rings.clear()
        _public_keys.clear()
    for ring in rings:
        ring.stop_agent()


# --------------------------------------------------------------------------- incoming


@dataclass(frozen=True)
class Opened:
    """What the crypto stage found in one message; the secrets are agent-only."""

    queue: str  # the queue whose keyring opened it
    result: crypto.CryptoResult
    seconds: float  # time spent in gpg for this message


def _pgp_queue(config: Config, queue_names: Iterable[str]) -> Queue | None:
    """The first routed queue with `[pgp]`: its keyring opens the message."""
    for name in queue_names:
        q = config.queue(name)
        if q is not None and q.pgp is not None:
            return q
    return None


def _unopened(p: Parsed, raw: bytes, reason: str) -> crypto.CryptoResult:
    """No keyring to open the message with: hide the ciphertext anyway and say why."""
    from mailgate.pgp import crypto

    visible = crypto.SECURED if b"multipart/encrypted" in raw.lower() else crypto.redact(p.text)
    failure = crypto.DecryptedPart("message", False, "", (), raw, reason, None)
    return crypto.CryptoResult(visible, (failure,), None)


def _armored_attachment(p: Parsed) -> bool:
    """Armor the raw bytes hide: inside a base64 attachment (an Autocrypt setup message)."""
    return any(_ARMOR in a.data for a in p.attachments)


def open_incoming(
    config: Config, queue_names: Iterable[str], p: Parsed, raw: bytes
) -> tuple[Parsed, Opened | None]:
    """Decrypt and verify the message with the keyring of its first `[pgp]` queue.

    Returns the Parsed the later stages see (text = the customer-visible text) and the
    Opened to store after the article (None: no PGP, or no queue with `[pgp]`: the message
    goes on untouched). Never raises for bad PGP input.
    """
    from mailgate.pgp import crypto

    queue = _pgp_queue(config, queue_names)
    if queue is None or not (crypto.scan(raw, p.text) or _armored_attachment(p)):
        return p, None
    started = time.perf_counter()
    settings = queue.pgp
    assert settings is not None
    try:
        ring = keyring(settings)
    except (OSError, ValueError, keymgmt.KeyManagementError) as e:
        log.error("queue %s: GnuPG home %s unusable: %s", queue.name, settings.home, e)
        result = _unopened(p, raw, f"queue {queue.name}: GnuPG home unusable: {e}")
    else:
        result = crypto.open_message(raw, p.text, ring, p.from_addr)
    seconds = time.perf_counter() - started
    if not result.has_pgp:
        return p, None
    log.info(
        "pgp: %s: %d part(s), %d failed, signature %s, %.0f ms",
        p.message_id or p.raw_sha256[:12],
        len(result.secrets),
        len(result.failures),
        "none" if result.signature is None else ("valid" if result.signature.valid else "bad"),
        seconds * 1000,
    )
    html = crypto.redact(p.html) if p.html else p.html
    visible = dataclasses.replace(p, text=result.customer_text, html=html)
    return visible, Opened(queue.name, result, seconds)


# --------------------------------------------------------------------------- the ack's hint

_public_keys: dict[tuple[str, str], tuple[float, str]] = {}
PUBLIC_KEY_CACHE_SECONDS = 300.0


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


# --------------------------------------------------------------------------- outgoing


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


def _norm(text: str) -> str:
    return _SPACE.sub(" ", _QUOTE.sub("", text)).strip().lower()


def _visible_text(raw: bytes) -> str:
    """Every text part of a message, decoded (quoted-printable, base64, charsets)."""
    msg = message_from_bytes(raw, policy=default_policy)
    texts: list[str] = [str(msg.get("Subject", ""))]
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        try:
            texts.append(part.get_content())
        except (LookupError, ValueError, AssertionError):
            data = part.get_payload(decode=True)
            texts.append(data.decode("utf-8", "replace") if isinstance(data, bytes) else "")
    return "\n".join(texts)


def leaked_secret(raw: bytes, secret_texts: Iterable[str]) -> bool:
    """Pure: does this mail's visible text carry a decrypted text (or a long line of one)?"""
    haystack = ""
    for secret in secret_texts:
        whole = _norm(secret)
        needles = [whole] if len(whole) >= MIN_LEAK_TEXT else []
        needles += [n for n in map(_norm, secret.splitlines()) if len(n) >= MIN_LEAK_LINE]
        if not needles:
            continue
        if not haystack:
            haystack = _norm(_visible_text(raw))
        if any(n in haystack for n in needles):
            return True
    return False


def _ticket_secrets(engine: Engine, ticket_id: int) -> list[str]:
    from sqlalchemy import select

    from mailgate.db.models import pgp_secrets

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
    from mailgate.pgp import crypto

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
                "(agent-only, design invariant 7); write the answer without it",
                permanent=True,
            )
    queue = _sender_queue(config, raw)
    settings = queue.pgp if queue is not None else None
    if queue is None or settings is None or not settings.encrypt_to_customers:
        return Prepared(raw)
    rcpts = [a for _, a in getaddresses(list(rcpt_tos)) if a]
    try:
        ring = keyring(settings)
        fprs = [ring.public_key_for(r) for r in rcpts]
        if not rcpts or any(f is None for f in fprs):
            return Prepared(raw)
        msg = message_from_bytes(raw, _class=EmailMessage, policy=default_policy)
        assert isinstance(msg, EmailMessage)
        sign = settings.key if settings.sign_outgoing else None
        wanted = [f for f in dict.fromkeys(fprs) if f is not None]
        out = crypto.encrypt_mime(msg, wanted, sign, keyring=ring)
        wire = out.as_bytes(policy=SMTP)
    except (crypto.CryptoError, OSError, ValueError, keymgmt.KeyManagementError) as e:
        log.error("queue %s: encrypting %s mail failed: %s", queue.name, kind, e)
        return Prepared(raw, f"PGP encryption failed: {e}")
    log.info("%s mail to %s encrypted to %s", kind, ", ".join(rcpts), ", ".join(wanted))
    return Prepared(wire, encrypted=True)


__all__ = [
    "CUSTOMER_KINDS",
    "Opened",
    "Prepared",
    "ack_context",
    "group_fingerprint",
    "keyring",
    "leaked_secret",
    "open_incoming",
    "pgp_problems",
    "prepare_outgoing",
    "stop_agents",
]
