"""The gpg edge (python-gnupg): one queue's `Keyring`, and `Keyrings`, the daemon's cache of them.

`Keyrings` is created and closed by the composition root (`mailgate.app`): closing stops
the gpg-agents its keyrings started.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote

import gnupg

from mailgate.pgp import keys as keymgmt
from mailgate.pgp.armor import BEGIN_MESSAGE, first_packet_tag
from mailgate.pgp.keys import KeyInfo
from mailgate.pgp.verdicts import (
    SYMMETRIC,
    SignatureCheck,
    best_signature,
    decryption_verdict,
    gpg_complaint,
    signature_groups,
    signature_verdict,
    status_lines,
)

log = logging.getLogger(__name__)

MAX_OUTPUT = 64 * 1024 * 1024  # bytes gpg may write for one decryption (compression bombs)
KEY_CACHE_SECONDS = 30.0
_FPR = re.compile(r"^[0-9A-F]{40}$|^[0-9A-F]{64}$")
_NO_SIG = "no valid OpenPGP signature data (corrupted, or not a signature)"


class CryptoError(Exception):
    """Outgoing encryption failed; never send the message unencrypted instead."""


@dataclass(frozen=True)
class Decryption:
    ok: bool
    data: bytes  # b"" unless ok: gpg streams plaintext before it detects a bad/missing MDC
    reason: str
    signature: SignatureCheck | None
    literal_name: str = ""


def _addr(value: str) -> str:
    return parseaddr(value or "")[1].strip().lower()


def _could_not_run(exc: Exception) -> SignatureCheck:
    log.exception("gpg --verify could not run")
    return SignatureCheck(False, "", (), False, f"gpg could not run: {type(exc).__name__}")


class Keyring:
    """One queue's GnuPG home plus the passphrase of its secret key (may be None)."""

    def __init__(
        self,
        home: str | os.PathLike[str],
        passphrase: str | None = None,
        *,
        max_output: int = MAX_OUTPUT,
        gpgbinary: str = "gpg",
    ) -> None:
        if passphrase and ("\n" in passphrase or "\r" in passphrase):
            raise ValueError("the passphrase must be a single line")
        self.home: Path = keymgmt.ensure_home(home)
        self.passphrase = passphrase or None
        self.max_output = max_output
        # loopback: a missing passphrase fails at once instead of waiting for a pinentry;
        # no key retrieval: verifying a signature never reaches the network
        self.gpg = gnupg.GPG(
            gpgbinary=gpgbinary,
            gnupghome=str(self.home),
            env=dict(os.environ, LC_ALL="C"),
            options=["--pinentry-mode", "loopback", "--no-auto-key-retrieve"],
        )
        self._cache: tuple[tuple[object, ...], float, list[KeyInfo]] | None = None

    # -- keys

    def _ring_state(self) -> tuple[object, ...]:
        state: list[object] = []
        for name in ("pubring.kbx", "pubring.gpg", "trustdb.gpg"):
            try:
                st = (self.home / name).stat()
                state.append((name, st.st_mtime_ns, st.st_size))
            except OSError:
                state.append(None)
        return tuple(state)

    def keys(self) -> list[KeyInfo]:
        state = self._ring_state()
        now = time.monotonic()
        if self._cache and self._cache[0] == state and now - self._cache[1] < KEY_CACHE_SECONDS:
            return self._cache[2]
        found = keymgmt.list_keys(self.home)
        self._cache = (state, now, found)
        return found

    def key(self, fingerprint: str) -> KeyInfo | None:
        fingerprint = fingerprint.upper()
        return next((k for k in self.keys() if k.fingerprint == fingerprint), None)

    def public_key_for(self, email: str) -> str | None:
        """Fingerprint of a valid, unexpired, unrevoked encryption key whose uid is `email`."""
        addr = _addr(email)
        if not addr:
            return None
        try:
            found = [k for k in self.keys() if addr in k.emails and k.can_encrypt and k.usable]
        except keymgmt.KeyManagementError:
            log.exception("listing keys in %s failed", self.home)
            return None
        if not found:
            return None
        newest = max(found, key=lambda k: k.created.timestamp() if k.created else 0.0)
        return newest.fingerprint

    def stop_agent(self) -> None:
        """Stop the gpg-agent of this home (tests, shutdown)."""
        subprocess.run(
            ["gpgconf", "--homedir", str(self.home), "--kill", "all"],
            capture_output=True,
            timeout=30,
            check=False,
        )

    # -- operations

    def _check(self, stderr: str, from_addr: str) -> SignatureCheck | None:
        status = status_lines(stderr)
        checks = [self._signature(g, from_addr) for g in signature_groups(status)]
        return best_signature(checks)

    def _signature(self, group: dict[str, str], from_addr: str) -> SignatureCheck:
        valid, fpr, reason = signature_verdict(group)
        emails: tuple[str, ...] = ()
        if _FPR.match(fpr):
            try:
                info = self.key(fpr)
            except keymgmt.KeyManagementError:
                info = None
            emails = info.emails if info else ()
        sender = _addr(from_addr)
        matches = bool(valid and sender and sender in emails)
        return SignatureCheck(valid, fpr, emails, matches, reason)

    def decrypt(self, data: bytes, from_addr: str = "") -> Decryption:
        """Never raises; the plaintext is dropped unless gpg vouched for its integrity."""
        if first_packet_tag(data) == 3:  # never try the queue passphrase on a symmetric message
            return Decryption(False, b"", SYMMETRIC, None)
        try:
            result = self.gpg.decrypt(
                data,
                passphrase=self.passphrase,
                extra_args=["--max-output", str(self.max_output)],
            )
        except Exception as exc:  # gpg missing, pipe errors: a failure entry, not a crash
            log.exception("gpg --decrypt could not run")
            return Decryption(False, b"", f"gpg could not run: {type(exc).__name__}", None)
        stderr = result.stderr or ""
        status = status_lines(stderr)
        reason = decryption_verdict(status, stderr, result.returncode)
        signature = self._check(stderr, from_addr)
        if reason:
            return Decryption(False, b"", reason, signature)
        literal = next((v.split() for k, v in status if k == "PLAINTEXT"), [])
        name = unquote(literal[2]) if len(literal) >= 3 else ""
        data_out = result.data if isinstance(result.data, bytes) else b""
        lengths = [v for k, v in status if k == "PLAINTEXT_LENGTH"]
        if len(lengths) == 1 and lengths[0].isdigit() and int(lengths[0]) != len(data_out):
            return Decryption(False, b"", "decrypted data incomplete", signature)
        return Decryption(True, data_out, "", signature, name)

    def verify_detached(self, data: bytes, signature: bytes, from_addr: str = "") -> SignatureCheck:
        fd, path = tempfile.mkstemp(prefix="mg-sig-", suffix=".asc")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(signature)
            result = self.gpg.verify_data(path, data)
        except Exception as exc:
            return _could_not_run(exc)
        finally:
            Path(path).unlink(missing_ok=True)
        return self._check(result.stderr or "", from_addr) or SignatureCheck(
            False, "", (), False, _NO_SIG
        )

    def verify_clearsigned(self, block: bytes, from_addr: str = "") -> SignatureCheck:
        try:
            result = self.gpg.verify(block)
        except Exception as exc:
            return _could_not_run(exc)
        return self._check(result.stderr or "", from_addr) or SignatureCheck(
            False, "", (), False, _NO_SIG
        )

    def encrypt(self, data: bytes, recipients: list[str], sign_with: str | None = None) -> str:
        """Armored OpenPGP message for these fingerprints; raises CryptoError."""
        fprs = [r.upper() for r in recipients]
        bad = [r for r in fprs if not _FPR.match(r)]
        if not fprs or bad:
            raise CryptoError(f"recipients must be full fingerprints, got {recipients!r}")
        if sign_with is not None and not _FPR.match(sign_with.upper()):
            raise CryptoError(f"sign_with must be a full fingerprint, got {sign_with!r}")
        try:
            result = self.gpg.encrypt(
                data,
                fprs,
                armor=True,
                always_trust=True,  # the keyring is curated by the admin, not a web of trust
                sign=sign_with,
                passphrase=self.passphrase if sign_with else None,
            )
        except Exception as exc:
            raise CryptoError(f"gpg could not run: {exc}") from exc
        armored = str(result)
        if not result.ok or not armored.startswith(BEGIN_MESSAGE):
            why = result.status or gpg_complaint(result.stderr or "")
            raise CryptoError(f"encryption failed: {why}")
        return armored


class Keyrings:
    """One Keyring per (GnuPG home, passphrase), shared by the worker, the sender and the
    agent path (starting gnupg.GPG runs gpg once). `close` stops their gpg-agents."""

    def __init__(self) -> None:
        self._rings: dict[tuple[str, str | None], Keyring] = {}
        self._lock = threading.Lock()

    def get(self, home: str | os.PathLike[str], passphrase: str | None = None) -> Keyring:
        key = (str(home), passphrase)
        with self._lock:
            ring = self._rings.get(key)
            if ring is None:
                ring = self._rings[key] = Keyring(home, passphrase)
            return ring

    def close(self) -> None:
        """Stop the gpg-agents of every home used so far; a later `get` starts afresh."""
        with self._lock:
            rings = list(self._rings.values())
            self._rings.clear()
        for ring in rings:
            ring.stop_agent()

    def __enter__(self) -> Keyrings:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
