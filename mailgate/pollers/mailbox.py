"""Reading an existing mailbox for `mailgate import`: an mbox file or a Maildir, message by
message, as raw bytes (stdlib `mailbox`; nothing is changed in the mailbox)."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from pathlib import Path

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


def messages(box: mailbox.Mailbox) -> Iterator[bytes]:
    """Each message's bytes, in the mailbox's order (an mbox's "From " line left out)."""
    for key in box.iterkeys():
        yield box.get_bytes(key)
