"""The `[pgp]` table of a queue: its settings, validated (docs/pgp.md).

config.py keeps `[pgp]` raw (`Queue.pgp`); this module owns its meaning. Errors read like
config.py's: ``FILE: pgp.KEY: reason``.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from mailgate.config.load import Config, ConfigError, Queue, parse_section
from mailgate.pgp import keys as keymgmt

log = logging.getLogger(__name__)

_HEX = re.compile(r"^[0-9A-F]{40}$|^[0-9A-F]{64}$")


class PgpSettings(BaseModel):
    """One queue's `[pgp]` table. `base` is the queue file's directory (for relative paths)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gnupg_home: str
    key: str = ""  # needed to sign and to publish; gpg finds the decryption key by itself
    passphrase_file: str | None = None
    passphrase_env: str | None = None
    sign_outgoing: bool = False
    encrypt_to_customers: bool = True
    allow_plaintext_secrets_to_agents: bool = False
    publish_key_hint: bool = False
    base: Path = Path(".")

    @field_validator("gnupg_home")
    @classmethod
    def _home(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()

    @field_validator("key")
    @classmethod
    def _fingerprint(cls, v: str) -> str:
        fpr = v.replace(" ", "").upper()
        if fpr and not _HEX.match(fpr):
            raise ValueError(
                "must be the queue key's full fingerprint (40 or 64 hex digits), "
                "see `mailgate keys list QUEUE`"
            )
        return fpr

    @model_validator(mode="after")
    def _one_passphrase(self) -> PgpSettings:
        if self.passphrase_file and self.passphrase_env:
            raise ValueError("give only one of passphrase_file and passphrase_env")
        needs = [k for k in ("sign_outgoing", "publish_key_hint") if getattr(self, k)]
        if needs and not self.key:
            raise ValueError(
                f"{' and '.join(needs)} need key (the queue key's fingerprint; "
                "`mailgate keys create QUEUE` prints it)"
            )
        return self

    @property
    def home(self) -> Path:
        return (self.base / self.gnupg_home).resolve()

    def passphrase(self) -> str | None:
        """The queue key's passphrase, read now (a rotated file just works); None if none."""
        if self.passphrase_file:
            path = (self.base / self.passphrase_file).resolve()
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError as e:
                log.error("pgp.passphrase_file: cannot read %s: %s", path, e.strerror)
                return None
            return value or None
        if self.passphrase_env:
            return os.environ.get(self.passphrase_env) or None
        return None


def parse_pgp(queue: Queue, *, check_secrets: bool = True) -> PgpSettings | None:
    """The queue's validated `[pgp]`, None when it has none; else ConfigError."""
    checks = _secret_problems if check_secrets else None
    return parse_section(queue, "pgp", PgpSettings, checks)


def _secret_problems(path: Path, s: PgpSettings) -> list[str]:
    problems = []
    if not s.home.is_dir():
        problems.append(f"{path}: pgp.gnupg_home: {s.home} is not a directory")
    if s.passphrase_file and not (s.base / s.passphrase_file).resolve().is_file():
        problems.append(
            f"{path}: pgp.passphrase_file: {(s.base / s.passphrase_file).resolve()} does not exist"
        )
    if s.passphrase_env and not os.environ.get(s.passphrase_env):
        problems.append(f"{path}: pgp.passphrase_env: ${s.passphrase_env} is not set")
    return problems


def pgp_problems(config: Config, *, check_keys: bool = False) -> list[str]:
    """Every problem in every queue's `[pgp]` (for check-config); check_keys also runs gpg
    to see that the queue key and its secret half are in the home and usable."""
    problems: list[str] = []
    for q in config.queues:
        try:
            s = parse_pgp(q)
        except ConfigError as e:
            problems.extend(e.problems)
            continue
        if s is None or not check_keys:
            continue
        try:
            found = keymgmt.list_keys(s.home)
        except keymgmt.KeyManagementError as e:
            problems.append(f"{q.source}: pgp.gnupg_home: {e}")
            continue
        if not s.key:
            if not any(k.secret and k.usable for k in found):
                problems.append(f"{q.source}: pgp.gnupg_home: no usable secret key in {s.home}")
            continue
        info = next((k for k in found if k.fingerprint == s.key), None)
        if info is None:
            problems.append(f"{q.source}: pgp.key: {s.key} is not in {s.home}")
        elif not info.secret:
            problems.append(f"{q.source}: pgp.key: the secret key of {s.key} is not in {s.home}")
        elif not info.usable:
            problems.append(f"{q.source}: pgp.key: {s.key} is expired, revoked or disabled")
    return problems
