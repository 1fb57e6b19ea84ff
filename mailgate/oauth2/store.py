"""Where tokens live between processes: one 0600 JSON file per client under data_dir/oauth2.

A file, not a table: `check-config --connect`, `mailgate oauth2 authorize` and the daemon
all refresh, and a provider that rotates refresh tokens invalidates the old one at once, so
a refresh must read the newest refresh token and write its successor under one lock that
spans the HTTP call; `flock` on a file beside it gives exactly that across processes
(SQLite would hold a write transaction open over the network call; a PostgreSQL row lock
would tie token refresh to the database being up). Written tmp + fsync + rename + dir
fsync, so a rotated token is never lost to a crash. Nothing here logs a token.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Tokens:
    refresh_token: str = ""
    access_token: str = ""
    expires_at: float = 0.0  # epoch seconds; 0: unknown

    def __repr__(self) -> str:  # never print a token, even in a traceback
        return (
            f"Tokens(refresh={'yes' if self.refresh_token else 'no'}, expires_at={self.expires_at})"
        )


class TokenStore:
    """`key` is a client's name: ``imap-QUEUE`` or ``relay``."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, key: str) -> Path:
        if not re.fullmatch(r"[a-z0-9_-]+", key):
            raise ValueError(f"bad token key {key!r}")
        return self.root / f"{key}.json"

    def load(self, key: str) -> Tokens:
        try:
            data = json.loads(self.path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return Tokens()
        return Tokens(
            str(data.get("refresh_token", "")),
            str(data.get("access_token", "")),
            float(data.get("expires_at", 0.0)),
        )

    def save(self, key: str, tokens: Tokens) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        final = self.path(key)
        tmp = final.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(tokens), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        dfd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[None]:
        """Exclusive across threads and processes (one open file description per call)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path(key).with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
