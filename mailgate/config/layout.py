"""What the MTA pipe must agree on with the daemon about the files: table and key names,
default directories, where the spool is, how a TOML file is read. Stdlib only, so
`mailgate ingest` reads its few keys without the pydantic models (schema.py defines the
same keys; a unit test keeps the two in step).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from mailgate.config.errors import ConfigError

MAILGATE_TABLES = (
    "mailgate",
    "listener",
    "relay",
    "worker",
    "governor",
    "http",
    "report",
    "bounces",
    "spam",
    "authentication",
    "database",
)
MAILGATE_KEYS = (
    "data_dir",
    "database_url",
    "spool_dir",
    "hostname",
    "queues_dir",
    "agents_file",
    "templates_dir",
    "secret",
    "previous_secrets",
    "log_level",
    "watch_config",
)
LISTENER_KEYS = ("enabled", "host", "port", "mode", "max_message_bytes", "timeout_seconds")
QUEUE_KEYS = (
    "name",
    "addresses",
    "subject_tag",
    "colleagues_may_follow_up",
    "ack_unauthenticated",
    "from_name",
    "description",
    "autoresponse",
    "priority",
    "close",
    "imap",
    "pgp",
    "sla",
    "agent_mail",
    "rules",
)

DEFAULT_DATA_DIR = "../var"
DEFAULT_QUEUES_DIR = "queues"
DEFAULT_MAX_MESSAGE_BYTES = 25 * 1024 * 1024


def data_dir(base: Path, value: str) -> Path:
    """`mailgate.data_dir`, relative to the directory of mailgate.toml."""
    return (base / value).resolve()


def spool_dir(base: Path, data_dir_value: str, spool_dir_value: str) -> Path:
    """`mailgate.spool_dir`, or `spool` under the data directory when it is empty."""
    if spool_dir_value:
        return (base / spool_dir_value).resolve()
    return data_dir(base, data_dir_value) / "spool"


def queue_files(base: Path, queues_dir_value: str) -> tuple[Path, list[Path]]:
    """The queues directory and its `*.toml` files, sorted (empty when it is missing)."""
    queues_dir = (base / queues_dir_value).resolve()
    return queues_dir, sorted(queues_dir.glob("*.toml")) if queues_dir.is_dir() else []


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; ConfigError naming the file when it is missing or broken."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as e:
        raise ConfigError([f"{path}: file not found"]) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: not valid TOML: {e}"]) from e
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror}"]) from e
