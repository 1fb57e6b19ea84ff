"""PGP at the mail edge: decrypt and verify incoming mail, encrypt outgoing mail (python-gnupg).

Decrypted content never goes into the customer-visible text (design invariant 7): every
encrypted block there becomes `SECURED`, and the plaintext travels apart in
`CryptoResult.secrets`, for agents only.
"""

from __future__ import annotations

import base64
import binascii
import copy
import logging
import mimetypes
import os
import re
import secrets as _random
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage, Message
from email.policy import EmailPolicy, compat32
from email.policy import default as default_policy
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import unquote

import gnupg

from mailgate.pgp import keys as keymgmt
from mailgate.pgp.keys import KeyInfo

log = logging.getLogger(__name__)

SECURED = "| secured information |"
MAX_OUTPUT = 64 * 1024 * 1024  # bytes gpg may write for one decryption (compression bombs)
MAX_BLOCKS = 32  # encrypted blocks/parts decrypted per message; the rest fail with a reason
MAX_DEPTH = 20  # MIME nesting we descend into
KEY_CACHE_SECONDS = 30.0

_BEGIN_MSG = "-----BEGIN PGP MESSAGE-----"
_END_MSG = "-----END PGP MESSAGE-----"
_BEGIN_SIGNED = "-----BEGIN PGP SIGNED MESSAGE-----"
_BEGIN_SIG = "-----BEGIN PGP SIGNATURE-----"
_END_SIG = "-----END PGP SIGNATURE-----"
_SCAN_MARKERS = (
    b"-----BEGIN PGP ",
    b"pgp-",  # application/pgp-encrypted, -signature, -keys; micalg=pgp-sha256
    b"PGP-",
    b"Pgp-",
    b".pgp",
    b".gpg",
    b".asc",
    b".PGP",
    b".GPG",
    b".ASC",
)
_ENCRYPTED_SUFFIXES = (".pgp", ".gpg", ".asc")
_QUOTE_PREFIX = re.compile(r"^[ \t>]*")
_FPR = re.compile(r"^[0-9A-F]{40}$|^[0-9A-F]{64}$")
_SIG_STATUS = frozenset(
    {"GOODSIG", "BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "VALIDSIG", "NO_PUBKEY"}
)
_BAD_PASSPHRASE = 11  # GPG_ERR_BAD_PASSPHRASE
_NO_SIG = "no valid OpenPGP signature data (corrupted, or not a signature)"
_TOO_MANY = f"not processed: more than {MAX_BLOCKS} PGP parts in one message"
_SYMMETRIC = "symmetrically encrypted (passphrase-only) message: not supported"
_NO_PUBKEY = "9"  # ERRSIG rc for a missing public key
_UNSUPPORTED_ALGO = "4"


class CryptoError(Exception):
    """Outgoing encryption failed; never send the message unencrypted instead."""


@dataclass(frozen=True)
class SignatureCheck:
    valid: bool
    fingerprint: str  # primary key fingerprint if known, else the key id gpg reported
    signer_emails: tuple[str, ...]
    matches_from: bool
    reason: str  # "" if valid


@dataclass(frozen=True)
class DecryptedPart:
    kind: str  # "inline" | "pgp-mime" | "attachment" | "message" (internal error)
    ok: bool
    text: str  # decrypted text ("" if failed or binary)
    attachments: tuple[tuple[str, str, bytes], ...]  # (sanitized filename, content type, data)
    ciphertext: bytes  # original armored/binary ciphertext (always kept)
    reason: str  # "" if ok, else why it failed
    signature: SignatureCheck | None
    source_name: str = ""  # sanitized filename of the encrypted attachment / PGP/MIME part


@dataclass(frozen=True)
class CryptoResult:
    customer_text: str  # the text with every encrypted block replaced by SECURED
    secrets: tuple[DecryptedPart, ...]  # in message order; agent-only
    signature: SignatureCheck | None  # a signature that covers the whole body, else None
    partial_signatures: tuple[SignatureCheck, ...] = ()  # signatures over only part of it

    @property
    def has_pgp(self) -> bool:
        return bool(self.secrets or self.signature or self.partial_signatures)

    @property
    def failures(self) -> tuple[str, ...]:
        return tuple(f"{p.kind}: {p.reason}" for p in self.secrets if not p.ok)


@dataclass(frozen=True)
class Decryption:
    ok: bool
    data: bytes  # b"" unless ok: gpg streams plaintext before it detects a bad/missing MDC
    reason: str
    signature: SignatureCheck | None
    literal_name: str = ""


# --------------------------------------------------------------------------- pure helpers


def scan(raw: bytes, text: str = "") -> bool:
    """Cheap: could this message hold PGP material? False means open_message can be skipped.

    Byte search only. Armor inside base64-encoded text parts is caught when the already
    decoded body is passed as `text`.
    """
    return any(marker in raw for marker in _SCAN_MARKERS) or "-----BEGIN PGP " in text


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    prefix: str  # what stood before the BEGIN marker on its line ("> " when quoted)
    armored: str  # the block with quote prefixes removed, LF line ends
    terminated: bool


def _lines(s: str) -> Iterable[tuple[int, str]]:
    pos = 0
    for line in s.splitlines(keepends=True):
        yield pos, line
        pos += len(line)


def _message_spans(s: str) -> list[_Span]:
    """Armored PGP MESSAGE blocks in text, quoted or not; an unterminated one runs to the end."""
    spans: list[_Span] = []
    if _BEGIN_MSG not in s:
        return spans
    inside: tuple[int, str] | None = None
    body: list[str] = []
    for pos, line in _lines(s):
        if inside is None:
            col = line.find(_BEGIN_MSG)
            if col >= 0:
                inside, body = (pos, line[:col]), [_BEGIN_MSG]
            continue
        col = line.find(_END_MSG)
        if col >= 0:
            body.append(_END_MSG)
            start, prefix = inside
            spans.append(_Span(start, pos + col + len(_END_MSG), prefix, _join(body), True))
            inside = None
            continue
        body.append(_QUOTE_PREFIX.sub("", line).rstrip())
    if inside is not None:
        start, prefix = inside
        spans.append(_Span(start, len(s), prefix, _join(body), False))
    return spans


def _join(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def _clearsigned_spans(s: str) -> list[_Span]:
    """Unquoted, complete clearsigned blocks (BEGIN SIGNED MESSAGE .. END SIGNATURE)."""
    spans: list[_Span] = []
    if _BEGIN_SIGNED not in s:
        return spans
    start: int | None = None
    seen_sig = False
    for pos, line in _lines(s):
        bare = line.rstrip()
        if start is None:
            if bare == _BEGIN_SIGNED:
                start, seen_sig = pos, False
            continue
        if bare == _BEGIN_SIG:
            seen_sig = True
        elif bare == _END_SIG and seen_sig:
            end = pos + len(line.rstrip("\r\n"))
            spans.append(_Span(start, end, "", s[start:end], True))
            start = None
    return spans


def redact(text: str) -> str:
    """Replace every armored PGP MESSAGE block (also quoted ones) by SECURED."""
    spans = _message_spans(text)
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for span in spans:
        out += [text[pos : span.start], span.prefix, SECURED]
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


def _norm_armor(armored: str) -> str:
    return re.sub(r"\s+", "", armored)


def sanitize_filename(name: str, fallback: str = "attachment") -> str:
    """A file name safe to store and to show: no directories, controls or leading dots."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip().lstrip(".").strip()
    return name[:200] or fallback


def _first_packet_tag(data: bytes) -> int | None:
    """Tag of the first OpenPGP packet, looking through ASCII armor; None if unsure."""
    head = data.lstrip()
    if head.startswith(b"-----BEGIN PGP"):
        lines = head[:4096].split(b"\n")
        i = 1
        while i < len(lines) and lines[i].strip():  # armor headers end at a blank line
            i += 1
        b64 = b"".join(line.strip() for line in lines[i + 1 : i + 4])
        try:
            head = base64.b64decode(b64[: len(b64) // 4 * 4], validate=True)
        except (binascii.Error, ValueError):
            return None
    if not head or not head[0] & 0x80:
        return None
    first = head[0]
    return first & 0x3F if first & 0x40 else (first >> 2) & 0x0F


def _binary_openpgp_encrypted(data: bytes) -> bool:
    """First packet is a public-key or symmetric-key encrypted session key (RFC 4880 4.2)."""
    return bool(data) and data.lstrip()[:1] != b"-" and _first_packet_tag(data) in (1, 3)


def _filename(part: Message) -> str:
    name = part.get_filename() or part.get_param("name") or ""
    return sanitize_filename(name, "") if isinstance(name, str) else ""


def _looks_encrypted(part: Message, payload: bytes) -> bool:
    """An encrypted attachment: armored PGP MESSAGE, or binary OpenPGP with a .pgp-like name."""
    if _BEGIN_MSG.encode() in payload[:1_000_000]:
        return True
    hinted = _filename(part).lower().endswith(_ENCRYPTED_SUFFIXES)
    return (hinted or part.get_content_type() == "application/pgp-encrypted") and (
        _binary_openpgp_encrypted(payload)
    )


def _is_attachment(part: Message) -> bool:
    disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    return disposition == "attachment" or bool(part.get_filename())


def _decode_text(data: bytes, charset: str | None = None) -> str | None:
    """Text if it looks like text, else None (binary)."""
    if b"\x00" in data:
        return None
    for cs in dict.fromkeys(("utf-8", charset or "utf-8", "latin-1")):
        try:
            text = data.decode(cs)
        except (LookupError, UnicodeDecodeError):
            continue
        controls = sum(
            1 for ch in text if (ord(ch) < 32 and ch not in "\t\r\n\f") or 0x7F <= ord(ch) < 0xA0
        )
        return text if controls <= len(text) // 20 else None
    return None


def _part_text(part: Message) -> str:
    data = part.get_payload(decode=True) or b""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def signed_region(source: bytes, boundary: str) -> bytes | None:
    """The first part of a multipart/signed exactly as in `source`, CRLF-canonical (RFC 3156 5)."""
    marker = re.escape(boundary.encode("latin-1", "replace"))
    delim = re.compile(rb"^--" + marker + rb"(?:--)?[ \t]*\r?$", re.M)
    found = delim.finditer(source)
    first, second = next(found, None), next(found, None)
    if first is None or second is None:
        return None
    start = first.end() + 1  # past the LF that ends the delimiter line
    end = second.start()
    if end > 0 and source[end - 1 : end] == b"\n":  # that line break belongs to the delimiter
        end -= 1
        if end > 0 and source[end - 1 : end] == b"\r":
            end -= 1
    if end < start:
        return None
    return re.sub(rb"\r?\n", b"\r\n", source[start:end])


def status_lines(stderr: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for line in stderr.splitlines():
        if line.startswith("[GNUPG:] "):
            key, _, value = line[9:].partition(" ")
            out.append((key, value.strip()))
    return out


def decryption_verdict(status: list[tuple[str, str]], stderr: str, returncode: int | None) -> str:
    """Pure: "" if gpg decrypted with integrity protection (or the data was not encrypted)."""
    keys = {k for k, _ in status}
    info = next((v.split() for k, v in status if k == "DECRYPTION_INFO"), None)
    aead = bool(info and len(info) >= 3 and info[2] != "0")
    if "BADMDC" in keys:
        return "integrity check failed (BADMDC): the encrypted data was modified"
    no_mdc = info is not None and info[0] == "0" and not aead
    nomdc_error = any(k == "ERROR" and v.startswith("nomdc") for k, v in status)
    if no_mdc or nomdc_error or "not integrity protected" in stderr:
        return "refused: message without integrity protection (no MDC), it may have been altered"
    if "max-output" in stderr:
        return "decrypted data exceeds the size limit"
    failed = "DECRYPTION_FAILED" in keys or (
        "BEGIN_DECRYPTION" in keys and "DECRYPTION_OKAY" not in keys
    )
    if "DECRYPTION_OKAY" in keys and not failed:
        if "GOODMDC" not in keys and not aead:
            return "refused: no integrity check reported for this message"
        return ""
    if "NO_SECKEY" in keys and "DECRYPTION_OKAY" not in keys:
        ids = ", ".join(v.split()[0] for k, v in status if k == "NO_SECKEY" and v)
        return f"no secret key for this message (encrypted to {ids})"
    bad_pass = {"BAD_PASSPHRASE", "MISSING_PASSPHRASE"} & keys or any(
        k == "ERROR" and v.split()[-1].isdigit() and int(v.split()[-1]) & 0xFFFF == _BAD_PASSPHRASE
        for k, v in status
    )
    no_input = "can't get input" in stderr or "No passphrase given" in stderr
    if bad_pass or no_input or "Bad passphrase" in stderr:
        return "bad or missing passphrase for the queue key"
    if "NEED_PASSPHRASE_SYM" in keys:
        return _SYMMETRIC
    if failed:
        return "decryption failed: " + _gpg_complaint(stderr)
    if "CRC error" in stderr or "invalid armor" in stderr or "NODATA" in keys:
        return "no valid OpenPGP data (corrupted or truncated armor)"
    if "PLAINTEXT" in keys and (returncode == 0 or keys & _SIG_STATUS):
        return ""  # signed-only or literal data: nothing was encrypted
    return "not decryptable: " + _gpg_complaint(stderr)


def _gpg_complaint(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.startswith("gpg: ")]
    return lines[-1][5:] if lines else "gpg gave no reason"


def _signature_groups(status: list[tuple[str, str]]) -> list[dict[str, str]]:
    groups: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for key, value in status:
        if key == "NEWSIG":
            current = {}
            groups.append(current)
        elif key in _SIG_STATUS:
            if current is None:
                current = {}
                groups.append(current)
            current.setdefault(key, value)
    return [g for g in groups if g]


def signature_verdict(group: dict[str, str]) -> tuple[bool, str, str]:
    """Pure: (valid, fingerprint or key id, reason) for one signature's gpg status lines."""
    fpr = ""
    if "VALIDSIG" in group:
        fields = group["VALIDSIG"].split()
        fpr = fields[9] if len(fields) >= 10 else fields[0]
    elif "ERRSIG" in group:
        fields = group["ERRSIG"].split()
        fpr = fields[6] if len(fields) >= 7 and fields[6] != "-" else fields[0]
    else:
        for key in ("GOODSIG", "BADSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "NO_PUBKEY"):
            if group.get(key):
                fpr = group[key].split()[0]
                break
    if "BADSIG" in group:
        return False, fpr, "bad signature: the signed content was changed or the signature forged"
    if "ERRSIG" in group:
        rc = (group["ERRSIG"].split() + [""] * 6)[5]
        if rc == _NO_PUBKEY or "NO_PUBKEY" in group:
            return False, fpr, f"no public key for signer {fpr}"
        if rc == _UNSUPPORTED_ALGO:
            return False, fpr, "unsupported signature algorithm"
        return False, fpr, f"signature could not be checked (gpg error {rc})"
    if "REVKEYSIG" in group:
        return False, fpr, "signing key was revoked"
    if "EXPKEYSIG" in group:
        return False, fpr, "signing key has expired"
    if "EXPSIG" in group:
        return False, fpr, "signature has expired"
    if "GOODSIG" in group and "VALIDSIG" in group:
        return True, fpr, ""
    return False, fpr, "signature not verified"


def _best(checks: list[SignatureCheck]) -> SignatureCheck | None:
    for wanted in (lambda c: c.valid and c.matches_from, lambda c: c.valid, lambda c: True):
        for check in checks:
            if wanted(check):
                return check
    return None


def _addr(value: str) -> str:
    return parseaddr(value or "")[1].strip().lower()


# --------------------------------------------------------------------------- gpg edge


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
        checks = [self._signature(g, from_addr) for g in _signature_groups(status)]
        return _best(checks)

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
        if _first_packet_tag(data) == 3:  # never try the queue passphrase on a symmetric message
            return Decryption(False, b"", _SYMMETRIC, None)
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
            log.exception("gpg --verify could not run")
            return SignatureCheck(False, "", (), False, f"gpg could not run: {type(exc).__name__}")
        finally:
            Path(path).unlink(missing_ok=True)
        return self._check(result.stderr or "", from_addr) or SignatureCheck(
            False, "", (), False, _NO_SIG
        )

    def verify_clearsigned(self, block: bytes, from_addr: str = "") -> SignatureCheck:
        try:
            result = self.gpg.verify(block)
        except Exception as exc:
            log.exception("gpg --verify could not run")
            return SignatureCheck(False, "", (), False, f"gpg could not run: {type(exc).__name__}")
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
        if not result.ok or not armored.startswith(_BEGIN_MSG):
            why = result.status or _gpg_complaint(result.stderr or "")
            raise CryptoError(f"encryption failed: {why}")
        return armored


# --------------------------------------------------------------------------- incoming


@dataclass
class _Opener:
    keyring: Keyring
    from_addr: str
    secrets: list[DecryptedPart] = field(default_factory=list)
    partial: list[SignatureCheck] = field(default_factory=list)
    inline_sigs: list[SignatureCheck] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    body_blocks: int = 0
    body_residue: bool = False  # non-blank text outside PGP blocks in the body
    nested_pgp_mime: bool = False
    budget: int = MAX_BLOCKS

    def _spend(self) -> bool:
        self.budget -= 1
        return self.budget >= 0

    def _over_budget(self, kind: str, ciphertext: bytes, name: str = "") -> None:
        self.secrets.append(DecryptedPart(kind, False, "", (), ciphertext, _TOO_MANY, None, name))

    def _remember(self, ciphertext: bytes) -> None:
        """Armored ciphertext already handled, so the same block in `text` is not done twice."""
        if ciphertext.lstrip().startswith(_BEGIN_MSG.encode()):
            self.seen.add(_norm_armor(ciphertext.decode("latin-1")))

    # -- MIME walk

    def walk(self, part: Message, source: bytes, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            return
        ctype = part.get_content_type()
        if ctype == "multipart/encrypted" and _is_pgp_protocol(part, "application/pgp-encrypted"):
            self.nested_pgp_mime = True
            self.secrets.append(self.pgp_mime(part))
            return
        if ctype == "multipart/signed" and _is_pgp_protocol(part, "application/pgp-signature"):
            self.partial.append(self.verify_signed(part, source))
            children = part.get_payload()
            if isinstance(children, list) and children:
                self.walk(children[0], source, depth + 1)
            return
        if part.is_multipart():
            for child in part.get_payload():
                self.walk(child, source, depth + 1)
            return
        if ctype in ("application/pgp-signature", "application/pgp-keys"):
            return
        payload = part.get_payload(decode=True) or b""
        if not isinstance(payload, bytes):
            return
        if ctype == "text/plain" and not _is_attachment(part):
            self.inline(payload.decode("latin-1"), part.get_content_charset())
        elif _looks_encrypted(part, payload):
            self.attachment(part, payload)

    def inline(self, text: str, charset: str | None, *, body: bool = True) -> None:
        """Clearsigned and encrypted blocks of one text/plain body part (latin-1 decoded)."""
        blocks = sorted(
            [("signed", s) for s in _clearsigned_spans(text)]
            + [("encrypted", s) for s in _message_spans(text)],
            key=lambda item: item[1].start,
        )
        if body:
            self.body_blocks += len(blocks)
            rest, pos = [], 0
            for _, span in blocks:
                rest.append(text[pos : span.start])
                pos = max(pos, span.end)
            rest.append(text[pos:])
            self.body_residue = self.body_residue or bool("".join(rest).strip())
        for kind, span in blocks:
            if kind == "signed" and not self._spend():
                self.inline_sigs.append(SignatureCheck(False, "", (), False, _TOO_MANY))
            elif kind == "signed":
                block = span.armored.encode("latin-1")
                self.inline_sigs.append(self.keyring.verify_clearsigned(block, self.from_addr))
            else:
                self.decrypt_inline(span.armored, charset)

    def decrypt_inline(self, armored: str, charset: str | None) -> None:
        key = _norm_armor(armored)
        if key in self.seen:
            return
        self.seen.add(key)
        ciphertext = armored.encode("latin-1", "replace")
        if not self._spend():
            self._over_budget("inline", ciphertext)
            return
        result = self.keyring.decrypt(ciphertext, self.from_addr)
        if result.signature is not None:
            self.inline_sigs.append(result.signature)
        if not result.ok:
            log.info("inline PGP block not decrypted: %s", result.reason)
            self.secrets.append(
                DecryptedPart("inline", False, "", (), ciphertext, result.reason, result.signature)
            )
            return
        text = _decode_text(result.data, charset)
        attachments: tuple[tuple[str, str, bytes], ...] = ()
        if text is None:
            name = sanitize_filename(result.literal_name, "secret.bin")
            ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            attachments, text = ((name, ctype, result.data),), ""
        self.secrets.append(
            DecryptedPart("inline", True, text, attachments, ciphertext, "", result.signature)
        )

    def attachment(self, part: Message, payload: bytes) -> None:
        name = _filename(part)
        if not self._spend():
            self._over_budget("attachment", payload, name)
            return
        ciphertext = payload
        if not payload.lstrip().startswith(b"-----BEGIN") and _BEGIN_MSG.encode() in payload:
            spans = _message_spans(payload.decode("latin-1"))  # armor inside e.g. an HTML file
            ciphertext = spans[0].armored.encode("latin-1") if spans else payload
        self._remember(ciphertext)
        result = self.keyring.decrypt(ciphertext, self.from_addr)
        if not result.ok:
            log.info("encrypted attachment %r not decrypted: %s", name, result.reason)
            self.secrets.append(
                DecryptedPart(
                    "attachment", False, "", (), payload, result.reason, result.signature, name
                )
            )
            return
        out = name
        for suffix in _ENCRYPTED_SUFFIXES:
            if out.lower().endswith(suffix):
                out = out[: -len(suffix)]
                break
        out = sanitize_filename(out or result.literal_name, "decrypted.bin")
        ctype = mimetypes.guess_type(out)[0] or "application/octet-stream"
        self.secrets.append(
            DecryptedPart(
                "attachment",
                True,
                "",
                ((out, ctype, result.data),),
                payload,
                "",
                result.signature,
                name,
            )
        )

    def pgp_mime(self, part: Message) -> DecryptedPart:
        children = part.get_payload() if part.is_multipart() else []
        candidates = [c for c in children[1:] if not c.is_multipart()]
        enc = next(
            (c for c in candidates if _looks_encrypted(c, c.get_payload(decode=True) or b"")),
            candidates[0] if candidates else None,
        )
        if enc is None:
            reason = "malformed PGP/MIME: no encrypted part"
            return DecryptedPart("pgp-mime", False, "", (), _entity_bytes(part), reason, None)
        ciphertext = enc.get_payload(decode=True) or b""
        name = _filename(enc)
        self._remember(ciphertext)
        if not self._spend():
            return DecryptedPart("pgp-mime", False, "", (), ciphertext, _TOO_MANY, None, name)
        result = self.keyring.decrypt(ciphertext, self.from_addr)
        if not result.ok:
            log.info("PGP/MIME part not decrypted: %s", result.reason)
            return DecryptedPart(
                "pgp-mime", False, "", (), ciphertext, result.reason, result.signature, name
            )
        inner = message_from_bytes(result.data, policy=compat32)
        texts: list[str] = []
        attachments: list[tuple[str, str, bytes]] = []
        inner_sigs: list[SignatureCheck] = []
        self._flatten(inner, result.data, texts, attachments, inner_sigs, 0, top=True)
        signature = result.signature or (inner_sigs[0] if inner_sigs else None)
        return DecryptedPart(
            "pgp-mime",
            True,
            "\n".join(texts),
            tuple(attachments),
            ciphertext,
            "",
            signature,
            name,
        )

    def _flatten(
        self,
        part: Message,
        source: bytes,
        texts: list[str],
        attachments: list[tuple[str, str, bytes]],
        sigs: list[SignatureCheck],
        depth: int,
        *,
        top: bool = False,
    ) -> None:
        """The decrypted MIME entity: its text parts and its attachments."""
        if depth > MAX_DEPTH:
            return
        ctype = part.get_content_type()
        if ctype == "multipart/signed" and _is_pgp_protocol(part, "application/pgp-signature"):
            check = self.verify_signed(part, source)
            (sigs if top else self.partial).append(check)
            children = part.get_payload()
            if isinstance(children, list) and children:
                self._flatten(children[0], source, texts, attachments, sigs, depth + 1)
            return
        if part.is_multipart():
            for child in part.get_payload():
                self._flatten(child, source, texts, attachments, sigs, depth + 1)
            return
        if ctype in ("application/pgp-signature", "text/rfc822-headers"):
            return
        if ctype == "text/plain" and not _is_attachment(part):
            texts.append(_part_text(part))
            return
        data = part.get_payload(decode=True) or b""
        raw_name = part.get_filename() or part.get_param("name") or ""
        ext = mimetypes.guess_extension(ctype) or ".bin"
        name = sanitize_filename(raw_name if isinstance(raw_name, str) else "", f"part{ext}")
        attachments.append((name, ctype, data if isinstance(data, bytes) else b""))

    def verify_signed(self, part: Message, source: bytes) -> SignatureCheck:
        if not self._spend():
            return SignatureCheck(False, "", (), False, _TOO_MANY)
        children = part.get_payload()
        if not isinstance(children, list) or len(children) < 2:
            return SignatureCheck(False, "", (), False, "malformed multipart/signed")
        signature = children[1].get_payload(decode=True) or b""
        boundary = part.get_boundary()
        region = signed_region(source, boundary) if boundary else None
        if region is None:
            return SignatureCheck(False, "", (), False, "signed part not found in the raw message")
        return self.keyring.verify_detached(region, signature, self.from_addr)


def _entity_bytes(part: Message) -> bytes:
    try:
        return part.as_bytes()
    except Exception:  # a broken entity that cannot be serialized: nothing to keep
        return b""


def _is_pgp_protocol(part: Message, protocol: str) -> bool:
    value = part.get_param("protocol")
    return isinstance(value, str) and value.strip().lower() == protocol


def open_message(raw: bytes, text: str, keyring: Keyring, from_addr: str) -> CryptoResult:
    """Decrypt and verify whatever PGP the message holds. Never raises.

    `raw` is the whole message, `text` the body another stage extracted from it.
    """
    try:
        return _open(raw, text, keyring, from_addr)
    except Exception as exc:  # a bug must not cost the message: keep it, hide ciphertext
        log.exception("crypto stage failed; message kept with a failure entry")
        try:
            visible = SECURED if b"multipart/encrypted" in raw.lower() else redact(text)
        except Exception:
            visible = SECURED
        reason = f"internal error in the crypto stage: {type(exc).__name__}"
        failure = DecryptedPart("message", False, "", (), raw, reason, None)
        return CryptoResult(visible, (failure,), None)


def _open(raw: bytes, text: str, keyring: Keyring, from_addr: str) -> CryptoResult:
    opener = _Opener(keyring, from_addr)
    msg = message_from_bytes(raw, policy=compat32)
    whole: SignatureCheck | None = None
    body = msg
    if body.get_content_type() == "multipart/signed" and _is_pgp_protocol(
        body, "application/pgp-signature"
    ):
        whole = opener.verify_signed(body, raw)
        children = body.get_payload()
        body = children[0] if isinstance(children, list) and children else body
    pgp_mime_root = body.get_content_type() == "multipart/encrypted" and _is_pgp_protocol(
        body, "application/pgp-encrypted"
    )
    if pgp_mime_root:
        part = opener.pgp_mime(body)
        opener.secrets.append(part)
        whole = whole or part.signature
    elif body is not msg:
        opener.walk(body, raw, 1)
    else:
        opener.walk(msg, raw, 0)

    # blocks the text stage produced that were not in a raw text/plain part (e.g. from HTML)
    for span in _message_spans(text):
        opener.decrypt_inline(span.armored, "utf-8")

    if pgp_mime_root:
        customer_text = SECURED
    else:
        customer_text = redact(text)
        if opener.nested_pgp_mime and SECURED not in customer_text:
            body_text = customer_text.rstrip()
            customer_text = f"{body_text}\n\n{SECURED}" if body_text else SECURED

    partial = list(opener.partial)
    sigs = opener.inline_sigs
    if (
        whole is None
        and not pgp_mime_root
        and len(sigs) == 1
        and opener.body_blocks == 1
        and not opener.body_residue
    ):
        whole = sigs[0]
    else:
        partial += sigs
    return CryptoResult(customer_text, tuple(opener.secrets), whole, tuple(partial))


# --------------------------------------------------------------------------- outgoing


def _is_content_header(name: str) -> bool:
    lower = name.lower()
    return lower.startswith("content-") or lower == "mime-version"


def encrypt_mime(
    msg: EmailMessage,
    recipients: list[str],
    sign_with: str | None = None,
    *,
    keyring: Keyring,
) -> EmailMessage:
    """RFC 3156 PGP/MIME: the body becomes the encrypted entity, routing headers stay outside.

    Raises CryptoError; the caller must then not send the message in clear.
    """
    inner = copy.deepcopy(msg)
    for name in {k.lower() for k in inner}:
        if not _is_content_header(name) or name == "mime-version":
            del inner[name]
    if inner.get("Content-Type") is None:
        inner["Content-Type"] = "text/plain; charset=us-ascii"
    policy = msg.policy if isinstance(msg.policy, EmailPolicy) else default_policy
    inner_bytes = inner.as_bytes(policy=policy.clone(linesep="\r\n"))
    armored = keyring.encrypt(inner_bytes, recipients, sign_with=sign_with)

    outer = EmailMessage(policy=policy)
    for name, value in msg.items():
        if not _is_content_header(name):
            outer[name] = value
    boundary = f"mailgate-pgp-{_random.token_hex(12)}"
    outer["MIME-Version"] = "1.0"
    outer["Content-Type"] = (
        f'multipart/encrypted; protocol="application/pgp-encrypted"; boundary="{boundary}"'
    )
    outer.preamble = "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)"
    control = EmailMessage(policy=policy)
    control["Content-Type"] = "application/pgp-encrypted"
    control["Content-Description"] = "PGP/MIME version identification"
    control.set_payload("Version: 1\n")
    data = EmailMessage(policy=policy)
    data["Content-Type"] = 'application/octet-stream; name="encrypted.asc"'
    data["Content-Description"] = "OpenPGP encrypted message"
    data["Content-Disposition"] = 'inline; filename="encrypted.asc"'
    data.set_payload(armored)
    outer.set_payload([control, data])
    return outer


def encrypt_text(text: str, recipients: list[str], *, keyring: Keyring) -> str:
    """Armored message, e.g. to send a decrypted secret on to an agent; raises CryptoError."""
    return keyring.encrypt(text.encode("utf-8"), recipients)
