"""The spool's files: a message is one NAME.msg (its envelope's JSON on the first line,
then the raw bytes unchanged) or, as versions before it wrote them, a NAME.eml + NAME.json
pair. How either is listed, read and removed; spool.py moves them between its directories."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from mailgate.envelope import Envelope

# old pairs: how long a message may wait for its envelope before it counts as left by a
# dead writer (also the age after which a shunt/*.new file is a dead rewrite's leftover)
ORPHAN_GRACE_SECONDS = 10.0
MSG = ".msg"  # a message and its envelope in one file
PAIR = (".eml", ".json")  # an old message's two files in a directory of the spool


def log(level: str, msg: str, *args: object) -> None:
    """Log via `logging`, imported at first use: the MTA pipe imports this module per message."""
    import logging

    getattr(logging.getLogger("mailgate.spool"), level)(msg, *args)


def split_msg(data: bytes, name: str) -> tuple[Envelope, int, str]:
    """A .msg file's envelope, where its raw bytes start and what is wrong with it ("").

    `data` is the file or a head of it holding its first line. Without an envelope line
    the whole file is the message; an unreadable one is an empty envelope, never a loss.
    """
    end = data.find(b"\n")
    if end < 0 or not data.startswith(b"{"):
        return Envelope(source="unknown"), 0, f"spool: {name} has no envelope; using an empty one"
    try:
        return Envelope.from_json(data[:end]), end + 1, ""
    except (ValueError, TypeError) as e:
        warning = f"spool: {name} has an unreadable envelope ({e}); using an empty one"
        return Envelope(source="unknown"), end + 1, warning


def pair_envelope(incoming: str, name: str) -> tuple[Envelope | None, str]:
    try:
        return Envelope.from_json(read(f"{incoming}/{name}.json")), ""
    except FileNotFoundError:
        return _without_envelope(f"{incoming}/{name}.eml")
    except (OSError, ValueError, TypeError) as e:
        warning = f"spool: {name} has an unreadable envelope ({e}); using an empty one"
        return Envelope(source="unknown"), warning


def _without_envelope(eml: str) -> tuple[Envelope | None, str]:
    """An old pair's message whose envelope is missing: wait while an old put() may be
    finishing; after that its writer died before acknowledging: routed by headers."""
    try:
        age = time.time() - os.stat(eml).st_ctime  # ctime: when it was renamed in
    except FileNotFoundError:
        return None, ""  # moved away meanwhile (shunt administration)
    if age < ORPHAN_GRACE_SECONDS:
        return None, ""  # looked at again on the next listing
    warning = (
        f"spool: {os.path.basename(eml)} has no envelope (its writer died); routing by headers"
    )
    return Envelope(source="recovered"), warning


def messages(d: Path) -> Iterator[str]:
    """Message names in `d` (NAME.msg, or an old pair's NAME.eml), each once, streamed
    (glob held every entry: 12 MiB at 20,000 waiting)."""
    with os.scandir(d) as entries:
        for e in entries:
            if e.name.endswith(MSG):
                yield e.name[:-4]
            elif e.name.endswith(".eml") and not os.path.exists(f"{d}/{e.name[:-4]}{MSG}"):
                yield e.name[:-4]  # an old pair's (never the name of a .msg a second time)


def read(path: str | Path) -> bytes:
    """A whole file, unbuffered: half a Path's read_bytes."""
    with open(path, "rb", buffering=0) as f:
        return f.readall()


def read_head(path: str | Path) -> bytes:
    """A file's start up to and with its first newline (all of it if it has none)."""
    parts = []
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(16384):
            parts.append(chunk)
            if b"\n" in chunk:
                break
    return b"".join(parts)


def shunt_envelope(sh: Path, name: str) -> Envelope:
    """A shunted message's envelope, in either form."""
    try:
        return split_msg(read_head(sh / f"{name}{MSG}"), name)[0]
    except FileNotFoundError:
        pass
    except OSError as e:  # its own envelope is inside it: shown with why it cannot be read
        reason = f"{type(e).__name__}: {e}"
        return Envelope("unknown", failures=({"stage": "read", "reason": reason, "at": 0.0},))
    try:  # an old pair
        return Envelope.from_json((sh / f"{name}.json").read_bytes())
    except (OSError, ValueError, TypeError):
        return Envelope(source="unknown")


def unlink(path: str | Path) -> bool:
    """Remove a file; False if it was not there. Another failure is logged: the message is
    then processed again at the next start, which the store's dedupe makes a no-op."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as e:
        log("warning", "spool: could not remove %s: %s", path, e)
    return True
