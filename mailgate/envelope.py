"""A spooled message's envelope: how it reached us (the SMTP envelope, or what the source
knows) and each failed try since, with its stage, reason and traceback."""

from __future__ import annotations

import json
import time
from typing import NamedTuple

IMPORT_SOURCE = "import"  # `mailgate import`: "import", "import+ack", "import+ack+notify"


def imported_with(envelope: Envelope, what: str, default: bool) -> bool:
    """Whether mail that `mailgate import` spooled asked for `what` (ack, notify); for
    mail from any other source, `default`."""
    parts = envelope.source.split("+")
    return what in parts[1:] if parts[0] == IMPORT_SOURCE else default


class Envelope(NamedTuple):
    """How a message reached us: the SMTP envelope, or what the source knows."""

    source: str  # "smtp", "lmtp", "pipe", "imap:<mailbox>"
    mail_from: str = ""
    rcpt_tos: tuple[str, ...] = ()
    queue: str = ""  # set when the source already knows the queue (pipe --queue, IMAP)
    received_at: float = 0.0
    attempts: int = 0
    # one {"stage", "reason", "at"} per failed try, oldest first
    failures: tuple[dict, ...] = ()
    # each distinct {"stage", "text"} once, with "attempts": the failures (1-based) it covers
    tracebacks: tuple[dict, ...] = ()

    def to_json(self) -> bytes:
        d = self._asdict()
        d["rcpt_tos"] = list(self.rcpt_tos)
        d["failures"] = list(self.failures)
        d["tracebacks"] = list(self.tracebacks)
        return json.dumps(d, ensure_ascii=False).encode()

    def to_line(self) -> bytes:
        """The first line of a .msg file: the JSON (which escapes every control character)."""
        data = self.to_json()
        if b"\n" in data:  # cannot happen with json.dumps; the raw bytes would shift
            raise ValueError("an envelope's JSON holds a newline")
        return data + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> Envelope:
        d = json.loads(data)
        d["rcpt_tos"] = tuple(d.get("rcpt_tos", ()))
        d["failures"] = tuple(d.get("failures", ()))
        d["tracebacks"] = tuple(d.get("tracebacks", ()))
        return cls(**d)

    def with_failure(self, stage: str, reason: str, traceback: str = "") -> Envelope:
        """One more failed try; a traceback already recorded only gains this attempt."""
        failure = {"stage": stage, "reason": reason[:4000], "at": time.time()}
        number = len(self.failures) + 1
        tracebacks = _add_traceback(self.tracebacks, stage, traceback[:8000], number)
        return self._replace(
            attempts=self.attempts + 1,
            failures=(*self.failures, failure),
            tracebacks=tracebacks,
        )


def _add_traceback(
    tracebacks: tuple[dict, ...], stage: str, text: str, number: int
) -> tuple[dict, ...]:
    if not text:
        return tracebacks
    for i, t in enumerate(tracebacks):
        if t.get("stage") == stage and t.get("text") == text:
            seen = {**t, "attempts": [*t.get("attempts", ()), number]}
            return (*tracebacks[:i], seen, *tracebacks[i + 1 :])
    return (*tracebacks, {"stage": stage, "text": text, "attempts": [number]})
