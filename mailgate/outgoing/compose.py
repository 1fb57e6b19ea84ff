"""Build outgoing messages as bytes: headers set in code, never by templates. Pure."""

from __future__ import annotations

import base64
import hashlib
import quopri
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr
from functools import lru_cache
from urllib.parse import quote

from mailgate.outgoing.encoded_words import UTF8

LOOP_HEADER = "X-Mailgate-Loop"
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")
_CID_RE = re.compile(r"""src=["']cid:([^"']+)["']""", re.I)
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|fwd?|antw)\s*:\s*)+", re.I)
_TAG = re.compile(r"\[[^\]]*#\d+\]\s*")


@dataclass(frozen=True)
class Outgoing:
    """One message for the outbox."""

    kind: str
    mail_from: str  # the queue address: the sender makes it the row's VERP address; "" null
    rcpt_tos: tuple[str, ...]
    message_id: str
    raw: bytes
    ticket_id: int | None = None


@dataclass(frozen=True)
class OutAttachment:
    """A file an outgoing mail carries (an inline image keeps its Content-ID)."""

    filename: str
    content_type: str
    data: bytes
    content_id: str = ""
    inline: bool = False


def stable_message_id(hostname: str, kind: str, *cause: object) -> str:
    """A Message-ID derived from what caused the mail: re-running the cause gives the same id."""
    digest = hashlib.sha256("\x1f".join(map(str, cause)).encode()).hexdigest()[:24]
    return f"<mailgate.{kind}.{digest}@{hostname}>"


def header_text(value: str) -> str:
    """Make untrusted text safe for one header line (no CR/LF/control characters)."""
    if value.isprintable():  # no control character in it: the regex would find none
        return value.strip()
    return _UNSAFE.sub(" ", value).strip()


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


_utc_second: tuple[tuple[int, ...], str] = ((), "")  # the UTC second last formatted, its header


def date_header(dt: datetime) -> str:
    """`email.utils.format_datetime(dt)` at a third of its cost (its `strftime("%z")` is
    half of it): the zone from utcoffset when it is whole minutes, else as it does. The
    daemon's clock is UTC: its last second's header is kept (the mails of a burst share it)."""
    global _utc_second
    if dt.tzinfo is UTC:
        second = (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second)
        kept = _utc_second  # one read: another thread may put its own second meanwhile
        if kept[0] == second:
            return kept[1]
        text = _formatted(dt)
        _utc_second = (second, text)
        return text
    return _formatted(dt)


def _formatted(dt: datetime) -> str:
    """The Date header of `dt`, as `format_datetime` writes it."""
    offset = dt.utcoffset()
    if offset is None or offset.seconds % 60 or offset.microseconds:
        return format_datetime(dt)
    minutes = offset.days * 1440 + offset.seconds // 60
    sign, minutes = ("-", -minutes) if minutes < 0 else ("+", minutes)
    return "%s, %02d %s %04d %02d:%02d:%02d %s%02d%02d" % (  # noqa: UP031 - as email.utils
        _DAYS[dt.weekday()],
        dt.day,
        _MONTHS[dt.month - 1],
        dt.year,
        dt.hour,
        dt.minute,
        dt.second,
        sign,
        *divmod(minutes, 60),
    )


def _encode_header(value: str) -> str:
    value = header_text(value)
    if value.isascii():
        return value
    return Header(value, UTF8, maxlinelen=76).encode()  # as Header(value, "utf-8"), faster


@lru_cache(maxsize=4096)  # pure; the queue's From, the agents' To: the same every mail
def _address(name: str, addr: str) -> str:
    name, addr = header_text(name), header_text(addr)
    if not name:
        return addr
    if not name.isascii():  # as formataddr encodes a name, without its UnicodeEncodeError
        return f"{UTF8.header_encode(name)} <{addr}>"
    if addr.isascii():
        return formataddr((name, addr), charset=UTF8)
    # RFC 6532: formataddr refuses a UTF-8 address, so the name is quoted alone
    display = formataddr((name, "x@x"), charset=UTF8)[: -len(" <x@x>")]
    return f"{display} <{addr}>"


def _body(text: str) -> tuple[str, bytes]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    # no line of 990 characters or more (none can be when the whole text is shorter)
    if text.isascii() and (len(text) < 990 or max(map(len, text.split("\n"))) < 990):
        return "7bit", text.replace("\n", "\r\n").encode("ascii")
    encoded = quopri.encodestring(text.encode("utf-8")).replace(b"\n", b"\r\n")
    return "quoted-printable", encoded


def compose(
    *,
    from_addr: str,
    from_name: str,
    to: tuple[tuple[str, str], ...],
    subject: str,
    body: str,
    message_id: str,
    date: datetime,
    hostname: str,
    in_reply_to: str = "",
    references: tuple[str, ...] = (),
    reply_to: str = "",
    cc: tuple[str, ...] = (),
    auto_submitted: str = "auto-replied",
    extra: tuple[tuple[str, str], ...] = (),
    attachments: tuple[OutAttachment, ...] = (),
    html: str = "",
) -> bytes:
    """RFC 5322 bytes, CRLF line ends; every message carries Auto-Submitted and a loop header.
    With attachments: multipart/mixed, the text first. With `html` (already safe): the text
    and the HTML as multipart/alternative, inside multipart/related with the inline images
    the HTML shows by cid:, inside multipart/mixed with the other files."""
    cte, payload = _body(body)
    lines = [
        f"From: {_address(from_name, from_addr)}",
        "To: " + ", ".join(_address(n, a) for n, a in to),
    ]
    if cc:
        lines.append("Cc: " + ", ".join(cc))
    lines += [
        f"Subject: {_encode_header(subject)}",
        f"Date: {date_header(date)}",
        f"Message-ID: {message_id}",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append("References: " + "\r\n ".join(references[-20:]))
    if reply_to:
        lines.append(f"Reply-To: {reply_to}")
    lines += [
        f"Auto-Submitted: {auto_submitted}",
        f"{LOOP_HEADER}: {hostname}",
        "MIME-Version: 1.0",
    ]
    text_headers = f'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}'
    extra_lines = [f"{k}: {_encode_header(v)}" for k, v in extra]
    if html:
        ctype, body = _html_entity(
            message_id, text_headers.encode("ascii") + b"\r\n\r\n" + payload, html, attachments
        )
        head = "\r\n".join([*lines, ctype, *extra_lines])
        return (head + "\r\n\r\n").encode("utf-8") + body
    if not attachments:
        head = "\r\n".join([*lines, text_headers, *extra_lines])
        # only an internationalised address makes a header non-ASCII (RFC 6532 UTF-8 headers)
        return (head + "\r\n\r\n").encode("utf-8") + payload
    boundary = "=_mailgate_" + hashlib.sha256(message_id.encode()).hexdigest()[:24]
    head = "\r\n".join(
        [*lines, f'Content-Type: multipart/mixed; boundary="{boundary}"', *extra_lines]
    )
    parts = [f"--{boundary}\r\n{text_headers}\r\n\r\n".encode("ascii") + payload]
    parts += [_attachment_part(boundary, a) for a in attachments]
    return (
        (head + "\r\n\r\n").encode("utf-8")
        + b"\r\n".join(parts)
        + f"\r\n--{boundary}--\r\n".encode("ascii")
    )


def _html_entity(
    message_id: str, text_part: bytes, html: str, attachments: tuple[OutAttachment, ...]
) -> tuple[str, bytes]:
    """(Content-Type line, body) of alternative(text, html) [in related] [in mixed]."""
    base = "=_mailgate_" + hashlib.sha256(message_id.encode()).hexdigest()[:24]
    cte, payload = _body(html)
    html_part = (
        f'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'
    ).encode("ascii") + payload
    ctype, body = _multipart(f"{base}_alt", "alternative", [text_part, html_part])
    shown = shown_cids(html)
    related = [a for a in attachments if a.content_id and a.content_id.strip("<>") in shown]
    if related:
        inner = ctype.encode("ascii") + b"\r\n\r\n" + body
        parts = [_attachment_part(f"{base}_rel", a, inline=True) for a in related]
        ctype, body = _multipart(f"{base}_rel", "related", [inner], parts)
    rest = [a for a in attachments if a not in related]
    if rest:
        inner = ctype.encode("ascii") + b"\r\n\r\n" + body
        parts = [_attachment_part(f"{base}_mix", a) for a in rest]
        ctype, body = _multipart(f"{base}_mix", "mixed", [inner], parts)
    return ctype, body


def shown_cids(html: str) -> set[str]:
    """The Content-IDs an HTML body shows (`<img src="cid:...">`), without angle brackets."""
    return {m.strip("<>") for m in _CID_RE.findall(html)}


def _multipart(
    boundary: str, subtype: str, entities: list[bytes], parts: list[bytes] | None = None
) -> tuple[str, bytes]:
    """A multipart body from whole entities (headers + body) and ready `--boundary` parts."""
    chunks = [f"--{boundary}\r\n".encode("ascii") + e for e in entities] + (parts or [])
    body = b"\r\n".join(chunks) + f"\r\n--{boundary}--\r\n".encode("ascii")
    return f'Content-Type: multipart/{subtype}; boundary="{boundary}"', body


def _attachment_part(boundary: str, a: OutAttachment, inline: bool = False) -> bytes:
    """One base64 part; the file name RFC 2231-encoded when it is not ASCII."""
    name = header_text(a.filename).replace('"', "'") or "attachment"
    param = f'filename="{name}"' if name.isascii() else f"filename*=utf-8''{quote(name, safe='')}"
    ctype = header_text(a.content_type) or "application/octet-stream"
    headers = [
        f"--{boundary}",
        f"Content-Type: {ctype}" + (f'; name="{name}"' if name.isascii() else ""),
        "Content-Transfer-Encoding: base64",
        f"Content-Disposition: {'inline' if a.inline or inline else 'attachment'}; {param}",
    ]
    cid = header_text(a.content_id).strip("<>")
    if cid:
        headers.append(f"Content-ID: <{cid}>")
    encoded = base64.encodebytes(a.data).replace(b"\n", b"\r\n")
    return ("\r\n".join(headers) + "\r\n\r\n").encode("ascii") + encoded


def reply_subject(subject: str, tag: str) -> str:
    """`[support #12] Printer broken` from a customer's subject: one tag, no Re: chain."""
    s = _TAG.sub("", _REPLY_PREFIX.sub("", header_text(subject))).strip()
    return f"{tag} {s}".strip() if s else tag
