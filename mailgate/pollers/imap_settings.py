"""The `[imap]` table of a queue file: validation and secret resolution.

config.py keeps the raw table (`Queue.imap`); this module owns its meaning. Errors read like
config.py's: ``FILE: imap.KEY: reason``. Secrets (password, OAuth2 token) are read at each
connection, so a rotated token file or a token command that mints a fresh token just works.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import subprocess
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mailgate.config.load import Config, ConfigError, Queue, parse_section

TlsMode = Literal["implicit", "starttls", "none"]
After = Literal["move", "seen"]


class SecretError(Exception):
    """A password or token could not be obtained (file unreadable, env unset, command failed)."""


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ImapSettings(BaseModel):
    """One queue's IMAP account. `base` is the queue file's directory (for relative paths)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    tls: TlsMode = "implicit"
    ca_file: str | None = None
    user: str
    password_file: str | None = None
    password_env: str | None = None
    oauth2_user: str | None = None
    oauth2_token_file: str | None = None
    oauth2_token_command: str | list[str] | None = None
    folders: list[str] = ["INBOX"]
    after: After | None = None
    move_to: str | None = None
    poll_interval_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    idle_renew_seconds: Annotated[float, Field(ge=10, le=29 * 60)] = 25 * 60.0
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 50
    batch_max_bytes: Annotated[int, Field(ge=1)] = 32 * 1024 * 1024
    base: Path = Path(".")

    @field_validator("host", "user")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()

    @field_validator("folders")
    @classmethod
    def _folders(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one folder is needed")
        if any(not f.strip() for f in v):
            raise ValueError("folder names must not be empty")
        if len(set(v)) != len(v):
            raise ValueError("a folder is listed twice")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> ImapSettings:
        if self.tls == "none" and not is_loopback(self.host):
            raise ValueError(
                f'tls = "none" is allowed only for a loopback host, not {self.host!r}: '
                'use "implicit" or "starttls"'
            )
        password = [k for k in ("password_file", "password_env") if getattr(self, k)]
        oauth = [k for k in ("oauth2_token_file", "oauth2_token_command") if getattr(self, k)]
        if len(password) > 1 or len(oauth) > 1:
            both = password if len(password) > 1 else oauth
            raise ValueError(f"give only one of {' and '.join(both)}")
        if password and oauth:
            raise ValueError(f"give either {password[0]} or {oauth[0]}, not both")
        if not password and not oauth:
            raise ValueError(
                "no credentials: set password_file or password_env "
                "(or oauth2_token_file / oauth2_token_command for XOAUTH2)"
            )
        if self.oauth2_user and not oauth:
            raise ValueError("oauth2_user needs oauth2_token_file or oauth2_token_command")
        if self.after == "move" and not self.move_to:
            raise ValueError('after = "move" needs move_to (the folder taken mail goes to)')
        if self.after == "seen" and self.move_to:
            raise ValueError('move_to is set but after = "seen" keeps mail in place; drop one')
        if self.move_to and self.move_to in self.folders:
            raise ValueError(f"move_to {self.move_to!r} is also a watched folder")
        return self

    # -- derived -------------------------------------------------------------------------
    @property
    def action(self) -> After:
        """What happens to a message once the spool has it."""
        return self.after or ("move" if self.move_to else "seen")

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.tls == "implicit" else 143)

    @property
    def uses_oauth2(self) -> bool:
        return bool(self.oauth2_token_file or self.oauth2_token_command)

    @property
    def login_user(self) -> str:
        return (self.oauth2_user or self.user) if self.uses_oauth2 else self.user

    def account(self) -> str:
        """user@host:port, as it appears in logs and checkpoint keys."""
        return f"{self.user}@{self.host}:{self.effective_port}"

    def path(self, rel: str) -> Path:
        return (self.base / rel).resolve()

    # -- secrets -------------------------------------------------------------------------
    def password(self) -> str:
        if self.password_file:
            return _read_secret_file(self.path(self.password_file), "password_file")
        if self.password_env:
            value = os.environ.get(self.password_env)
            if not value:
                raise SecretError(f"password_env: ${self.password_env} is not set")
            return value
        raise SecretError("no password configured")

    def oauth2_token(self) -> str:
        if self.oauth2_token_file:
            return _read_secret_file(self.path(self.oauth2_token_file), "oauth2_token_file")
        if self.oauth2_token_command:
            return self._run_token_command()
        raise SecretError("no OAuth2 token source configured")

    def _run_token_command(self) -> str:
        cmd = self.oauth2_token_command
        argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd or [])
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                timeout=self.timeout_seconds,
                cwd=self.base,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SecretError(f"oauth2_token_command {argv[0]!r} could not run: {e}") from e
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()[:300]
            raise SecretError(
                f"oauth2_token_command exited with status {done.returncode}: {err or '(no output)'}"
            )
        token = done.stdout.decode(errors="replace").strip()
        if not token:
            raise SecretError("oauth2_token_command printed no token")
        return token


def _read_secret_file(path: Path, key: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise SecretError(f"{key}: cannot read {path}: {e.strerror}") from e
    if not value:
        raise SecretError(f"{key}: {path} is empty")
    return value


def _secret_problems(path: Path, s: ImapSettings) -> list[str]:
    """Problems a config check can see without the network: missing files, unset variables."""
    problems = []
    for key in ("password_file", "oauth2_token_file", "ca_file"):
        rel = getattr(s, key)
        if rel and not s.path(rel).is_file():
            problems.append(f"{path}: imap.{key}: {s.path(rel)} does not exist")
    if s.password_env and not os.environ.get(s.password_env):
        problems.append(f"{path}: imap.password_env: ${s.password_env} is not set")
    return problems


def parse_imap(queue: Queue, *, check_secrets: bool = True) -> ImapSettings | None:
    """The queue's validated IMAP settings, None when it has no [imap]; else ConfigError."""
    checks = _secret_problems if check_secrets else None
    return parse_section(queue, "imap", ImapSettings, checks)


def imap_problems(config: Config, *, check_secrets: bool = True) -> list[str]:
    """Every problem in every queue's [imap] table (empty when all are fine)."""
    problems: list[str] = []
    watched: dict[tuple[str, str], Queue] = {}
    for q in config.queues:
        try:
            s = parse_imap(q, check_secrets=check_secrets)
        except ConfigError as e:
            problems.extend(e.problems)
            continue
        for i, folder in enumerate(s.folders if s else ()):
            other = watched.setdefault((s.account(), folder), q)
            if other is not q:
                problems.append(
                    f"{q.source}: imap.folders.{i}: {s.account()}/{folder} is already watched "
                    f"by queue {other.name!r} ({other.source})"
                )
    return problems


def imap_settings(config: Config, *, check_secrets: bool = True) -> dict[str, ImapSettings]:
    """queue name -> settings of each queue with [imap]; ConfigError lists all problems."""
    problems = imap_problems(config, check_secrets=check_secrets)
    if problems:
        raise ConfigError(problems)
    out = {}
    for q in config.queues:
        s = parse_imap(q, check_secrets=False)
        if s is not None:
            out[q.name] = s
    return out
