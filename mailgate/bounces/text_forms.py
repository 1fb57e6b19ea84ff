"""Bounces without a delivery-status part: what Exim, qmail, Postfix, Sendmail, Gmail, Yahoo,
GMX and others write for a person to read. Pure.

The text is cut where the copy of the returned message begins; recipients and status codes
are read from the part before it, and when it names nobody, from the returned To.
"""

from __future__ import annotations

import re

from mailgate.bounces.report import Recipient, Report

BOUNCE_SUBJECTS = re.compile(
    r"undeliver|undelivered mail|returned mail|delivery (status notification|failure|has failed)"
    r"|mail delivery (failed|failure|system)|failure notice|delivery notification|non.?remis"
    r"|unzustellbar|nicht zustellbar|warning: could not send|delayed mail",
    re.IGNORECASE,
)
# where the copy of the returned message (or its headers) begins
_COPY = re.compile(
    r"^\s*(-{2,}.*(original message|copy of|header of the original|undelivered message"
    r"|returned message|below this line).*|original message follows\.?"
    r"|------ This is a copy of the message.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_FORMS = (
    ("qmail", re.compile(r"this is the qmail-send program", re.I)),
    ("exim", re.compile(r"created automatically by mail delivery software", re.I)),
    ("postfix", re.compile(r"this is the mail system at host", re.I)),
    ("gmail", re.compile(r"delivery to the following recipient|google tried to deliver", re.I)),
    ("yahoo", re.compile(r"unable to deliver your message to the following address", re.I)),
    ("exchange", re.compile(r"delivery has failed to these recipients", re.I)),
    ("sendmail", re.compile(r"the following addresses had permanent", re.I)),
)
_DELAYED = re.compile(
    r"will (continue|keep) trying|not yet been delivered|delivery (is )?delayed|"
    r"still undelivered|no action is required on your part|warning: message",
    re.IGNORECASE,
)
_PERMANENT = re.compile(r"permanent|failed|unknown user|no such user|does not exist", re.I)
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP = re.compile(r"(?<![\d.])([245])\d\d(?=[\s:-])")
_ADDR = re.compile(r"[A-Za-z0-9._%+'=-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def looks_like_bounce(subject: str, body: str) -> bool:
    """A text bounce by its subject, or by the opening words of a known mailer's report."""
    if BOUNCE_SUBJECTS.search(subject or ""):
        return True
    head = body[:3000]
    return any(p.search(head) for _, p in _FORMS)


def _split(body: str) -> str:
    m = _COPY.search(body)
    return body[: m.start()] if m else body[:4000]


def _status(text: str) -> str:
    m = _ENHANCED.search(text)
    if m:
        return ".".join(m.groups())
    s = _SMTP.search(text)
    return f"{s.group(1)}.0.0" if s else ""


def _diagnostic(human: str, address: str) -> str:
    """The lines after the recipient's address (or the whole notice when it names none)."""
    at = human.find(address) if address else -1
    text = human[at + len(address) :] if at != -1 else human
    lines = [ln.strip(" \t>:") for ln in text.splitlines() if ln.strip(" \t>:")]
    return " ".join(" ".join(lines[:4]).split())[:500]


def read_text_bounce(
    body: str, subject: str, returned_ids: tuple[str, ...], returned_to: tuple[str, ...]
) -> Report:
    human = _split(body.replace("\r\n", "\n"))
    form = next((name for name, p in _FORMS if p.search(human)), "text")
    delayed = bool(_DELAYED.search(human)) or "delay" in subject.lower()
    found = [a.lower().rstrip(".") for a in _ADDR.findall(human)]
    # the daemon's own addresses are not the recipient that failed
    found = [a for a in found if a.split("@")[0] not in ("mailer-daemon", "postmaster")]
    addresses = list(dict.fromkeys(found)) or list(returned_to)
    recipients = []
    for addr in addresses[:50]:
        diag = _diagnostic(human, addr)
        status = _status(diag) or _status(human)
        action = "delayed" if delayed and not status.startswith("5") else "failed"
        if not status and _PERMANENT.search(human) and action == "failed":
            status = "5.0.0"
        recipients.append(Recipient(addr, action, status, diag))
    kind = "delay" if recipients and all(r.action == "delayed" for r in recipients) else "bounce"
    return Report(kind, form, tuple(recipients), returned_ids, returned_to)
