"""Mail no person wrote: a bounce or report is attached to the ticket of the message it
reports (or quarantined), an unthreaded auto-reply or a spam verdict is quarantined.

Called by steps.py (`bounce`, `junk` steps). Nothing here sends mail: a bounce becomes
a system article on its ticket (the agents read it in their next notification or
digest), a bounced address pauses automatic mail (store/addresses.py), and junk waits
in the quarantine (`mailgate junk list|show|release`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from mailgate.bounces.dsn import read_report
from mailgate.bounces.match import Match, match
from mailgate.bounces.report import Recipient, Report
from mailgate.bounces.report_hint import has_report_part
from mailgate.bounces.verp import VERP_LOCAL, is_verp_shaped
from mailgate.config.model import Config, Queue
from mailgate.parse.authentication import SenderAuth
from mailgate.parse.message import Parsed
from mailgate.pipeline.classify import Verdict
from mailgate.pipeline.delivered_to import header_recipients
from mailgate.pipeline.digests import dedupe_key
from mailgate.pipeline.outcome import Outcome
from mailgate.pipeline.prepare import Prepared
from mailgate.spool import Envelope
from mailgate.store.addresses import record_report
from mailgate.store.articles import add_article, find_duplicate, put_blob
from mailgate.store.bounce_lookups import lookups
from mailgate.store.junk import add_junk, is_released


@dataclass(frozen=True)
class Incoming:
    """The message as the steps have it so far."""

    envelope: Envelope
    parsed: Parsed
    raw: bytes
    queues: tuple[str, ...]
    now: datetime


def verp_candidates(
    envelope: Envelope, p: Parsed, recipients_ahead: tuple[str, ...] | None = None
) -> list[str]:
    """Where a VERP address shows: the envelope, or (IMAP, pipe) the delivery headers;
    `recipients_ahead` is `header_recipients(p)` when known (worked out ahead)."""
    headers = header_recipients(p) if recipients_ahead is None else recipients_ahead
    rcpts = [a.lower() for a in envelope.rcpt_tos if "@" in a]
    return list(dict.fromkeys((*rcpts, *headers)))


def verp_queue(config: Config, envelope: Envelope, p: Parsed) -> Queue | None:
    """The queue of a VERP recipient's domain (its bounce names no queue address)."""
    for a in verp_candidates(envelope, p):
        if is_verp_shaped(a):
            domain = a.rpartition("@")[2]
            return next(
                (q for q in config.queues if q.address.rpartition("@")[2] == domain),
                config.queues[0],
            )
    return None


def _recipients(report: Report, m: Match) -> list[Recipient]:
    named = [r for r in report.recipients if r.action in ("failed", "delayed")]
    if named or report.recipients or m.sent is None or len(m.sent.rcpt_tos) != 1:
        return named
    return [Recipient(m.sent.rcpt_tos[0], "failed", "", "the report names no recipient")]


def _article_text(report: Report, m: Match, paused: list[str]) -> str:
    about = f" for {m.sent.message_id}" if m.sent else ""
    lines = [
        f"Delivery report ({report.kind}, read as {report.form}){about}, "
        f"matched by {m.method}: {m.reason}.",
        report.summary(),
    ]
    if paused:
        lines.append("Automatic mail paused: " + "; ".join(paused) + ".")
    return "\n".join(lines)


def quarantine(conn: Connection, mail: Incoming, category: str, reason: str) -> Outcome:
    p = mail.parsed
    created = add_junk(
        conn,
        category=category,
        reason=reason,
        raw=mail.raw,
        raw_sha256=p.raw_sha256,
        from_addr=p.from_addr,
        subject=p.subject,
        message_id=p.message_id,
        queues=mail.queues,
        envelope=json.loads(mail.envelope.to_json()),
        now=mail.now,
    )
    return Outcome(0, None, "junk" if created else "duplicate", mail.queues, False)


def handle_report(
    conn: Connection,
    config: Config,
    mail: Incoming,
    verdict: Verdict,
    ahead: Prepared | None = None,  # what was worked out ahead (used if of mail.parsed)
) -> Outcome | None:
    """A bounce or report: attached to its ticket or quarantined; None for other mail."""
    envelope, p, raw, queues, now = mail.envelope, mail.parsed, mail.raw, mail.queues, mail.now
    known = ahead if ahead is not None and ahead.parsed is p else None
    candidates = verp_candidates(envelope, p, known.header_recipients if known else None)
    hinted = has_report_part(raw) if known is None else known.report_part
    verp = any(VERP_LOCAL + "+" in a and is_verp_shaped(a) for a in candidates)
    if not (verdict.bounce or hinted or verp):
        return None
    report = read_report(raw)
    if report is None or is_released(conn, p.raw_sha256):
        return None
    if report.kind == "tlsrpt":  # about a domain's TLS, never about a ticket
        reason = "; ".join((*verdict.reasons, "report: SMTP TLS report (RFC 8460)"))
        return quarantine(conn, mail, "report", reason)
    found = lookups(
        conn,
        config.secret,
        verp_candidates=candidates,
        message_ids=(*report.returned_ids, *p.in_reply_to, *p.references),
        recipients=[r.address for r in report.recipients] or list(report.returned_to),
        now=now,
        window=timedelta(hours=config.bounces.match_window_hours),
    )
    m = match(found)
    key = dedupe_key(p, raw)
    dup = find_duplicate(conn, key) if m.matched else None
    if dup is not None:  # processed before: the address was marked then
        return Outcome(dup, None, "duplicate", queues, False)
    paused = []
    if m.matched or m.sent is not None:
        for r in _recipients(report, m) if report.kind in ("bounce", "delay") else []:
            until = record_report(conn, r, m.ticket_id, now, config.bounces)
            if until is not None:
                paused.append(f"{r.address} until {until:%Y-%m-%d %H:%M} UTC")
    reasons = [*verdict.reasons, f"report: {report.kind} ({report.form})", f"match: {m.reason}"]
    if not m.matched:
        return quarantine(conn, mail, "bounce", "; ".join(reasons))
    assert m.ticket_id is not None
    put_blob(conn, p.raw_sha256, raw)
    aid = add_article(
        conn,
        ticket_id=m.ticket_id,
        kind="system",
        body=_article_text(report, m, paused),
        now=now,
        dedupe_key=key,
        message_id=p.message_id,
        raw_sha256=p.raw_sha256,
        from_addr=p.from_addr,
        from_name=p.from_name,
        subject=p.subject,
        author="mailgate",
        auto=True,
        verdict={
            "reasons": reasons,
            "report": {
                "kind": report.kind,
                "form": report.form,
                "method": m.method,
                "recipients": [
                    {"address": r.address, "action": r.action, "status": r.status}
                    for r in report.recipients
                ],
            },
        },
    )
    return Outcome(m.ticket_id, aid, f"report:{m.method}", queues, False)


def unthreaded_automatic(conn: Connection, mail: Incoming, verdict: Verdict) -> Outcome | None:
    """An auto-reply or bounce that belongs to no ticket opens none: it is quarantined."""
    if not (verdict.auto or verdict.bounce) or is_released(conn, mail.parsed.raw_sha256):
        return None
    category = "bounce" if verdict.bounce else "auto-reply"
    reason = "; ".join((*verdict.reasons, "thread: belongs to no ticket"))
    return quarantine(conn, mail, category, reason)


def spam(conn: Connection, mail: Incoming, verdict: Verdict, auth: SenderAuth) -> Outcome | None:
    """No ticket, acknowledgement or notification for what the spam filter calls spam, or
    for a From domain whose DMARC policy says reject and whose check failed."""
    if not (verdict.spam or auth.dmarc_reject) or is_released(conn, mail.parsed.raw_sha256):
        return None
    if verdict.spam:
        reasons = [r for r in verdict.reasons if r.startswith("spam:")]
        return quarantine(conn, mail, "spam", "; ".join(reasons))
    why = f"dmarc: fail with policy reject for {mail.parsed.from_addr} (by {auth.authserv_id})"
    return quarantine(conn, mail, "dmarc", why)
