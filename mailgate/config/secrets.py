"""The one shape of a secret: a file, an environment variable or a command, read at use.

Never inline in a file admins share, never read while the configuration loads: a rotated
file, a changed variable or a command that mints a fresh token just works. Tables give it
as ``{ file = "..." }``, ``{ env = "VAR" }`` or ``{ command = ["argv", ...] }``; queue sections
spell the same three as flat keys (``password_file``, ``password_env``, ``password_command``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, field_validator, model_validator

from mailgate.config.base import Strict
from mailgate.config.errors import ConfigError

KINDS: tuple[Literal["file", "env", "command"], ...] = ("file", "env", "command")
COMMAND_TIMEOUT_SECONDS = 30.0
MIN_HMAC_SECRET = 16  # characters


class SecretError(Exception):
    """A secret could not be obtained; the message names the key and the reason."""


class SecretRef(Strict):
    """Exactly one of `file` (relative to the config file), `env`, `command` (argv; its
    stripped stdout is the secret)."""

    file: str | None = None
    env: str | None = None
    command: list[str] | None = None

    @field_validator("command", mode="before")
    @classmethod
    def _argv(cls, v: Any) -> Any:
        return shlex.split(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        given = [k for k in KINDS if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of file, env or command")
        return self

    @property
    def kind(self) -> Literal["file", "env", "command"]:
        return next(k for k in KINDS if getattr(self, k))

    def read(self, base: Path, key: str, timeout: float = COMMAND_TIMEOUT_SECONDS) -> str:
        """The secret now; SecretError naming `key` (the config key of this kind) if not."""
        if self.file:
            path = (base / self.file).resolve()
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError as e:
                raise SecretError(f"{key}: cannot read {path}: {e.strerror}") from e
            if not value:
                raise SecretError(f"{key}: {path} is empty")
            return value
        if self.env:
            value = os.environ.get(self.env, "")
            if not value:
                raise SecretError(f"{key}: ${self.env} is not set")
            return value
        return _run(self.command or [], base, key, timeout)

    def problems(self, base: Path, key: str) -> list[str]:
        """What a config check sees without reading the secret: a missing file, an unset
        variable (`key` as in `read`). A command is only run at use."""
        if self.file and not (base / self.file).resolve().is_file():
            return [f"{key}: {(base / self.file).resolve()} does not exist"]
        if self.env and not os.environ.get(self.env):
            return [f"{key}: ${self.env} is not set"]
        return []


def _run(argv: list[str], cwd: Path, key: str, timeout: float) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, cwd=cwd, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SecretError(f"{key} {argv[0]!r} could not run: {e}") from e
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()[:300]
        raise SecretError(f"{key} exited with status {done.returncode}: {err or '(no output)'}")
    value = done.stdout.decode(errors="replace").strip()
    if not value:
        raise SecretError(f"{key} printed nothing")
    return value


def flat_keys(settings: BaseModel, prefix: str) -> list[str]:
    """The keys of `prefix_file`, `prefix_env`, `prefix_command` that a section sets."""
    return [f"{prefix}_{k}" for k in KINDS if getattr(settings, f"{prefix}_{k}", None)]


def flat_ref(settings: BaseModel, prefix: str) -> tuple[SecretRef, str] | None:
    """The SecretRef a section's flat `prefix_*` keys give, with the key that gave it."""
    keys = flat_keys(settings, prefix)
    if not keys:
        return None
    kind = keys[0].removeprefix(prefix + "_")
    return SecretRef.model_validate({kind: getattr(settings, keys[0])}), keys[0]


def read_hmac_secret(ref: SecretRef | None, config_path: Path, secret_file: Path) -> bytes:
    """The HMAC key of reply tokens: `mailgate.secret` when given, else the generated file
    (hmac_secret.ensure creates it). ConfigError naming file, key and reason."""
    if ref is None:
        try:
            generated = secret_file.read_bytes().strip()
        except FileNotFoundError as e:
            raise ConfigError(
                [
                    f"{secret_file}: the generated HMAC secret does not exist yet; `mailgate run` "
                    "creates it (or set mailgate.secret)"
                ]
            ) from e
        except OSError as e:
            raise ConfigError([f"{secret_file}: cannot read: {e.strerror}"]) from e
        if len(generated) < MIN_HMAC_SECRET:  # an empty key would let anyone mint tokens
            raise ConfigError(
                [
                    f"{secret_file}: the generated HMAC secret is {len(generated)} characters, "
                    f"at least {MIN_HMAC_SECRET} needed; remove the file and `mailgate run` "
                    "makes a new one (reply addresses already sent stop working)"
                ]
            )
        return generated
    return _read_key(ref, config_path, "mailgate.secret")


def read_previous_secrets(refs: list[SecretRef], config_path: Path) -> tuple[bytes, ...]:
    """`mailgate.previous_secrets`: keys whose tokens are still accepted while rotating."""
    return tuple(
        _read_key(ref, config_path, f"mailgate.previous_secrets.{i}") for i, ref in enumerate(refs)
    )


def _read_key(ref: SecretRef, config_path: Path, key: str) -> bytes:
    try:
        value = ref.read(config_path.parent, f"{key}.{ref.kind}")
    except SecretError as e:
        raise ConfigError([f"{config_path}: {e}"]) from e
    if len(value) < MIN_HMAC_SECRET:
        raise ConfigError([f"{config_path}: {key}: must be at least {MIN_HMAC_SECRET} characters"])
    return value.encode()
