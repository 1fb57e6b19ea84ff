"""What gpg's status lines mean: decryption and signature verdicts, and their texts. Pure.

The gpg edge (`keyring.Keyring`) turns `--status-fd` output into these verdicts; the
stored form of a signature (`signature_dict`) and the lines people read are made here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SIG_STATUS = frozenset(
    {"GOODSIG", "BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "VALIDSIG", "NO_PUBKEY"}
)
SYMMETRIC = "symmetrically encrypted (passphrase-only) message: not supported"
_BAD_PASSPHRASE = 11  # GPG_ERR_BAD_PASSPHRASE
_NO_PUBKEY = "9"  # ERRSIG rc for a missing public key
_UNSUPPORTED_ALGO = "4"


@dataclass(frozen=True)
class SignatureCheck:
    valid: bool
    fingerprint: str  # primary key fingerprint if known, else the key id gpg reported
    signer_emails: tuple[str, ...]
    matches_from: bool
    reason: str  # "" if valid


def status_lines(stderr: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for line in stderr.splitlines():
        if line.startswith("[GNUPG:] "):
            key, _, value = line[9:].partition(" ")
            out.append((key, value.strip()))
    return out


def gpg_complaint(stderr: str) -> str:
    """gpg's last `gpg: ...` line, the reason it gives a person."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.startswith("gpg: ")]
    return lines[-1][5:] if lines else "gpg gave no reason"


def decryption_verdict(status: list[tuple[str, str]], stderr: str, returncode: int | None) -> str:
    """Why not, or "" if gpg decrypted with integrity protection (or nothing was encrypted)."""
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
        return SYMMETRIC
    if failed:
        return "decryption failed: " + gpg_complaint(stderr)
    if "CRC error" in stderr or "invalid armor" in stderr or "NODATA" in keys:
        return "no valid OpenPGP data (corrupted or truncated armor)"
    if "PLAINTEXT" in keys and (returncode == 0 or keys & SIG_STATUS):
        return ""  # signed-only or literal data: nothing was encrypted
    return "not decryptable: " + gpg_complaint(stderr)


def signature_groups(status: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The status lines of each signature, first value per keyword."""
    groups: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for key, value in status:
        if key == "NEWSIG":
            current = {}
            groups.append(current)
        elif key in SIG_STATUS:
            if current is None:
                current = {}
                groups.append(current)
            current.setdefault(key, value)
    return [g for g in groups if g]


def signature_verdict(group: dict[str, str]) -> tuple[bool, str, str]:
    """(valid, fingerprint or key id, reason) for one signature's gpg status lines."""
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


def best_signature(checks: list[SignatureCheck]) -> SignatureCheck | None:
    """Valid and by From, else valid, else the first one."""
    for wanted in (lambda c: c.valid and c.matches_from, lambda c: c.valid, lambda c: True):
        for check in checks:
            if wanted(check):
                return check
    return None


# --------------------------------------------------------------------------- stored form


def signature_dict(sig: SignatureCheck | None) -> dict[str, Any] | None:
    if sig is None:
        return None
    return {
        "valid": sig.valid,
        "fingerprint": sig.fingerprint,
        "signer_emails": list(sig.signer_emails),
        "matches_from": sig.matches_from,
        "reason": sig.reason,
    }


def signature_text(sig: dict[str, Any] | None) -> str:
    """One line for people: `valid, key F00..., signer a@b, matches From`."""
    if not sig:
        return "none"
    who = ", ".join(sig.get("signer_emails") or []) or "unknown signer"
    key = sig.get("fingerprint") or "?"
    if not sig.get("valid"):
        return f"NOT VALID ({sig.get('reason') or 'unknown reason'}), key {key}"
    match = "matches From" if sig.get("matches_from") else "DOES NOT match From"
    return f"valid, key {key} ({who}), {match}"


def short_verdict(sig: dict[str, Any] | None) -> str:
    """For agent notifications (sent in clear): validity only, no identity from inside."""
    if not sig:
        return "not signed"
    if not sig.get("valid"):
        return "signature NOT valid"
    return "validly signed, " + ("matches From" if sig.get("matches_from") else "NOT by From")


def overall_signature(whole: dict[str, Any] | None, partial: list[Any]) -> str:
    """The system note's line on the message's signatures."""
    if whole is not None:
        return f"Signature over the whole message: {short_verdict(whole)}."
    if partial:
        valid = sum(1 for p in partial if p and p.get("valid"))
        return (
            f"No signature over the whole message; {len(partial)} over a part of it "
            f"({valid} valid)."
        )
    return "Not signed."


def verdict_signature_lines(verdict: dict[str, Any]) -> list[str]:
    """`tickets show`: the signature results stored on an article (none if not checked)."""
    if "signature" not in verdict:
        return []
    out = ["PGP signature (whole message): " + signature_text(verdict.get("signature"))]
    for sig in verdict.get("partial_signatures") or []:
        out.append("PGP signature (part of it): " + signature_text(sig))
    return out
