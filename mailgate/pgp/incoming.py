"""The incoming PGP stage: open a routed message with the keyring of its first `[pgp]` queue.

Called by the worker right after routing. A message without PGP markers costs a byte
search; one with them is opened (opener.open_message) and goes on with its text replaced
by the customer-visible text, where every encrypted block reads ``| secured information |``.
The decrypted parts travel apart in `Opened` and are stored by store.pgp_secrets.save.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable

from mailgate.config.model import Config, Queue
from mailgate.parse.message import Parsed
from mailgate.pgp import keys as keymgmt
from mailgate.pgp.armor import BEGIN_MESSAGE, redact, scan
from mailgate.pgp.keyring import Keyrings
from mailgate.pgp.opener import open_message
from mailgate.pgp.results import Opened, unopened

log = logging.getLogger(__name__)


def _pgp_queue(config: Config, queue_names: Iterable[str]) -> Queue | None:
    """The first routed queue with `[pgp]`: its keyring opens the message."""
    for name in queue_names:
        q = config.queue(name)
        if q is not None and q.pgp is not None:
            return q
    return None


def _armored_attachment(p: Parsed) -> bool:
    """Armor the raw bytes hide: inside a base64 attachment (an Autocrypt setup message)."""
    armor = BEGIN_MESSAGE.encode()
    return any(armor in a.data for a in p.attachments)


def open_incoming(
    config: Config, queue_names: Iterable[str], p: Parsed, raw: bytes, keyrings: Keyrings
) -> tuple[Parsed, Opened | None]:
    """Decrypt and verify the message with the keyring of its first `[pgp]` queue.

    Returns the Parsed the later stages see (text = the customer-visible text) and the
    Opened to store after the article (None: no PGP, or no queue with `[pgp]`: the message
    goes on untouched). Never raises for bad PGP input.
    """
    queue = _pgp_queue(config, queue_names)
    if queue is None or not (scan(raw, p.text) or _armored_attachment(p)):
        return p, None
    started = time.perf_counter()
    settings = queue.pgp
    assert settings is not None  # _pgp_queue picks a queue with [pgp]
    try:
        ring = keyrings.get(settings.home, settings.passphrase())
    except (OSError, ValueError, keymgmt.KeyManagementError) as e:
        log.error("queue %s: GnuPG home %s unusable: %s", queue.name, settings.home, e)
        result = unopened(raw, p.text, f"queue {queue.name}: GnuPG home unusable: {e}")
    else:
        result = open_message(raw, p.text, ring, p.from_addr)
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
    html = redact(p.html) if p.html else p.html
    visible = dataclasses.replace(p, text=result.customer_text, html=html)
    return visible, Opened(queue.name, result, seconds)
