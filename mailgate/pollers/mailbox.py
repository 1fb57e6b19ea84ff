"""Reading an existing mailbox for `mailgate import`: an mbox file or a Maildir, message by
message, as raw bytes, oldest first (stdlib `mailbox`; nothing is changed in the mailbox)."""

from __future__ import annotations

import mailbox
import re
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

_DATE = re.compile(rb"^date:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)

FORMATS = ("mbox", "maildir")


class MailboxError(Exception):
    pass


def open_mailbox(kind: str, path: Path) -> mailbox.Mailbox:
    """The mailbox at `path`, read-only in practice; MailboxError if it is not one."""
    try:
        if kind == "mbox":
            if not path.is_file():
                raise MailboxError(f"{path}: no such mbox file")
            return mailbox.mbox(path, factory=None, create=False)
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise MailboxError(f"{path}: not a Maildir (no cur/ and new/)")
        return mailbox.Maildir(path, factory=None, create=False)
    except (mailbox.NoSuchMailboxError, OSError) as e:
        raise MailboxError(f"{path}: {e}") from e


def _date(raw: bytes) -> float | None:
    """The Date: header of a message as a POSIX time, if it has a readable one."""
    end = raw.find(b"\n\n")
    crlf = raw.find(b"\r\n\r\n")
    head = raw[: min(i for i in (end, crlf, len(raw)) if i >= 0)]
    m = _DATE.search(head)
    if m is None:
        return None
    try:
        return parsedate_to_datetime(m.group(1).decode("ascii", "replace").strip()).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def messages(box: mailbox.Mailbox) -> Iterator[bytes]:
    """Each message's bytes (an mbox's "From " line left out), oldest Date: first, so an
    original is threaded before its replies: a Maildir has no order, an mbox may be
    appended to out of order. A message without a readable date keeps its place after
    the one before it."""
    order = []
    last = float("-inf")
    for n, key in enumerate(box.iterkeys()):
        when = _date(box.get_bytes(key))
        last = last if when is None else when
        order.append((last, n, key))
    order.sort(key=lambda x: (x[0], x[1]))
    for _, _, key in order:
        yield box.get_bytes(key)
