"""What one message became in the pipeline: an Outcome, or the named step that failed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    ticket_id: int
    article_id: int | None
    action: str
    queues: tuple[str, ...]
    ack: bool


class Rejected(Exception):
    """The message cannot be processed, ever: shunt it at once with this reason."""

    def __init__(self, step: str, reason: str):
        super().__init__(reason)
        self.step = step
        self.reason = reason


class StepFailed(Exception):
    """A step raised (a bug, or a resource that may come back): retry, then shunt."""

    def __init__(self, step: str, summary: str, traceback: str):
        super().__init__(f"{step}: {summary}")
        self.step = step
        self.summary = summary  # "TypeName: message"
        self.traceback = traceback
