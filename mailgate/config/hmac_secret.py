"""The HMAC key of reply tokens when `mailgate.secret` is not set: a random file in the data
directory, created by the commands that mint or check tokens (`run`, `process`), never by
loading the configuration, `check-config` or `ingest`.
"""

from __future__ import annotations

import contextlib
import os

from mailgate.config.model import Config


def ensure(config: Config) -> bytes:
    """The secret, creating the generated one first when it does not exist yet.

    Written whole or not at all: the key goes into a temp file (fsync'ed), which is linked
    to its name (a link never replaces a secret another process made first) and the
    directory fsync'ed, so a crash can leave no empty or short secret behind."""
    path = config.secret_file
    if config.main.secret is None and not path.exists():
        config.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32).hex().encode())
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        dfd = os.open(config.data_dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return config.secret


def describe(config: Config) -> str:
    """Where the secret comes from, for check-config; reads it (ConfigError if broken)
    unless it is still to be generated."""
    ref = config.main.secret
    if ref is None:
        if not config.secret_file.exists():
            return f"{config.secret_file} (will be generated on first run)"
        return f"{config.secret_file} (generated, {len(config.secret)} characters)"
    return f"mailgate.secret.{ref.kind} ({len(config.secret)} characters)"
