"""The start-up steps a run shares, daemon or one pass: the data directory, the database,
the spool. A step that fails is one line for the operator and an exit code (78: a path or
setting to fix; 75: may pass, e.g. a database server that is down), never a traceback.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from mailgate.config.errors import ConfigError
from mailgate.config.model import Config
from mailgate.db import engine as db
from mailgate.spool import Spool
from mailgate.store import queue_lifecycle

T = TypeVar("T")


def open_stores(cfg: Config) -> tuple[Engine, Spool]:
    """The database (migrated) and the spool (locked, recovered); StartupError if not."""
    starting(f"data directory {cfg.data_dir}", _writable_dir, cfg.data_dir)
    engine = starting(
        "database " + _shown_url(cfg.database_url), db.connect, cfg.database_url, cfg.database
    )
    starting("queues", _no_orphaned_tickets, engine, cfg)
    spool = starting(f"spool {cfg.spool_dir}", Spool, cfg.spool_dir)
    starting(f"spool {cfg.spool_dir}", spool.lock)
    starting(f"spool {cfg.spool_dir}", spool.recover)
    return engine, spool


# a path the admin must fix is a config problem (78); anything else may pass (75)
_SETUP_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.ENOENT}
)
_SETUP_SQLITE = ("unable to open database file", "readonly database", "not a database")


class StartupError(Exception):
    """A start-up step failed: one line for the operator, and the exit code."""

    def __init__(self, what: str, exc: BaseException):
        if isinstance(exc, ConfigError):
            reason, config = "; ".join(exc.problems), True
        elif isinstance(exc, OSError):
            reason = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
            config = exc.errno in _SETUP_ERRNOS
        else:
            orig = getattr(exc, "orig", None) or exc
            reason = (str(orig).strip().splitlines() or [type(exc).__name__])[0]
            config = isinstance(exc, ArgumentError | NoSuchModuleError) or any(
                s in reason for s in _SETUP_SQLITE
            )
        super().__init__(f"{what}: {reason}")
        self.exit_code = os.EX_CONFIG if config else os.EX_TEMPFAIL


def starting(what: str, fn: Callable[..., T], *args: object) -> T:
    """Run one start-up step; an OS or database error becomes a StartupError."""
    try:
        return fn(*args)
    except (OSError, SQLAlchemyError, ConfigError) as e:
        raise StartupError(what, e) from e


def _no_orphaned_tickets(engine: Engine, cfg: Config) -> None:
    """ConfigError when a removed queue still has open tickets (store/queue_lifecycle.py)."""
    with engine.connect() as conn:
        problems = queue_lifecycle.config_problems(conn, cfg)
    if problems:
        raise ConfigError(problems)


def _writable_dir(path: Path) -> None:
    """Make the directory and prove a file can be written there (OSError if not)."""
    path.mkdir(parents=True, exist_ok=True)
    probe = path / f".write-probe-{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()


def _shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
