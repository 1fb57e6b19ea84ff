"""What the commands that work on a loaded configuration do first."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

from sqlalchemy import Engine

from mailgate.config import hmac_secret
from mailgate.config import load as config_load
from mailgate.config.errors import ConfigError
from mailgate.config.model import Config
from mailgate.db import engine as db


def config_error_exit(e: ConfigError) -> NoReturn:
    for problem in e.problems:
        print(f"config error: {problem}", file=sys.stderr)
    raise SystemExit(os.EX_CONFIG) from e


def load_config(path: str) -> Config:
    """The configuration, or exit 78 (EX_CONFIG) after printing every problem."""
    try:
        return config_load.load(path)
    except ConfigError as e:
        config_error_exit(e)


def ensure_secret(cfg: Config) -> bytes:
    """The HMAC secret, generated first where it is still to be (run, process, agents)."""
    try:
        return hmac_secret.ensure(cfg)
    except ConfigError as e:
        config_error_exit(e)
    except OSError as e:  # an unwritable data directory: one line, not a traceback
        where = e.filename or cfg.data_dir
        print(f"mailgate: cannot start: data directory: {e.strerror}: {where}", file=sys.stderr)
        raise SystemExit(os.EX_CONFIG) from e


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet = max(logging.WARNING, logging.getLogger().level)
    for chatty in ("alembic", "mail.log", "gnupg"):  # protocol-level chatter, not our story
        logging.getLogger(chatty).setLevel(quiet)


def engine(cfg: Config) -> Engine:
    return db.connect(cfg.database_url)


def actor_name() -> str:
    """Who runs this command, for the audit log: the login name (or $USER)."""
    import getpass

    try:
        actor = os.getlogin()
    except OSError:
        actor = os.environ.get("USER") or getpass.getuser()
    return actor[:320]
