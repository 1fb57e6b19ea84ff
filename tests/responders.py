"""Naive vacation responders: answer every mail they get, set no Auto-Submitted.

`exchange` drives the offline worker and the sender on a fake clock against a real
aiosmtpd sink, and lets each responder answer what reached the relay for it: the
customer answers From/Reply-To, an agent answers the notification's token Reply-To.
"""

from __future__ import annotations

import random
import string
from collections import Counter
from datetime import datetime, timedelta
from email.utils import getaddresses, make_msgid

from mailgate.config.model import Config
from mailgate.db import engine as db
from mailgate.outgoing.sender import Sender
from mailgate.pgp.keyring import Keyrings
from mailgate.pipeline.steps import Pipeline
from mailgate.pipeline.worker import Worker
from mailgate.spool import Envelope, Spool
from tests.harness import message
from tests.servers import CapturedMessage, SmtpSink


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def vacation_reply(
    got: CapturedMessage, responder: str, clock: Clock, subject: str, vary: bool = False
) -> bytes:
    """The responder's answer; `vary`: a different word in each (no two alike)."""
    m = got.message
    word = "".join(random.choices(string.ascii_lowercase, k=12)) if vary else "Monday"
    to = str(m["Reply-To"] or m["From"])
    return message(
        sender=responder,
        name="Away",
        to=getaddresses([to])[0][1],
        subject=subject.format(subject=m["Subject"]),
        body=f"I am away until {word} and will answer your mail then.\n",
        message_id=make_msgid(domain=responder.split("@")[1]),
        in_reply_to=str(m["Message-ID"]),
        references=str(m["Message-ID"]),
        date=clock.now,
    )


def exchange(
    config: Config,
    sink: SmtpSink,
    first: bytes,
    responders: set[str],
    *,
    hours: float,
    step_minutes: float = 5,
    start: datetime,
    subject: str = "Re: {subject}",
    vary: bool = False,
) -> Counter[tuple[str, str]]:
    """Run the loop for `hours` of fake time; what reached the relay, by (rcpt, kind)."""
    clock = Clock(start)
    engine = db.connect(config.database_url)
    spool = Spool(config.spool_dir)
    worker = Worker(config, engine, spool, Pipeline(config, clock, keyrings=Keyrings()))
    sender = Sender(config, engine, clock, keyrings=Keyrings())
    spool.put(first, Envelope(source="smtp", rcpt_tos=("support@example.test",)))
    seen = 0
    got: Counter[tuple[str, str]] = Counter()
    while clock.now < start + timedelta(hours=hours):
        worker.drain()
        sender.send_due(keep_open=True)
        new, seen = sink.messages[seen:], len(sink.messages)
        for c in new:
            kind = str(c.message["Message-ID"]).split(".")[1]
            for rcpt in c.rcpt_tos:
                got[(rcpt, kind)] += 1
                if rcpt in responders:
                    raw = vacation_reply(c, rcpt, clock, subject, vary)
                    to = getaddresses([str(c.message["Reply-To"] or c.message["From"])])[0][1]
                    spool.put(raw, Envelope(source="smtp", rcpt_tos=(to,)))
        clock.now += timedelta(minutes=step_minutes)
    sender.close()
    engine.dispose()
    return got
