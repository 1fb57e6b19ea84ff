"""The `[imap]` table of a queue file: one IMAP account the queue's mail is fetched from.

Errors read ``FILE: imap.KEY: reason``. The password or OAuth2 token is a SecretRef spelled
as flat keys (`password_file` | `password_env` | `password_command`, `oauth2_token_*`),
read at each connection (docs/imap.md).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from mailgate.config.base import NotBlank, Strict
from mailgate.config.oauth2 import OAuth2Settings
from mailgate.config.secrets import SecretError, flat_keys, flat_ref

TlsMode = Literal["implicit", "starttls", "none"]
After = Literal["move", "seen"]


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ImapSettings(Strict):
    """One queue's IMAP account. `base` is the queue file's directory (for relative paths)."""

    host: NotBlank
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    tls: TlsMode = "implicit"
    ca_file: str | None = None
    user: NotBlank
    password_file: str | None = None
    password_env: str | None = None
    password_command: str | list[str] | None = None
    oauth2_user: str | None = None
    oauth2_token_file: str | None = None
    oauth2_token_env: str | None = None
    oauth2_token_command: str | list[str] | None = None
    oauth2: OAuth2Settings | None = None  # mailgate gets and refreshes its own tokens
    folders: list[str] = ["INBOX"]
    after: After | None = None
    move_to: str | None = None
    poll_interval_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    idle_renew_seconds: Annotated[float, Field(ge=10, le=29 * 60)] = 25 * 60.0
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 50
    batch_max_bytes: Annotated[int, Field(ge=1)] = 32 * 1024 * 1024
    base: Path = Path(".")

    @field_validator("oauth2", mode="before")
    @classmethod
    def _for_imap(cls, v: object) -> object:
        return {**v, "purpose": "imap"} if isinstance(v, dict) else v

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
        password, oauth = flat_keys(self, "password"), flat_keys(self, "oauth2_token")
        oauth += ["oauth2"] if self.oauth2 else []
        if len(password) > 1 or len(oauth) > 1:
            both = password if len(password) > 1 else oauth
            raise ValueError(f"give only one of {' and '.join(both)}")
        if password and oauth:
            raise ValueError(f"give either {password[0]} or {oauth[0]}, not both")
        if not password and not oauth:
            raise ValueError(
                "no credentials: set password_file, password_env or password_command "
                "(or an oauth2 table, or oauth2_token_file / _env / _command for XOAUTH2)"
            )
        if self.oauth2_user and not oauth:
            raise ValueError("oauth2_user needs an oauth2 table or oauth2_token_file/_env/_command")
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
        return bool(flat_keys(self, "oauth2_token")) or self.oauth2 is not None

    @property
    def login_user(self) -> str:
        return (self.oauth2_user or self.user) if self.uses_oauth2 else self.user

    def account(self) -> str:
        """user@host:port, as it appears in logs and checkpoint keys."""
        return f"{self.user}@{self.host}:{self.effective_port}"

    def path(self, rel: str) -> Path:
        return (self.base / rel).resolve()

    # -- secrets, read at each use -------------------------------------------------------
    def password(self) -> str:
        return self._secret("password")

    def oauth2_token(self) -> str:
        return self._secret("oauth2_token")

    def _secret(self, prefix: str) -> str:
        found = flat_ref(self, prefix)
        if found is None:
            raise SecretError(f"no {prefix} configured")
        ref, key = found
        return ref.read(self.base, key, timeout=self.timeout_seconds)

    def problems(self, source: Path) -> list[str]:
        """What a config check sees without the network: missing files, unset variables."""
        out = []
        for prefix in ("password", "oauth2_token"):
            found = flat_ref(self, prefix)
            if found is not None:
                out += [f"{source}: imap.{p}" for p in found[0].problems(self.base, found[1])]
        secret = self.oauth2.client_secret if self.oauth2 else None
        if secret is not None:
            key = f"imap.oauth2.client_secret.{secret.kind}"
            out += [f"{source}: {p}" for p in secret.problems(self.base, key)]
        if self.ca_file and not self.path(self.ca_file).is_file():
            out.append(f"{source}: imap.ca_file: {self.path(self.ca_file)} does not exist")
        return out
