"""Find a canary string in mail bytes however it was encoded (no pytest, no fixtures).

Reusable by any test that must prove a secret never left: `find_canary(data, canary)`
returns where it was seen (empty: not there). It looks at

- the raw bytes as they are (8bit, 7bit, and quoted-printable without soft breaks),
- the bytes with quoted-printable soft line breaks removed and decoded,
- the bytes with all whitespace removed, for every base64 alignment of the canary (so a
  base64 body wrapped at any width is caught),
- every MIME part decoded by the stdlib parser (base64, QP, charsets; RFC 2047 headers).

Use a canary of ASCII letters, digits and '-', 24+ characters long: every form then has a
long enough stable middle part.
"""

from __future__ import annotations

import base64
import email
import quopri
import re
from email.policy import default

_WS = re.compile(rb"\s+")
_SOFT_BREAK = re.compile(rb"=\r?\n")


def base64_forms(canary: bytes) -> list[bytes]:
    """The stable middle of base64(canary) at each of the 3 byte alignments."""
    forms = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + canary)
        head = (0, 2, 3)[shift]  # leading characters that also carry the filler bytes
        tail = 4  # trailing characters that depend on what follows the canary
        middle = encoded[head : len(encoded) - tail]
        if len(middle) >= 8:
            forms.append(middle)
    return forms


def canary_forms(canary: str) -> dict[str, bytes]:
    """Every form searched for, by name (for messages and for a self-test)."""
    plain = canary.encode("utf-8")
    forms = {"plain": plain, "quoted-printable": quopri.encodestring(plain).rstrip(b"\n")}
    for i, form in enumerate(base64_forms(plain)):
        forms[f"base64/{i}"] = form
    return forms


def _decoded_parts(data: bytes) -> list[str]:
    try:
        msg = email.message_from_bytes(data, policy=default)
    except Exception:  # noqa: BLE001 - not parseable as mail: the byte searches still ran
        return []
    out = [str(v) for _, v in msg.items()]
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            out.append(payload.decode("utf-8", "replace"))
    return out


def find_canary(data: bytes, canary: str) -> list[str]:
    """Where the canary shows up in `data` ([] when it does not)."""
    found: list[str] = []
    forms = canary_forms(canary)
    if forms["plain"] in data:
        found.append("plain bytes")
    unbroken = _SOFT_BREAK.sub(b"", data)
    if forms["quoted-printable"] in unbroken or forms["plain"] in quopri.decodestring(unbroken):
        found.append("quoted-printable")
    squeezed = _WS.sub(b"", data)
    for name, form in forms.items():
        if name.startswith("base64") and form in squeezed:
            found.append(name)
    if any(canary in text for text in _decoded_parts(data)):
        found.append("decoded MIME part")
    return found


def assert_no_canary(items: list[tuple[str, bytes]], canary: str) -> None:
    """Fail with every place the canary was seen among (label, bytes) items."""
    leaks = [(label, where) for label, data in items if (where := find_canary(data, canary))]
    assert not leaks, f"canary leaked: {leaks}"
