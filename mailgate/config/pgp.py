"""The `[pgp]` table of a queue file: the queue's GnuPG home, key and passphrase (docs/pgp.md).

Errors read ``FILE: pgp.KEY: reason``. The passphrase is a SecretRef spelled as flat keys
(`passphrase_file` | `passphrase_env` | `passphrase_command`), read at each use. Whether the
key is really in the home is asked of gpg by `check-config`, not here.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from pydantic import field_validator, model_validator

from mailgate.config.base import NotBlank, Strict
from mailgate.config.secrets import SecretError, flat_keys, flat_ref

log = logging.getLogger(__name__)

_HEX = re.compile(r"^[0-9A-F]{40}$|^[0-9A-F]{64}$")


class PgpSettings(Strict):
    """One queue's `[pgp]` table. `base` is the queue file's directory (for relative paths)."""

    gnupg_home: NotBlank
    key: str = ""  # needed to sign and to publish; gpg finds the decryption key by itself
    passphrase_file: str | None = None
    passphrase_env: str | None = None
    passphrase_command: str | list[str] | None = None
    sign_outgoing: bool = False
    encrypt_to_customers: bool = True
    allow_plaintext_secrets_to_agents: bool = False
    publish_key_hint: bool = False
    base: Path = Path(".")

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
        given = flat_keys(self, "passphrase")
        if len(given) > 1:
            raise ValueError(f"give only one of {' and '.join(given)}")
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
        """The queue key's passphrase, read now (a rotated file just works); None if none
        is configured or it cannot be read (logged: gpg then reports the bad passphrase)."""
        found = flat_ref(self, "passphrase")
        if found is None:
            return None
        try:
            return found[0].read(self.base, f"pgp.{found[1]}")
        except SecretError as e:
            log.error("%s", e)
            return None

    def problems(self, source: Path) -> list[str]:
        """What a config check sees without gpg: the home exists, the passphrase is there."""
        out = []
        if not self.home.is_dir():
            out.append(f"{source}: pgp.gnupg_home: {self.home} is not a directory")
        found = flat_ref(self, "passphrase")
        if found is not None:
            out += [f"{source}: pgp.{p}" for p in found[0].problems(self.base, found[1])]
        return out
