"""SMTPUTF8 (RFC 6531) for outgoing mail: needed when an address or a header is not ASCII.

The relay must offer the extension; without it such mail is not sent (a relay would
refuse the UTF-8 address anyway), and the reason is noted on the ticket.
"""

from __future__ import annotations

import smtplib


def _header_block(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    return raw if end < 0 else raw[:end]


def needs_smtputf8(mail_from: str, rcpts: list[str], raw: bytes) -> bool:
    """True if the envelope or the header block carries non-ASCII text."""
    return not (
        mail_from.isascii() and all(r.isascii() for r in rcpts) and _header_block(raw).isascii()
    )


def mail_options(smtp: smtplib.SMTP, mail_from: str, rcpts: list[str], raw: bytes) -> list[str]:
    """The MAIL FROM options for this message; raise `Smtputf8Missing` if the relay lacks it."""
    if not needs_smtputf8(mail_from, rcpts, raw):
        return []
    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn("smtputf8"):
        wide = [a for a in [mail_from, *rcpts] if not a.isascii()]
        who = ", ".join(wide) if wide else "a UTF-8 header"
        raise Smtputf8Missing(
            f"not sent: {who} needs SMTPUTF8 (RFC 6531) and the relay does not offer it"
        )
    options = ["SMTPUTF8"]
    if smtp.has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
    return options


class Smtputf8Missing(Exception):
    """The message needs SMTPUTF8 and the relay does not offer it: held for an admin."""
