"""The spool's files as tests look at them: NAME.msg (the envelope's JSON line, then the raw
bytes) and the old NAME.eml + NAME.json pairs, written here as the previous version did."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mailgate.durable import write_durable
from mailgate.spool import Envelope


def put_pair(root: Path | str, raw: bytes, envelope: Envelope, name: str = "") -> str:
    """Spool a message as the version before NAME.msg did: two files, the .eml renamed first."""
    root = Path(root)
    name = name or f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(6).hex()}"
    if not envelope.received_at:
        envelope = envelope._replace(received_at=time.time())
    tmp, inc = root / "tmp", root / "incoming"
    write_durable(tmp / f"{name}.json", envelope.to_json())
    write_durable(tmp / f"{name}.eml", raw)
    os.rename(tmp / f"{name}.eml", inc / f"{name}.eml")
    os.rename(tmp / f"{name}.json", inc / f"{name}.json")
    return name


def split(path: Path) -> tuple[Envelope, bytes]:
    """A .msg file's envelope and raw bytes."""
    line, _, raw = path.read_bytes().partition(b"\n")
    return Envelope.from_json(line), raw


def entries(d: Path) -> list[str]:
    """The names of the messages in a spool directory, in spool order, either form."""
    return sorted({p.name[:-4] for p in d.iterdir() if p.suffix in (".msg", ".eml")})


def files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []
