"""mail-parser as a second opinion on the body, when our own MIME walk fails on a message.

Such a failure is a bug, not a policy, so the message still yields text, HTML and
attachments. (In that rare path mail-parser may log through its own ``mailparser`` logger.)
"""

from __future__ import annotations

import binascii
import logging
from email.message import Message

from mailgate.parse.attachments import Attachment
from mailgate.parse.html_text import html_to_text
from mailgate.parse.limits import ParseLimits

log = logging.getLogger(__name__)


def mailparser_body(
    msg: Message, limits: ParseLimits, defects: list[str]
) -> tuple[str, str, list[Attachment]]:
    """Second opinion from mail-parser when our walk failed; empty body if it fails too."""
    try:
        import mailparser

        mp = mailparser.MailParser(msg)
        html = (mp.text_html[0] if mp.text_html else "")[: limits.max_text_chars]
        text = mp.text_plain[0] if mp.text_plain else html_to_text(html)
        attachments = []
        for i, att in enumerate(mp.attachments[: limits.max_parts], start=1):
            payload = att.get("payload") or ""
            if att.get("binary"):
                data = binascii.a2b_base64(payload)
            else:
                data = payload.encode("utf-8", "surrogateescape")
            ctype = str(att.get("mail_content_type") or "application/octet-stream").lower()
            cid = str(att.get("content-id") or "").strip().strip("<>")
            disp = str(att.get("content-disposition") or "").lower()
            inline = disp.startswith("inline") or (not disp and bool(cid))
            name = str(att.get("filename") or "")
            attachments.append(Attachment.create(name, i, ctype, data, cid, inline))
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
        return text[: limits.max_text_chars], html, attachments
    except Exception as exc:
        log.debug("mail-parser failed too: %r", exc)
        defects.append(f"mail-parser failed too ({type(exc).__name__}); body not extracted")
        return "", "", []
