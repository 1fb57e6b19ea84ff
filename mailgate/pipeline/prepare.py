"""What a batch computes of each message before it touches the database.  Pure.

`prepare(raw)` parses the message and derives what the batch reads ahead with one
statement for all its messages (dedupe keys, referenced Message-IDs, senders), plus the
text the article stores as new. It runs anywhere, also in another process
(pipeline/pool.py): its result and its failures are plain picklable values, raised
again by the parse step as the error it was.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from mailgate.agents.reply import new_text
from mailgate.parse.limits import ParseRejected
from mailgate.parse.message import Parsed, parse
from mailgate.pipeline.decide import dedupe_key
from mailgate.pipeline.thread import message_refs

TRACEBACK_FRAMES = 8  # from the step down: enough to find the bug, short enough to read


@dataclass(frozen=True)
class Prepared:
    parsed: Parsed | None = None  # None: parsing failed (rejected or failed says why)
    dedupe_key: str = ""
    refs: tuple[str, ...] = ()
    new_text: str = ""  # of parsed.text (the pgp step may replace the text)
    rejected: str = ""  # the parser refused the message: shunt with this reason
    failed: str = ""  # a bug: "Type: message", retried like any step failure
    traceback: str = ""


def prepare(raw: bytes) -> Prepared:
    try:
        p = parse(raw)
    except ParseRejected as e:
        return Prepared(rejected=e.reason)
    except Exception as e:  # noqa: BLE001 - reported by the parse step, never lost
        tb = traceback.format_exc(TRACEBACK_FRAMES)
        return Prepared(failed=f"{type(e).__name__}: {e}", traceback=tb)
    return Prepared(p, dedupe_key(p, raw), tuple(message_refs(p)), new_text(p.text))
