"""Which queues a message was addressed to. Pure given the config."""

from __future__ import annotations

from mailgate.config.model import Config
from mailgate.parse.message import Parsed
from mailgate.spool import Envelope


def route(envelope: Envelope, parsed: Parsed, config: Config) -> tuple[str, ...]:
    """Queue names, primary first: the source's queue, then envelope recipients, then headers.

    Headers are used only where the envelope is unknown: the pipe without --queue, and a
    spooled message whose envelope its dying writer never wrote.
    """
    names: dict[str, None] = {}
    if envelope.queue and config.queue(envelope.queue):
        names[envelope.queue] = None
    for rcpt in envelope.rcpt_tos:
        q = config.queue_for_address(rcpt)
        if q:
            names.setdefault(q.name, None)
    if not names and envelope.source in ("pipe", "recovered"):
        for addr in (*parsed.header_all("delivered-to"), *parsed.to, *parsed.cc):
            q = config.queue_for_address(addr.strip())
            if q:
                names.setdefault(q.name, None)
    if len(names) > 1 and envelope.source.startswith("imap"):
        # a mailbox copy names only its own queue; the other copies arrive on their own
        return (next(iter(names)),)
    return tuple(names)
