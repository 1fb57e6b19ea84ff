"""SMTP/LMTP intake (aiosmtpd) attached to the daemon's own event loop.

Unknown recipients are refused at RCPT (550). A message is answered 250 only after the
spool write returned; any internal error answers 451 so the sending MTA retries — never
500, which would bounce the customer's mail. In LMTP mode every recipient gets its own
reply after DATA (RFC 2033); one spool write covers them all, so they succeed or fail
together. SMTPUTF8 is advertised (RFC 6531 addresses), and lines longer than RFC 5321's
1,000 octets are taken, as real MTAs take them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from mailgate.bounces.verp import verp_row
from mailgate.config.model import Config
from mailgate.pollers.smtp_path import simple_path
from mailgate.spool import Envelope, Spool

log = logging.getLogger(__name__)


class IntakeHandler:
    """aiosmtpd handler: validate recipients, spool the data, then acknowledge."""

    def __init__(
        self, config: Config, spool: Spool, on_spooled: Callable[[], None], lmtp: bool = False
    ):
        self.config = config
        self.spool = spool
        self.on_spooled = on_spooled
        self.lmtp = lmtp
        self.in_flight = 0

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: SmtpEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.config.queue_for_address(address) is None and not self._our_verp(address):
            log.info("smtp: refused RCPT %s from %s: no such queue", address, session.peer)
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    def _our_verp(self, address: str) -> bool:
        """A bounce's recipient: the VERP address of one of our outbox rows (MAC checked)."""
        domains = {q.address.rpartition("@")[2] for q in self.config.queues}
        ours = address.lower().rpartition("@")[2] in domains
        return ours and verp_row(self.config.secret, address) is not None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        raw = envelope.original_content or b""
        self.in_flight += 1
        try:
            env = Envelope(
                source="lmtp" if self.lmtp else "smtp",
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
            )
            try:
                name = await asyncio.to_thread(self.spool.put, raw, env)
            except Exception:  # noqa: BLE001 - not durable: the sender must retry
                log.exception("smtp: spool write failed; answering 451")
                reply = "451 4.3.0 Temporary failure storing the message, try again later"
                return self._per_rcpt(envelope, reply)
        finally:
            self.in_flight -= 1
        log.info(
            "smtp: spooled %s (%d bytes) from <%s> for %s",
            name,
            len(raw),
            envelope.mail_from,
            ", ".join(envelope.rcpt_tos),
        )
        self.on_spooled()
        return self._per_rcpt(envelope, f"250 2.0.0 Ok: queued as {name}")

    def _per_rcpt(self, envelope: SmtpEnvelope, reply: str) -> str:
        if self.lmtp:
            return "\r\n".join([reply] * max(1, len(envelope.rcpt_tos)))
        return reply

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp: internal error: %r", error, exc_info=error)
        return "451 4.3.0 Internal error, try again later"


class FastPaths:
    """Mixed into aiosmtpd's SMTP/LMTP: a simple path is read without RFC 5322's parser
    (pollers/smtp_path.py), anything else by aiosmtpd as before."""

    local_part_limit: int

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        found = simple_path(arg, self.local_part_limit)
        return found if found is not None else super()._getaddr(arg)  # type: ignore[misc]


async def start_listener(
    config: Config, spool: Spool, on_spooled: Callable[[], None]
) -> tuple[asyncio.AbstractServer, IntakeHandler]:
    """Listen on the configured host/port; returns the server and its handler."""
    s = config.listener
    lmtp = s.mode == "lmtp"
    handler = IntakeHandler(config, spool, on_spooled, lmtp=lmtp)
    kwargs: dict[str, Any] = {
        "data_size_limit": s.max_message_bytes,
        "enable_SMTPUTF8": True,
        "decode_data": False,
        "hostname": config.main.hostname,
        "timeout": s.timeout_seconds,
    }
    # real MTAs pass lines over RFC 5321's 1,000 (Postfix splits them at 2,048): take any
    # line within the size limit rather than answer aiosmtpd's permanent "500 Line too long";
    # twice the limit, so a single line over the size limit still gets 552 (too much data)
    limit = 2 * max(s.max_message_bytes, 1 << 20) + 2
    protocol = type("Intake", (FastPaths, LMTP if lmtp else SMTP), {"line_length_limit": limit})

    def factory() -> SMTP:
        return protocol(handler, **kwargs)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host=s.host, port=s.port)
    return server, handler
