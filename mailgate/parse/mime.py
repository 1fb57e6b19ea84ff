"""The MIME walk: picks the body text and HTML, collects every other part as an attachment."""

from __future__ import annotations

import logging
import quopri
from email.message import Message

from mailgate.parse.attachments import Attachment
from mailgate.parse.boundaries import reread_multipart
from mailgate.parse.charsets import decode_bytes
from mailgate.parse.enclosed import ENCLOSED_MESSAGES, enclosed_bytes, enclosed_subject
from mailgate.parse.html_text import html_to_text
from mailgate.parse.limits import ParseLimits
from mailgate.parse.part_headers import PartHead, part_charset, part_filename, read_part_head

log = logging.getLogger(__name__)

_BODY_TYPES = frozenset({"text/plain", "text/html"})
# the transfer encodings Message.get_payload(decode=True) decodes but quoted-printable (it
# keeps any other as is)
_QP = "quoted-printable"
_STDLIB_CTES = frozenset({"base64", "x-uuencode", "uuencode", "uue", "x-uue"})


class Body:
    """Walks the MIME tree within the limits and collects text, html and attachments."""

    def __init__(self, limits: ParseLimits, defects: list[str]):
        """Start an empty walk."""
        self.limits = limits
        self.defects = defects
        self.text: str | None = None
        self.html: str | None = None
        self.attachments: list[Attachment] = []

    def walk(self, root: Message) -> None:
        """Depth-first walk in document order, bounded by max_parts and max_depth."""
        stack: list[tuple[Message, str, int]] = [(root, "", 0)]
        count = 0
        deep_noted = False
        while stack:
            part, path, depth = stack.pop()
            count += 1
            if count > self.limits.max_parts:
                self.defects.append(f"too many parts: kept first {self.limits.max_parts}")
                break
            where = f"part {path}" if path else "message"
            ctype = "?"
            try:
                head = read_part_head(part)
                ctype = head.ctype
                children = None
                if ctype.startswith("multipart/") and not part.is_multipart():
                    children = reread_multipart(part, ctype, self.defects) or None
                if (children or part.is_multipart()) and not ctype.startswith("message/"):
                    if depth >= self.limits.max_depth:
                        if not deep_noted:
                            self.defects.append(
                                f"nesting too deep: parts below depth {self.limits.max_depth} "
                                "skipped"
                            )
                            deep_noted = True
                    else:
                        children = children or part.get_payload()
                        for i in range(len(children) - 1, -1, -1):
                            if isinstance(children[i], Message):
                                child_path = f"{path}.{i + 1}" if path else str(i + 1)
                                stack.append((children[i], child_path, depth + 1))
                elif ctype.startswith("message/"):
                    self._message(part, head)
                else:
                    self._leaf(part, head, where)
            except Exception as exc:  # one bad part must not cost the others
                log.debug("part %s failed: %r", where, exc)
                self.defects.append(f"{where} ({ctype}) skipped: {type(exc).__name__}: {exc}")
            for defect in getattr(part, "defects", ()):
                self.defects.append(f"{type(defect).__name__} in {where} ({ctype})")

    def _leaf(self, part: Message, head: PartHead, where: str) -> None:
        """Classify one non-multipart part as body text, html or attachment."""
        ctype, disposition = head.ctype, head.disposition
        filename = part_filename(part, head, self.defects)
        body_type = ctype if ctype in _BODY_TYPES else None
        if ctype.startswith("multipart/"):  # declared multipart without usable boundary
            payload = part.get_payload()
            if isinstance(payload, str) and not payload.strip():
                return  # an empty one (a nested multipart reusing its parent's boundary)
            body_type = "text/plain"
        if disposition == "attachment" or filename or body_type is None:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            self._attach(head, filename, data)
            return
        if body_type == "text/plain" and self.text is None:
            self.text = self._decode_text(part, head, where)
        elif body_type == "text/html" and self.html is None:
            self.html = self._decode_text(part, head, where)
        else:  # a further inline text part: kept as an inline attachment, not lost
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            self._attach(head, filename, data, inline=True)

    def _decode_text(self, part: Message, head: PartHead, where: str) -> str:
        """Transfer-decode and charset-decode a text part; LF line ends; no NUL."""
        data = _payload_bytes(part, head)
        if not isinstance(data, bytes):
            data = b""
        text = decode_bytes(data, part_charset(part, head), where, self.defects)
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\x00" in text:
            text = text.replace("\x00", "")
        return text

    def _message(self, part: Message, head: PartHead) -> None:
        """Keep an enclosed message/* part whole, as an attachment (not walked for the body)."""
        data = enclosed_bytes(part, self.defects)
        name = part_filename(part, head, self.defects)
        if (not name or name.startswith(".")) and head.ctype in ENCLOSED_MESSAGES:
            subject = enclosed_subject(data, self.defects)
            name = f"{subject}.eml" if subject else name
        self._attach(head, name, data)

    def _attach(self, head: PartHead, name: str, data: bytes, inline: bool = False) -> None:
        """Record one attachment (its file name cleaned)."""
        index = len(self.attachments) + 1
        disposition, content_id = head.disposition, head.content_id
        inline = inline or disposition == "inline" or (disposition is None and bool(content_id))
        self.attachments.append(
            Attachment.create(name, index, head.ctype, data, content_id, inline)
        )

    def result(self) -> tuple[str, str, list[Attachment]]:
        """Best text, html and the attachments, truncated to max_text_chars."""
        limit = self.limits.max_text_chars
        html = self.html or ""
        if len(html) > limit:
            self.defects.append(f"html truncated at {limit} chars")
            html = html[:limit]
        text = self.text or ""
        if html and not text.strip():  # no (or an empty) text/plain: render the HTML
            text = html_to_text(html)
        if len(text) > limit:
            self.defects.append(f"text truncated at {limit} chars")
            text = text[:limit]
        return text, html, self.attachments


def _payload_bytes(part: Message, head: PartHead) -> object:
    """`part.get_payload(decode=True)`: a text payload in a transfer encoding it keeps as is,
    or quoted-printable, encoded (and decoded) here as it does, without its lookup of the
    header and its test for surrogates (an exception for every 8-bit text); anything else,
    base64 too (it records defects on the part), by the stdlib."""
    payload = part._payload  # (what get_payload reads; it is not a list: a leaf)
    given = head.transfer_encoding or ""
    cte = given.lower()
    if isinstance(payload, str) and given.isascii() and cte not in _STDLIB_CTES:
        try:  # (ASCII with escaped bytes only: else the stdlib's other encoding, or its error)
            data = payload.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:
            return part.get_payload(decode=True)
        return quopri.decodestring(data) if cte == _QP else data
    return part.get_payload(decode=True)
