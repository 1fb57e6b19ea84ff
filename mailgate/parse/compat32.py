"""The stdlib parser as this stage uses it: compat32, message/* parts kept whole."""

from __future__ import annotations

import logging
from email import policy as email_policy
from email.message import Message
from email.parser import BytesParser

log = logging.getLogger(__name__)

_COMPAT32 = email_policy.compat32


class Compat32Message(Message):
    """compat32 Message; the parser keeps message/* parts whole instead of parsing them."""

    def get_content_maintype(self) -> str:
        """Hide "message" from the feedparser, which recurses into such parts."""
        maintype = super().get_content_maintype()
        return "x-enclosed" if maintype == "message" else maintype


def parse_tree(data: bytes, defects: list[str]) -> Message:
    """The compat32 parse; on failure the header block alone, or an empty message."""
    try:
        return BytesParser(_class=Compat32Message, policy=_COMPAT32).parsebytes(data)
    except Exception as exc:  # RecursionError and friends: fall back to the header block
        log.debug("full parse failed (%r), retrying headers only", exc)
        defects.append(f"MIME structure not parsed ({type(exc).__name__}); header block only")
    try:
        return parse_header_block(data)
    except Exception as exc:
        defects.append(f"header block not parsed ({type(exc).__name__})")
        return Compat32Message()


def parse_header_block(data: bytes) -> Message:
    """The header block of `data` alone (may raise, like the stdlib parser)."""
    return BytesParser(_class=Compat32Message, policy=_COMPAT32).parsebytes(data, headersonly=True)
