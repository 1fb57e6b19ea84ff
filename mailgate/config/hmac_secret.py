"""The HMAC key of reply tokens when `mailgate.secret` is not set: a random file in the data
directory, created by the commands that mint or check tokens (`run`, `process`), never by
loading the configuration, `check-config` or `ingest`.
"""

from __future__ import annotations

import os

from mailgate.config.model import Config


def ensure(config: Config) -> bytes:
    """The secret, creating the generated one first when it does not exist yet."""
    if config.main.secret is None and not config.secret_file.exists():
        config.data_dir.mkdir(parents=True, exist_ok=True)
        token = os.urandom(32).hex().encode()
        try:
            fd = os.open(config.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use that one
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(token)
                f.flush()
                os.fsync(f.fileno())
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
