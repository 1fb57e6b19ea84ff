"""The MTA pipe (`mailgate ingest`): one message on stdin into the spool.

The exit code is the whole contract with the MTA (sysexits): 0 only after the spool write
returned, 75 (EX_TEMPFAIL: the MTA keeps the mail and retries) for anything on our side,
a broken config included, 65 (EX_DATAERR) for input that can never be mail.

It reads the few keys it needs (where the spool is, the size limit, the queue names) with
tomllib and checks them by hand, never reads the HMAC secret, and imports only what
spooling needs: the MTA starts one process per message (docs/performance.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, BinaryIO

from mailgate.config import layout
from mailgate.config.errors import REASONS, ConfigError
from mailgate.spool import Envelope, Spool


class PipeConfig:
    """What the pipe takes from the configuration (a plain class: a dataclass or a
    NamedTuple costs a millisecond of start-up, once per message)."""

    __slots__ = ("spool_dir", "max_message_bytes", "queues")

    def __init__(self, spool_dir: Path, max_message_bytes: int, queues: frozenset[str]):
        self.spool_dir = spool_dir
        self.max_message_bytes = max_message_bytes
        self.queues = queues


def _table(path: Path, data: dict[str, Any], name: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """`[name]` of mailgate.toml, its keys checked; ConfigError naming file, key, reason."""
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError([f"{path}: {name}: {REASONS['dict_type']}"])
    unknown = [f"{path}: {name}.{k}: unknown key" for k in table if k not in keys]
    if unknown:
        raise ConfigError(unknown)
    return table


def _value(path: Path, key: str, value: Any, kind: type, default: Any) -> Any:
    """`value` if it is a `kind`, as strict as the daemon's models ("25" is not an int)."""
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool):
        words = REASONS["int_type" if kind is int else "string_type"]
        raise ConfigError([f"{path}: {key}: {words}"])
    return value


def _queue_name(path: Path) -> str:
    data = layout.read_toml(path)
    unknown = [f"{path}: {k}: unknown key" for k in data if k not in layout.QUEUE_KEYS]
    if unknown:
        raise ConfigError(unknown)
    if "name" not in data:
        raise ConfigError([f"{path}: name: required key is missing"])
    return _value(path, "name", data["name"], str, "")


def read_pipe_config(config_path: str | os.PathLike[str]) -> PipeConfig:
    """The pipe's view of the configuration; ConfigError listing what is wrong."""
    path = Path(config_path).resolve()
    base = path.parent
    data = layout.read_toml(path)
    unknown = [f"{path}: {k}: unknown key" for k in data if k not in layout.MAILGATE_TABLES]
    if unknown:
        raise ConfigError(unknown)
    main = _table(path, data, "mailgate", layout.MAILGATE_KEYS)
    listener = _table(path, data, "listener", layout.LISTENER_KEYS)
    dirs = {
        key: _value(path, f"mailgate.{key}", main.get(key), str, default)
        for key, default in (
            ("data_dir", layout.DEFAULT_DATA_DIR),
            ("spool_dir", ""),
            ("queues_dir", layout.DEFAULT_QUEUES_DIR),
        )
    }
    limit = _value(
        path,
        "listener.max_message_bytes",
        listener.get("max_message_bytes"),
        int,
        layout.DEFAULT_MAX_MESSAGE_BYTES,
    )
    if limit <= 0:
        raise ConfigError([f"{path}: listener.max_message_bytes: must be more than 0"])
    queues_dir, files = layout.queue_files(base, dirs["queues_dir"])
    if not files:
        raise ConfigError([f"{path}: mailgate.queues_dir: no *.toml queue files in {queues_dir}"])
    problems: list[str] = []
    names = set()
    for qp in files:
        try:
            names.add(_queue_name(qp))
        except ConfigError as e:
            problems.extend(e.problems)
    if problems:
        raise ConfigError(problems)
    spool_dir = layout.spool_dir(base, dirs["data_dir"], dirs["spool_dir"])
    return PipeConfig(spool_dir, limit, frozenset(names))


def _fail(message: str, code: int = os.EX_TEMPFAIL) -> int:
    print(f"mailgate ingest: {message}", file=sys.stderr)
    return code


def ingest(
    config_path: str,
    stdin: BinaryIO,
    *,
    queue: str = "",
    sender: str = "",
    recipients: tuple[str, ...] = (),
    verbose: bool = False,
) -> int:
    """Spool the message on `stdin`; the exit code for the MTA."""
    try:
        cfg = read_pipe_config(config_path)
    except ConfigError as e:
        for problem in e.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return os.EX_TEMPFAIL  # the admin can fix the config; the MTA keeps the mail meanwhile
    except Exception as e:  # noqa: BLE001 - an MTA pipe must always get a defined exit code
        return _fail(str(e))
    if queue and queue not in cfg.queues:
        return _fail(f"no queue named {queue!r}")
    try:
        raw = stdin.read(cfg.max_message_bytes + 1)
    except OSError as e:
        return _fail(f"reading stdin: {e}")
    if not raw.strip():
        return _fail("empty message", os.EX_DATAERR)
    if len(raw) > cfg.max_message_bytes:
        return _fail(f"message larger than {cfg.max_message_bytes} bytes", os.EX_DATAERR)
    env = Envelope(source="pipe", mail_from=sender, rcpt_tos=recipients, queue=queue)
    try:
        name = Spool(cfg.spool_dir).put(raw, env)
    except Exception as e:  # noqa: BLE001 - not durable: tell the MTA to retry
        return _fail(f"spool write failed: {e}")
    if verbose:
        print(f"spooled {name}")
    return os.EX_OK
