"""Key management for a queue's GnuPG home: create, import, export, list (for `mailgate keys`)."""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path

log = logging.getLogger(__name__)

GPG = "gpg"
GPG_TIMEOUT = 60.0
# gpg-agent's socket lives in the home; unix socket paths are limited to ~107 bytes
LONG_HOME = 80

ALGOS: dict[str, str] = {
    "ecc": (
        "Key-Type: EDDSA\nKey-Curve: ed25519\nKey-Usage: sign\n"
        "Subkey-Type: ECDH\nSubkey-Curve: cv25519\nSubkey-Usage: encrypt\n"
    ),
    "rsa2048": (
        "Key-Type: RSA\nKey-Length: 2048\nKey-Usage: sign\n"
        "Subkey-Type: RSA\nSubkey-Length: 2048\nSubkey-Usage: encrypt\n"
    ),
    "rsa3072": (
        "Key-Type: RSA\nKey-Length: 3072\nKey-Usage: sign\n"
        "Subkey-Type: RSA\nSubkey-Length: 3072\nSubkey-Usage: encrypt\n"
    ),
    "rsa4096": (
        "Key-Type: RSA\nKey-Length: 4096\nKey-Usage: sign\n"
        "Subkey-Type: RSA\nSubkey-Length: 4096\nSubkey-Usage: encrypt\n"
    ),
}

_PK_ALGOS = {"1": "rsa", "2": "rsa", "3": "rsa", "16": "elg", "17": "dsa", "18": "ecdh"}
_PK_ALGOS |= {"19": "ecdsa", "22": "eddsa"}
_BAD_VALIDITY = frozenset("ride")  # revoked, invalid, disabled, expired
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FPR = re.compile(r"^[0-9A-Fa-f]{40}$|^[0-9A-Fa-f]{64}$")


class KeyManagementError(Exception):
    """A key operation failed; the message says which and why."""


@dataclass(frozen=True)
class KeyInfo:
    fingerprint: str
    uids: tuple[str, ...]
    secret: bool
    expires: datetime | None
    algo: str  # "ed25519", "rsa2048", ...
    created: datetime | None = None
    emails: tuple[str, ...] = ()  # lower-cased addresses of the uids that are not revoked
    validity: str = "-"  # gpg's validity letter for the key: r revoked, e expired, ...
    can_encrypt: bool = False  # the key as a whole has a usable encryption (sub)key
    can_sign: bool = False

    @property
    def revoked(self) -> bool:
        return self.validity == "r"

    @property
    def expired(self) -> bool:
        return self.validity == "e" or (
            self.expires is not None and self.expires <= datetime.now(UTC)
        )

    @property
    def usable(self) -> bool:
        return self.validity not in _BAD_VALIDITY and not self.expired


def ensure_home(home: str | os.PathLike[str]) -> Path:
    """Create the GnuPG home with mode 700 if missing; warn about traps gpg will not explain."""
    path = Path(home)
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True)
        path.chmod(0o700)
        (path / "gpg-agent.conf").write_text("allow-loopback-pinentry\n")
        log.info("created GnuPG home %s", path)
    elif stat.S_IMODE(path.stat().st_mode) & 0o077:
        log.warning("GnuPG home %s is readable by group/others; gpg will complain", path)
    if len(str(path.resolve())) > LONG_HOME:
        log.warning("GnuPG home %s is long: gpg-agent may fall back to /run/user/...", path)
    return path


def run_gpg(
    home: str | os.PathLike[str], args: list[str], data: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    cmd = [GPG, "--homedir", str(home), "--batch", "--no-tty", "--status-fd", "2", *args]
    env = dict(os.environ, LC_ALL="C")
    try:
        return subprocess.run(
            cmd, input=data, capture_output=True, timeout=GPG_TIMEOUT, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KeyManagementError(f"could not run gpg {args[:1]}: {exc}") from exc


def _stderr_tail(proc: subprocess.CompletedProcess[bytes]) -> str:
    lines = [
        ln
        for ln in proc.stderr.decode("utf-8", "replace").splitlines()
        if ln.strip() and not ln.startswith("[GNUPG:]")
    ]
    return "; ".join(lines[-3:]) or f"exit code {proc.returncode}"


def _check_field(what: str, value: str) -> None:
    if not value or _CONTROL.search(value) or "<" in value or ">" in value:
        raise KeyManagementError(f"invalid {what}: {value!r}")


def create_queue_key(
    home: str | os.PathLike[str],
    name: str,
    email: str,
    passphrase: str | None = None,
    algo: str = "ecc",
    expire: str = "0",
) -> str:
    """Generate a sign+encrypt key for a queue address; returns its fingerprint."""
    _check_field("name", name)
    _check_field("email", email)
    if "@" not in email or parseaddr(email)[1] != email:
        raise KeyManagementError(f"invalid email: {email!r}")
    if algo not in ALGOS:
        raise KeyManagementError(f"unknown algo {algo!r}; use one of {', '.join(ALGOS)}")
    if not re.fullmatch(r"0|\d+[dwmy]?|\d{4}-\d{2}-\d{2}", expire):
        raise KeyManagementError(f"invalid expire {expire!r}: 0, N[dwmy] or YYYY-MM-DD")
    if passphrase is not None and (not passphrase or _CONTROL.search(passphrase)):
        raise KeyManagementError("passphrase must be non-empty and on one line")
    home = ensure_home(home)
    spec = f"{ALGOS[algo]}Name-Real: {name}\nName-Email: {email}\nExpire-Date: {expire}\n"
    spec += "%no-protection\n" if passphrase is None else f"Passphrase: {passphrase}\n"
    spec += "%commit\n"
    proc = run_gpg(home, ["--pinentry-mode", "loopback", "--gen-key"], spec.encode())
    for line in proc.stderr.decode("utf-8", "replace").splitlines():
        if line.startswith("[GNUPG:] KEY_CREATED "):
            fpr = line.split()[3]
            log.info("created %s key %s for %s", algo, fpr, email)
            return fpr
    raise KeyManagementError(f"key generation failed: {_stderr_tail(proc)}")


def import_key(
    home: str | os.PathLike[str], armored_or_path: str | bytes | os.PathLike[str]
) -> list[str]:
    """Import armored (or binary) key data, or a key file by path; returns the fingerprints."""
    if isinstance(armored_or_path, bytes):
        data = armored_or_path
    elif isinstance(armored_or_path, str) and "-----BEGIN PGP" in armored_or_path:
        data = armored_or_path.encode("utf-8")
    else:
        try:
            data = Path(armored_or_path).read_bytes()
        except OSError as exc:
            raise KeyManagementError(f"cannot read key file {armored_or_path}: {exc}") from exc
    home = ensure_home(home)
    proc = run_gpg(home, ["--import"], data)
    fprs: list[str] = []
    for line in proc.stderr.decode("utf-8", "replace").splitlines():
        if line.startswith("[GNUPG:] IMPORT_OK "):
            fpr = line.split()[3]
            if fpr not in fprs:
                fprs.append(fpr)
    if not fprs:
        raise KeyManagementError(f"no key imported: {_stderr_tail(proc)}")
    log.info("imported %s into %s", ", ".join(fprs), home)
    return fprs


def export_public(home: str | os.PathLike[str], fingerprint: str) -> str:
    """The armored public key (to publish for customers)."""
    if not _FPR.match(fingerprint):
        raise KeyManagementError(f"not a fingerprint: {fingerprint!r}")
    proc = run_gpg(home, ["--armor", "--export", fingerprint])
    text = proc.stdout.decode("ascii", "replace")
    if "-----BEGIN PGP PUBLIC KEY BLOCK-----" not in text:
        raise KeyManagementError(f"no public key {fingerprint} in {home}")
    return text


def _ts(value: str) -> datetime | None:
    if not value:
        return None
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    try:  # ISO 8601 form gpg uses with --fixed-list-mode on some builds
        return datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _unescape(value: str) -> str:
    raw = re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), value)
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def _algo_name(fields: list[str]) -> str:
    curve = fields[16] if len(fields) > 16 else ""
    if curve:
        return curve
    return f"{_PK_ALGOS.get(fields[3], 'algo' + fields[3])}{fields[2]}"


def _uid_email(uid: str) -> str:
    addr = parseaddr(uid)[1]
    return addr.lower() if "@" in addr else ""


def parse_colon_listing(text: str, secret_fprs: frozenset[str] = frozenset()) -> list[KeyInfo]:
    """Pure: `gpg --with-colons --fixed-list-mode --list-keys` output -> KeyInfo list."""
    keys: list[KeyInfo] = []
    cur: dict[str, object] | None = None
    want_fpr = False

    def flush() -> None:
        if cur and cur.get("fingerprint"):
            fpr = str(cur["fingerprint"])
            keys.append(
                KeyInfo(
                    fingerprint=fpr,
                    uids=tuple(cur["uids"]),  # type: ignore[arg-type]
                    secret=fpr in secret_fprs,
                    expires=cur["expires"],  # type: ignore[arg-type]
                    algo=str(cur["algo"]),
                    created=cur["created"],  # type: ignore[arg-type]
                    emails=tuple(cur["emails"]),  # type: ignore[arg-type]
                    validity=str(cur["validity"]),
                    can_encrypt="E" in str(cur["caps"]),
                    can_sign="S" in str(cur["caps"]),
                )
            )

    for line in text.splitlines():
        fields = line.split(":")
        rec = fields[0]
        if rec in ("pub", "sec") and len(fields) > 11:
            flush()
            cur = {
                "fingerprint": "",
                "uids": [],
                "emails": [],
                "validity": fields[1] or "-",
                "expires": _ts(fields[6]),
                "created": _ts(fields[5]),
                "algo": _algo_name(fields),
                "caps": fields[11],
            }
            want_fpr = True
        elif rec in ("sub", "ssb"):
            want_fpr = False
        elif rec == "fpr" and cur is not None and want_fpr and len(fields) > 9:
            cur["fingerprint"] = fields[9]
            want_fpr = False
        elif rec == "uid" and cur is not None and len(fields) > 9:
            uid = _unescape(fields[9])
            cur["uids"].append(uid)  # type: ignore[attr-defined]
            email = _uid_email(uid)
            if email and fields[1] not in ("r", "i") and email not in cur["emails"]:  # type: ignore[operator]
                cur["emails"].append(email)  # type: ignore[attr-defined]
    flush()
    return keys


def list_keys(home: str | os.PathLike[str]) -> list[KeyInfo]:
    """Every public key in the home; `secret` tells whether its secret key is there too."""
    if not Path(home).is_dir():
        raise KeyManagementError(f"no GnuPG home at {home}")
    args = ["--with-colons", "--fixed-list-mode"]
    pub = run_gpg(home, [*args, "--list-keys"])
    sec = run_gpg(home, [*args, "--list-secret-keys"])
    if pub.returncode not in (0, 2):
        raise KeyManagementError(f"listing keys failed: {_stderr_tail(pub)}")
    secret_fprs = frozenset(
        k.fingerprint for k in parse_colon_listing(sec.stdout.decode("utf-8", "replace"))
    )
    return parse_colon_listing(pub.stdout.decode("utf-8", "replace"), secret_fprs)
