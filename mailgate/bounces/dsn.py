"""Read a bounce or another machine report from the raw message. Pure.

RFC 3464 delivery status notifications (and RFC 6533's global ones), RFC 8098 read
receipts, RFC 5965 complaint reports, RFC 8460 TLS reports; everything else a mailer daemon
writes is read by text_forms.py (Exim, qmail, Postfix without DSN, Gmail, Yahoo ...).
Bounces are rare: this parses the raw bytes again (compat32) rather than widening Parsed.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import Message
from email.parser import HeaderParser
from email.utils import collapse_rfc2231_value

from mailgate.bounces.report import Kind, Recipient, Report
from mailgate.bounces.text_forms import looks_like_bounce, read_text_bounce

STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
RETURNED_MESSAGE_TYPES = ("message/rfc822", "message/global")
RETURNED_HEADER_TYPES = (
    "text/rfc822-headers",
    "message/rfc822-headers",
    "message/global-headers",
)
_ACTION = {"failed", "delayed", "delivered", "relayed", "expanded"}
_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_MID = re.compile(r"^(?:original-)?message-id:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_ADDR = re.compile(r"[^\s<>;,\"]+@[^\s<>;,\"]+")


def _h(m: Message, name: str) -> str:
    """A header as text: compat32 gives a Header object for undecodable bytes."""
    v = m.get(name)
    return "" if v is None else str(v)


def _text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # the stdlib splits message/* into sub-messages
        return "\n\n".join(p.as_string() for p in payload if isinstance(p, Message))
    data = part.get_payload(decode=True) or b""
    if not isinstance(data, bytes):
        return str(data)
    try:
        return data.decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:  # an unknown charset name
        return data.decode("utf-8", "replace")


def _blocks(text: str) -> list[Message]:
    text = text.replace("\r\n", "\n")
    return [
        HeaderParser().parsestr(b.strip() + "\n") for b in re.split(r"\n\s*\n", text) if b.strip()
    ]


def _address(field: str) -> str:
    """`rfc822; <a@b>` -> a@b."""
    m = _ADDR.search(field.partition(";")[2] or field)
    return m.group(0).strip("<>.").lower() if m else ""


def _recipients(status_text: str) -> list[Recipient]:
    out = []
    for b in _blocks(status_text):
        addr = _address(_h(b, "final-recipient") or _h(b, "original-recipient"))
        if not addr:
            continue
        action = _h(b, "action").strip().lower().split()[0:1]
        status = _ENHANCED.search(_h(b, "status"))
        diag = " ".join(_h(b, "diagnostic-code").split())
        act = action[0] if action and action[0] in _ACTION else "failed"
        out.append(
            Recipient(
                addr, act, status.group(1) if status else "", diag.partition(";")[2].strip() or diag
            )
        )
    return out


def _returned(msg: Message, body: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Message-IDs and To/Cc of the returned message (its part, or copied into the text)."""
    headers: list[Message] = []
    for part in msg.walk():
        ct = part.get_content_type()
        if ct in RETURNED_MESSAGE_TYPES:
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                headers.append(payload[0])
            else:
                headers.extend(_blocks(_text(part))[:1])
        elif ct in RETURNED_HEADER_TYPES:
            headers.extend(_blocks(_text(part))[:1])
    ids = [_h(h, "message-id").strip() for h in headers]
    ids += _MID.findall(body)
    to = [a.lower() for h in headers for f in ("to", "cc") for a in _ADDR.findall(_h(h, f))]
    clean = dict.fromkeys(i for i in ids if i.startswith("<") and i.endswith(">"))
    return tuple(clean), tuple(dict.fromkeys(a.strip("<>") for a in to))


def _body_text(raw: bytes) -> str:
    cut = raw.find(b"\n\n")
    return raw[cut:].decode("utf-8", "replace") if cut != -1 else ""


def _kind(msg: Message, types: set[str]) -> Kind | None:
    report_type = (
        collapse_rfc2231_value(msg.get_param("report-type") or "").lower()
        if msg.get_content_type() == "multipart/report"
        else ""
    )
    if types & set(STATUS_TYPES):
        return "bounce"
    if "message/disposition-notification" in types or report_type == "disposition-notification":
        return "mdn"
    if "message/feedback-report" in types or report_type == "feedback-report":
        return "complaint"
    if report_type == "tlsrpt" or any(t.startswith("application/tlsrpt") for t in types):
        return "tlsrpt"
    return None


def read_report(raw: bytes, *, bounce_hint: bool = False) -> Report | None:
    """The report this message is, or None (a message a person wrote).

    `bounce_hint`: the classifier saw a bounce sender (null Return-Path, MAILER-DAEMON);
    without it a plain-text message is read as a bounce only by its subject and text."""
    msg = message_from_bytes(raw, policy=policy.compat32)
    types = {p.get_content_type() for p in msg.walk()}
    kind = _kind(msg, types)
    body = _body_text(raw.replace(b"\r\n", b"\n"))
    ids, to = _returned(msg, body)
    if kind is None:
        if not (bounce_hint or looks_like_bounce(_h(msg, "subject"), body)):
            return None
        return read_text_bounce(body, _h(msg, "subject"), ids, to)
    recipients: list[Recipient] = []
    for part in msg.walk():
        if part.get_content_type() in STATUS_TYPES:
            recipients += _recipients(_text(part) if part is not msg else body)
    if kind == "bounce":
        actions = {r.action for r in recipients}
        if actions and actions <= {"delayed"}:
            kind = "delay"
        elif actions and actions <= {"delivered", "relayed", "expanded"}:
            kind = "delivered"
    return Report(
        kind,
        "rfc3464" if kind in ("bounce", "delay", "delivered") else kind,
        tuple(recipients),
        ids,
        to,
    )
