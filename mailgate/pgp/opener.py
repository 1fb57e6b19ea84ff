"""Open one inbound message: decrypt and verify whatever PGP it holds (docs/pgp.md).

Inline blocks, clearsigned text, PGP/MIME (RFC 3156) and encrypted attachments, at most
MAX_BLOCKS gpg operations per message. The decrypted content travels apart in
`CryptoResult.secrets`; the customer-visible text carries `SECURED` in its place.
"""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.policy import compat32

from mailgate.parse.filenames import safe_filename
from mailgate.pgp.armor import (
    BEGIN_MESSAGE,
    SECURED,
    clearsigned_spans,
    message_spans,
    norm_armor,
    redact,
)
from mailgate.pgp.keyring import Keyring
from mailgate.pgp.mime import (
    ENCRYPTED_SUFFIXES,
    decode_text,
    entity_bytes,
    filename,
    is_attachment,
    is_pgp_protocol,
    looks_encrypted,
    part_text,
    signed_region,
)
from mailgate.pgp.results import CryptoResult, DecryptedPart, unopened
from mailgate.pgp.verdicts import SignatureCheck

log = logging.getLogger(__name__)

MAX_BLOCKS = 32  # encrypted blocks/parts decrypted per message; the rest fail with a reason
MAX_DEPTH = 20  # MIME nesting we descend into
_TOO_MANY = f"not processed: more than {MAX_BLOCKS} PGP parts in one message"


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
        if ciphertext.lstrip().startswith(BEGIN_MESSAGE.encode()):
            self.seen.add(norm_armor(ciphertext.decode("latin-1")))

    # -- MIME walk

    def walk(self, part: Message, source: bytes, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            return
        ctype = part.get_content_type()
        if ctype == "multipart/encrypted" and is_pgp_protocol(part, "application/pgp-encrypted"):
            self.nested_pgp_mime = True
            self.secrets.append(self.pgp_mime(part))
            return
        if ctype == "multipart/signed" and is_pgp_protocol(part, "application/pgp-signature"):
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
        if ctype == "text/plain" and not is_attachment(part):
            self.inline(payload.decode("latin-1"), part.get_content_charset())
        elif looks_encrypted(part, payload):
            self.attachment(part, payload)

    def inline(self, text: str, charset: str | None, *, body: bool = True) -> None:
        """Clearsigned and encrypted blocks of one text/plain body part (latin-1 decoded)."""
        blocks = sorted(
            [("signed", s) for s in clearsigned_spans(text)]
            + [("encrypted", s) for s in message_spans(text)],
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
        key = norm_armor(armored)
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
        text = decode_text(result.data, charset)
        attachments: tuple[tuple[str, str, bytes], ...] = ()
        if text is None:
            name = safe_filename(result.literal_name, "secret.bin")
            ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            attachments, text = ((name, ctype, result.data),), ""
        self.secrets.append(
            DecryptedPart("inline", True, text, attachments, ciphertext, "", result.signature)
        )

    def attachment(self, part: Message, payload: bytes) -> None:
        name = filename(part)
        if not self._spend():
            self._over_budget("attachment", payload, name)
            return
        ciphertext = payload
        if not payload.lstrip().startswith(b"-----BEGIN") and BEGIN_MESSAGE.encode() in payload:
            spans = message_spans(payload.decode("latin-1"))  # armor inside e.g. an HTML file
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
        for suffix in ENCRYPTED_SUFFIXES:
            if out.lower().endswith(suffix):
                out = out[: -len(suffix)]
                break
        out = safe_filename(out or result.literal_name, "decrypted.bin")
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
            (c for c in candidates if looks_encrypted(c, c.get_payload(decode=True) or b"")),
            candidates[0] if candidates else None,
        )
        if enc is None:
            reason = "malformed PGP/MIME: no encrypted part"
            return DecryptedPart("pgp-mime", False, "", (), entity_bytes(part), reason, None)
        ciphertext = enc.get_payload(decode=True) or b""
        name = filename(enc)
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
        if ctype == "multipart/signed" and is_pgp_protocol(part, "application/pgp-signature"):
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
        if ctype == "text/plain" and not is_attachment(part):
            texts.append(part_text(part))
            return
        data = part.get_payload(decode=True) or b""
        raw_name = part.get_filename() or part.get_param("name") or ""
        ext = mimetypes.guess_extension(ctype) or ".bin"
        name = safe_filename(raw_name if isinstance(raw_name, str) else "", f"part{ext}")
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


def open_message(raw: bytes, text: str, keyring: Keyring, from_addr: str) -> CryptoResult:
    """Decrypt and verify whatever PGP the message holds. Never raises.

    `raw` is the whole message, `text` the body another stage extracted from it.
    """
    try:
        return _open(raw, text, keyring, from_addr)
    except Exception as exc:  # a bug must not cost the message: keep it, hide ciphertext
        log.exception("crypto stage failed; message kept with a failure entry")
        return unopened(raw, text, f"internal error in the crypto stage: {type(exc).__name__}")


def _open(raw: bytes, text: str, keyring: Keyring, from_addr: str) -> CryptoResult:
    opener = _Opener(keyring, from_addr)
    msg = message_from_bytes(raw, policy=compat32)
    whole: SignatureCheck | None = None
    body = msg
    if body.get_content_type() == "multipart/signed" and is_pgp_protocol(
        body, "application/pgp-signature"
    ):
        whole = opener.verify_signed(body, raw)
        children = body.get_payload()
        body = children[0] if isinstance(children, list) and children else body
    pgp_mime_root = body.get_content_type() == "multipart/encrypted" and is_pgp_protocol(
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
    for span in message_spans(text):
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
