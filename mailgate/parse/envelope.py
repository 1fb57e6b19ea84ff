"""The envelope fields of `Parsed`, decoded from the top-level header block."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.message import Message
from email.utils import parsedate_to_datetime

from mailgate.parse.addresses import (
    address_list,
    addresses,
    clean_display_name,
    message_ids,
    return_path,
)
from mailgate.parse.headers import clean_header_value, decode_words, short
from mailgate.parse.limits import MAX_HEADER_CHARS
from mailgate.parse.records import frozen_record

_DATE_RE = re.compile(
    r"\s*(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"\s+([+-])(\d{2})(\d{2})(?:\s*\([^()]*\))?\s*$"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


@dataclass(frozen=True)
class Envelope:
    """The header-derived fields of `Parsed`; the defaults are a message without headers."""

    message_id: str = ""
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    subject: str = ""
    from_addr: str = ""
    from_name: str = ""
    reply_to: tuple[str, ...] = ()
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    date: datetime | None = None
    return_path: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def read_envelope(msg: Message, defects: list[str]) -> Envelope:
    """Decode every header and derive the envelope fields of Parsed."""
    headers: list[tuple[str, str]] = []
    allv: dict[str, list[str]] = {}  # each name's values, in order (never an empty list)
    for raw_name, value in msg.raw_items():
        name = str(raw_name).strip().lower()
        if not isinstance(value, str):
            value = str(value)
        if len(value) > MAX_HEADER_CHARS:
            value = value[:MAX_HEADER_CHARS]
            defects.append(f"header {name} longer than {MAX_HEADER_CHARS} chars: truncated")
        if value.isascii() and value.isprintable():  # (ASCII: no control char, no tab)
            value = value.strip()  # the common case, inlined
        else:
            value = clean_header_value(value, msg, name, defects)
        headers.append((name, decode_words(value, defects).strip() if "=?" in value else value))
        same = allv.get(name)
        if same is None:
            allv[name] = [value]
        else:
            same.append(value)
    subject = next((value for name, value in headers if name == "subject"), "")

    from_addr, from_name = "", ""
    if "from" in allv:
        addrs = addresses(" , ".join(allv["from"])[:MAX_HEADER_CHARS])
        if addrs:
            from_name, from_addr = addrs[0]
            from_name = clean_display_name(from_name, defects)
        else:
            defects.append(f"unparseable From: {short(allv['from'][0])}")

    date = None
    if "date" in allv:
        date = parse_date(allv["date"][0])
        if date is None:
            defects.append(f"unparseable Date: {short(allv['date'][0])}")

    message_id = ""
    if "message-id" in allv:
        ids = message_ids(allv["message-id"][0])
        message_id = ids[0] if ids else ""
        if not message_id:
            defects.append(f"garbage Message-ID: {short(allv['message-id'][0])}")

    fields = {  # (in Envelope's order)
        "message_id": message_id,
        "in_reply_to": message_ids(" ".join(allv.get("in-reply-to", ()))),
        "references": message_ids(" ".join(allv.get("references", ()))),
        "subject": subject,
        "from_addr": from_addr,
        "from_name": from_name,
        "reply_to": address_list(allv.get("reply-to", ())),
        "to": address_list(allv.get("to", ())),
        "cc": address_list(allv.get("cc", ())),
        "date": date,
        "return_path": return_path(allv["return-path"][0] if "return-path" in allv else None),
        "headers": tuple(headers),
    }
    return frozen_record(Envelope, fields)


# one timezone object per offset (at most 20,000): a batch's dates share it when pickled
_ZONES: dict[tuple[str, str, str], timezone] = {}


def _zone(sign: str, oh: str, om: str) -> timezone:
    offset = timedelta(hours=int(oh), minutes=int(om))
    tz = _ZONES[sign, oh, om] = timezone(-offset if sign == "-" else offset)  # (may raise)
    return tz


def parse_date(value: str) -> datetime | None:
    """A timezone-aware datetime (UTC if no zone), or None if unparseable."""
    m = _DATE_RE.match(value)
    if m is not None:  # the RFC 5322 form nearly every mailer writes
        day, mon, year, hh, mm, ss, sign, oh, om = m.groups()
        month = _MONTHS.get(mon.lower())
        if month is not None:
            try:
                tz = _ZONES.get((sign, oh, om))
                tz = _zone(sign, oh, om) if tz is None else tz
                return datetime(int(year), month, int(day), int(hh), int(mm), int(ss or 0), 0, tz)
            except ValueError:
                pass
    if not value.strip():
        return None
    try:
        dt = parsedate_to_datetime(value)
    except Exception:
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt
