"""What a machine-written report says: the types dsn.py and text_forms.py produce. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["bounce", "delay", "delivered", "mdn", "complaint", "tlsrpt"]


@dataclass(frozen=True)
class Recipient:
    """One recipient a report speaks of (RFC 3464 per-recipient fields, or read from text)."""

    address: str
    action: str  # failed | delayed | delivered | relayed | expanded (RFC 3464 section 2.3.3)
    status: str  # "5.1.1"; "" when the report gives none
    diagnostic: str

    @property
    def hard(self) -> bool:
        """A permanent failure: failed with a 5.x.x status (or no status at all)."""
        return self.action == "failed" and not self.status.startswith("4")


@dataclass(frozen=True)
class Report:
    kind: Kind
    form: str  # how it was read: "rfc3464", "exim", "qmail", "gmail", "yahoo", "text" ...
    recipients: tuple[Recipient, ...]
    returned_ids: tuple[str, ...]  # Message-IDs of the returned message's headers
    returned_to: tuple[str, ...]  # its To/Cc, when the report names no recipient itself

    @property
    def failed(self) -> tuple[Recipient, ...]:
        return tuple(r for r in self.recipients if r.action == "failed")

    def summary(self) -> str:
        """One line per recipient, for the system article and the junk reason."""
        lines = [
            f"{r.address}: {r.action}" + (f" {r.status}" if r.status else "") + f" {r.diagnostic}"
            for r in self.recipients
        ]
        return "\n".join(line.rstrip() for line in lines) or "(no recipient named)"
