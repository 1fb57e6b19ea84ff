"""Pure parse stage: raw message bytes -> `Parsed` (limits on size, parts, depth; defects kept).

Parser choice, from numbers measured with `bench/parse_speed.py` on the project's 2-core
machine (Python 3.11.7; shared with other work, load about 3, so +-30%), per message:

======================  ===================================  ================================
                        generated corpus (2,000 helpdesk     real-world corpus (163 files,
                        mails, gen_corpus.py -n 2000)        9.7 MB, tests/data/corpus)
======================  ===================================  ================================
mail-parser 4.8.0       1.06 ms mean, p50 1.04, p99 1.84     9.6 ms mean, p50 1.31, max 843
stdlib policy.default   0.99 ms mean, p50 0.80, p99 3.50     (not measured on all files)
stdlib compat32 alone   0.15 ms mean, p50 0.13, p99 0.69     3.8 ms mean, p50 0.32, max 363
mailgate.parse, all     0.36 ms mean, p50 0.32, p99 1.08     4.3 ms mean, p50 0.66, max 228
======================  ===================================  ================================

mail-parser costs more than the whole budget of a typical message (target well under
0.5 ms), so the hot path is `BytesParser(policy=compat32)` (`compat32`) plus our own careful
decoding (`headers`, `charsets`, `addresses`, `envelope`, the MIME walk in `mime`);
mail-parser is kept as an independent second opinion when that walk fails (`fallback`).
The raw bytes are never changed or dropped here: the caller keeps them; `raw_sha256`
names them.

Work is bounded: a linear pre-scan cuts what the stdlib parser is handed (`prescan`),
message/* parts are kept whole instead of parsed (`compat32`), header values are cut at
64 KiB (`limits`), the HTML rendering is linear (`html_text`). Whatever is cut is recorded
in `defects` and stays in the raw bytes. Worst cases measured on 7-24 MB hostile
messages: under 2 s each.

Choices where the contract leaves room: `text` is the first inline text/plain part (an
empty one falls back to the HTML rendering), `html` the first inline text/html part;
further inline text/plain or text/html parts become inline attachments (so no content is
lost); other text/* parts (calendar, rfc822-headers...) are attachments; `from_addr` may
be a bare local part ("mailer-daemon") while `to`, `cc` and `reply_to` keep only addresses
with a domain; `content_id` has no angle brackets; format=flowed text is not re-flowed.
"""

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from email.message import Message

from mailgate.parse.attachments import Attachment
from mailgate.parse.compat32 import Compat32Message, parse_tree
from mailgate.parse.envelope import Envelope, read_envelope
from mailgate.parse.fallback import mailparser_body
from mailgate.parse.limits import MAX_DEFECTS, ParseLimits, ParseRejected
from mailgate.parse.mime import Body
from mailgate.parse.prescan import bound_work, header_start
from mailgate.parse.records import frozen_record
from mailgate.parse.unicode import valid_fields, valid_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parsed:
    """What the later stages need from one message; the raw bytes stay with the caller."""

    raw_sha256: str
    size: int
    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    from_addr: str
    from_name: str
    reply_to: tuple[str, ...]
    to: tuple[str, ...]
    cc: tuple[str, ...]
    date: datetime | None
    return_path: str | None
    headers: tuple[tuple[str, str], ...]
    content_type: str
    text: str
    html: str
    attachments: tuple[Attachment, ...]
    defects: tuple[str, ...]

    def header(self, name: str) -> str:
        """Return the first value of header `name` (case-insensitive), "" if absent."""
        key = name.lower()
        for hname, value in self.headers:
            if hname == key:
                return value
        return ""

    def header_all(self, name: str) -> tuple[str, ...]:
        """Return every value of header `name` (case-insensitive), in order."""
        key = name.lower()
        return tuple(value for hname, value in self.headers if hname == key)


def parse(raw: bytes, limits: ParseLimits = ParseLimits()) -> Parsed:
    """Parse raw message bytes; raise only `ParseRejected` (not mail at all, or too big)."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise ParseRejected(f"expected bytes, got {type(raw).__name__}")
    raw = bytes(raw)
    size = len(raw)
    if size == 0:
        raise ParseRejected("empty message")
    if size > limits.max_bytes:
        raise ParseRejected(f"message too large: {size} bytes > limit {limits.max_bytes}")
    start, damaged = header_start(raw)
    raw_sha256 = hashlib.sha256(raw).hexdigest()
    defects: list[str] = []
    if damaged:
        defects.append(
            f"damaged first header line: read from the first valid one ({start} bytes skipped)"
        )
    elif start:
        defects.append(f"skipped {start} leading bytes (BOM or blank lines) before the header")
    try:
        data = raw[start:] if start else raw
        data = bound_work(data, limits, defects)
        return _build(parse_tree(data, defects), raw_sha256, size, limits, defects)
    except Exception as exc:  # a bug here must not become a crash: keep what is known
        log.debug("parse failed: %r", exc)
        defects.append(f"internal parse error ({type(exc).__name__}: {exc})")
        return _build(Compat32Message(), raw_sha256, size, limits, defects)


def _build(
    msg: Message, raw_sha256: str, size: int, limits: ParseLimits, defects: list[str]
) -> Parsed:
    """Assemble a Parsed from a stdlib message, each stage guarded on its own."""
    try:
        env = read_envelope(msg, defects)
    except Exception as exc:
        log.debug("header stage failed: %r", exc)
        defects.append(f"headers not decoded ({type(exc).__name__}: {exc})")
        env = Envelope()
    try:
        ctype = msg.get_content_type()
    except Exception:
        ctype = "text/plain"
    if not ctype.isascii():  # raw 8-bit bytes in the type: malformed, as compat32 rules
        defects.append("8-bit bytes in Content-Type: taken as text/plain")
        ctype = "text/plain"
    try:
        body = Body(limits, defects)
        body.walk(msg)
        text, html, attachments = body.result()
    except Exception as exc:
        log.debug("body walk failed: %r; trying mail-parser", exc)
        defects.append(f"body walk failed ({type(exc).__name__}: {exc}); used mail-parser")
        text, html, attachments = mailparser_body(msg, limits, defects)
    fields = valid_fields(  # (in the order of Parsed's fields, as its __init__ sets them)
        {
            "raw_sha256": raw_sha256,
            "size": size,
            **vars(env),
            "content_type": ctype,
            "text": text,
            "html": html,
            "attachments": tuple(attachments),
        },
        defects,
    )
    fields["defects"] = _dedupe_defects(defects)
    return frozen_record(Parsed, fields)


def _dedupe_defects(defects: list[str]) -> tuple[str, ...]:
    """Drop repeated defects, keep order, cap the count; each one valid Unicode."""
    unique = list(dict.fromkeys(valid_text(d, "defect", []) for d in defects))
    if len(unique) > MAX_DEFECTS:
        extra = len(unique) - MAX_DEFECTS
        unique = unique[:MAX_DEFECTS] + [f"... and {extra} more defects"]
    return tuple(unique)
