"""What a batch computes of each message before it touches the database.  Pure.

`prepare(raw, settings)` parses the message and derives what the batch reads ahead with
one statement for all its messages (dedupe keys, referenced Message-IDs, senders), and
what the later steps would otherwise work out in the worker from the message alone: the
text the article stores as new, the classifier's verdict, the sender's authentication,
whether a report part shows, the digest the loop breaker compares, the subject's ticket
tag, the delivery headers' addresses (where a bounce's VERP address shows). It runs
anywhere, also in another process (pipeline/pool.py): its result and its failures are
plain picklable values, raised again by the parse step as the error it was. `Settings`
is the little of the config these read; it goes with every batch, so a reload applies
from the next one.

The verdict, the authentication and the digest are of the message as parsed: the pgp
step may replace it with its decrypted form, and the steps then work them out again
(`Prepared.facts_of`); so does a bug in working them out ahead, so the shunt names the
classify step, as it would had they been worked out there.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailgate.agents.reply import new_text
from mailgate.bounces.report_hint import has_report_part
from mailgate.parse.authentication import SenderAuth, sender_auth
from mailgate.parse.limits import ParseRejected
from mailgate.parse.message import Parsed, parse
from mailgate.parse.records import frozen_record
from mailgate.pipeline.classify import Verdict, classify
from mailgate.pipeline.delivered_to import header_recipients
from mailgate.pipeline.digests import dedupe_key, repeat_digest
from mailgate.pipeline.thread import message_refs, tag_number

if TYPE_CHECKING:  # not imported at run time: the parse processes need no config models
    from mailgate.config.model import Config

TRACEBACK_FRAMES = 8  # from the step down: enough to find the bug, short enough to read


@dataclass(frozen=True)
class Settings:
    """What of the config `prepare` reads (the classify step's inputs)."""

    our_addresses: frozenset[str] = frozenset()
    hostname: str = ""
    spam_threshold: float | None = None  # None: spam is not checked (spam.enabled off)
    trusted_authserv_ids: tuple[str, ...] = ()

    @classmethod
    def of(cls, config: Config) -> Settings:
        """What of `config` the facts are worked out from (ahead or in the steps)."""
        spam = config.spam
        return cls(
            our_addresses=config.our_addresses,
            hostname=config.main.hostname,
            spam_threshold=spam.score_threshold if spam.enabled else None,
            trusted_authserv_ids=tuple(config.authentication.trusted_authserv_ids),
        )


@dataclass(frozen=True)
class Facts:
    """What the steps derive from the parsed message and `Settings` alone."""

    verdict: Verdict
    auth: SenderAuth
    digest: str | None  # decide.repeat_digest of the text (None: too short to repeat)


def facts(p: Parsed, settings: Settings) -> Facts:
    trusted = settings.trusted_authserv_ids
    headers = p.header_all("authentication-results") if trusted else []
    fields = {
        "verdict": classify(p, settings.our_addresses, settings.hostname, settings.spam_threshold),
        "auth": sender_auth(headers, trusted, p.from_addr),
        "digest": repeat_digest(p.text),
    }
    return frozen_record(Facts, fields)


@dataclass(frozen=True)
class Prepared:
    parsed: Parsed | None = None  # None: parsing failed (rejected or failed says why)
    dedupe_key: str = ""
    refs: tuple[str, ...] = ()
    new_text: str = ""  # of parsed.text (the pgp step may replace the text)
    facts: Facts | None = None  # of parsed (None: parsing failed)
    report_part: bool = False  # bounces.report_hint.has_report_part of the raw message
    tag: int | None = None  # thread.tag_number of parsed.subject
    header_recipients: tuple[str, ...] = ()  # delivered_to.header_recipients of parsed
    rejected: str = ""  # the parser refused the message: shunt with this reason
    failed: str = ""  # a bug: "Type: message", retried like any step failure
    traceback: str = ""

    def facts_of(self, p: Parsed, settings: Settings) -> Facts:
        """The facts of `p`: those worked out ahead when `p` is the message as parsed."""
        if self.facts is not None and p is self.parsed:
            return self.facts
        return facts(p, settings)


NO_SETTINGS = Settings()


def prepare(raw: bytes, settings: Settings = NO_SETTINGS) -> Prepared:
    try:
        p = parse(raw)
    except ParseRejected as e:
        return Prepared(rejected=e.reason)
    except Exception as e:  # noqa: BLE001 - reported by the parse step, never lost
        tb = traceback.format_exc(TRACEBACK_FRAMES)
        return Prepared(failed=f"{type(e).__name__}: {e}", traceback=tb)
    try:
        known: Facts | None = facts(p, settings)
    except Exception:  # noqa: BLE001 - the classify step works them out again and is named
        known = None
    fields = {  # (in Prepared's order, every field)
        "parsed": p,
        "dedupe_key": dedupe_key(p, raw),
        "refs": tuple(message_refs(p)),
        "new_text": new_text(p.text),
        "facts": known,
        "report_part": has_report_part(raw),
        "tag": tag_number(p.subject),
        "header_recipients": header_recipients(p),
        "rejected": "",
        "failed": "",
        "traceback": "",
    }
    return frozen_record(Prepared, fields)


NOT_PREPARED = Prepared()  # a message the steps parse themselves: they work out the facts
