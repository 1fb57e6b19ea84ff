"""[database] in mailgate.toml: the connection pool and the leases of several daemons.

Only the pool keys matter with SQLite (one daemon per database file); the leases work on
both backends (docs/scaling.md).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mailgate.config.base import Strict


class DatabaseSettings(Strict):
    # connections kept open per daemon, and how many more it may open under load
    pool_size: Annotated[int, Field(ge=1, le=200)] = 5
    max_overflow: Annotated[int, Field(ge=0, le=200)] = 10
    # how long a part waits for a free connection before it fails (and retries)
    pool_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    # connections older than this are replaced (behind a proxy that cuts idle ones)
    pool_recycle_seconds: Annotated[float, Field(gt=0)] = 1800.0
    # a new connection that takes longer than this fails (the database is unreachable)
    connect_timeout_seconds: Annotated[int, Field(ge=1, le=600)] = 10
    # a dead daemon's IMAP mailboxes are polled by another daemon within this time
    mailbox_takeover_seconds: Annotated[float, Field(ge=1, le=3600)] = 60.0
    # the name this daemon holds its leases under; empty: hostname:spool directory
    node: str = ""
