"""mailgate.pgp (armor, verdicts, keyring, opener, outgoing, keys) against the real gpg: no mocks.

Each test gets fresh, short GnuPG homes under /tmp filled from the armored fixture keys in
tests/data/keys/; their gpg-agents are killed and the homes removed afterwards.
"""

from __future__ import annotations

import email
import re
import stat
import subprocess
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import SMTP, default
from pathlib import Path

import gnupg
import pytest

from mailgate.pgp import keys
from mailgate.pgp.armor import SECURED, redact, scan
from mailgate.pgp.keyring import CryptoError, Keyring
from mailgate.pgp.mime import signed_region
from mailgate.pgp.opener import MAX_BLOCKS, open_message
from mailgate.pgp.outgoing import encrypt_mime
from mailgate.pgp.results import CryptoResult
from mailgate.pgp.verdicts import decryption_verdict, status_lines
from tests.pgp_keys import FPR, KEYS, drop_home, fresh_home

DATA = Path(__file__).resolve().parents[1] / "data"
CORPUS = DATA / "pgp_corpus"
CUSTOMER = "Carla Customer <customer@example.com>"
SUPPORT = "support@example.test"
SIGNED_CTYPE = (
    "multipart/signed; micalg=pgp-sha512;\r\n"
    ' protocol="application/pgp-signature"; boundary="SIG-b"'
)
SECRET = "My root password is hunter2-Zebra-42, please fix the DNS. Ümlaut."


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def homes() -> Iterator[Callable[..., Path]]:
    made: list[Path] = []

    def make(*key_files: str) -> Path:
        home = fresh_home()
        made.append(home)
        for name in key_files:
            keys.import_key(home, KEYS / name)
        return home

    yield make
    for home in made:
        drop_home(home)


QUEUE_RING = (
    "queue.sec.asc",
    "customer.pub.asc",
    "agent.pub.asc",
    "stranger.pub.asc",
    "customer-rsa.pub.asc",
    "expired.pub.asc",
    "revoked.pub.asc",
)


@pytest.fixture
def queue(homes: Callable[..., Path]) -> Keyring:
    """The helpdesk side: the queue's secret key and the public keys it knows."""
    return Keyring(homes(*QUEUE_RING))


def _gpg(home: Path) -> gnupg.GPG:
    return gnupg.GPG(gnupghome=str(home))


@pytest.fixture
def customer(homes: Callable[..., Path]) -> gnupg.GPG:
    """The customer's own gpg, the other end of the wire."""
    return _gpg(homes("customer.sec.asc", "queue.pub.asc", "stranger.pub.asc", "agent.pub.asc"))


@pytest.fixture
def stranger(homes: Callable[..., Path]) -> gnupg.GPG:
    return _gpg(homes("stranger.sec.asc", "queue.pub.asc"))


def _encrypt(gpg: gnupg.GPG, data: str | bytes, to: str, sign: str | None = None, **kw) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")  # what mail clients do; python-gnupg would use latin-1
    result = gpg.encrypt(data, to, armor=True, always_trust=True, sign=sign, **kw)
    assert result.ok, result.stderr
    return str(result).strip()


def _mail(body: str, sender: str = CUSTOMER, subject: str = "help") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = "<m1@example.com>"
    msg.set_content(body)
    return msg


def _text_of(raw: bytes) -> str:
    """What the parse stage would hand over: the plain text body."""
    msg = email.message_from_bytes(raw, policy=default)
    body = msg.get_body(("plain",))
    return body.get_content() if body is not None else ""


def _open(raw: bytes, queue: Keyring, sender: str = CUSTOMER) -> CryptoResult:
    result = open_message(raw, _text_of(raw), queue, sender)
    assert isinstance(result, CryptoResult)
    return result


def _assert_no_leak(result: CryptoResult, plaintext: str = SECRET) -> None:
    for piece in (plaintext, plaintext[:20], "hunter2"):
        assert piece not in result.customer_text


def _pgp_mime(armored: str, sender: str = CUSTOMER) -> bytes:
    """RFC 3156 multipart/encrypted, as Thunderbird sends it."""
    return (
        f"From: {sender}\r\nTo: {SUPPORT}\r\nSubject: ...\r\nMessage-ID: <pm@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";\r\n'
        ' boundary="------------ENC"\r\n\r\n'
        "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n"
        "--------------ENC\r\nContent-Type: application/pgp-encrypted\r\n"
        "Content-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n"
        '--------------ENC\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n'
        'Content-Disposition: inline; filename="encrypted.asc"\r\n\r\n'
        f"{armored}\r\n--------------ENC--\r\n"
    ).encode()


def _inner_entity() -> bytes:
    inner = EmailMessage()
    inner.set_content(SECRET + "\n")
    inner.add_attachment(
        b"\x00\x01binary\xff", maintype="application", subtype="octet-stream", filename="key.bin"
    )
    return inner.as_bytes(policy=SMTP)


def _multipart_signed(gpg: gnupg.GPG, signer: str, body: str, sender: str = CUSTOMER) -> bytes:
    """multipart/signed built byte by byte, so the signed part is exactly what is on the wire."""
    part = (
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + body.replace("\n", "\r\n")
    ).encode()
    sig = gpg.sign(part, keyid=signer, detach=True, clearsign=False)
    assert sig.data.startswith(b"-----BEGIN PGP SIGNATURE-----"), sig.stderr
    return (
        (
            f"From: {sender}\r\nTo: {SUPPORT}\r\nSubject: signed\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: {SIGNED_CTYPE}\r\n\r\n"
            "This is an OpenPGP/MIME signed message\r\n--SIG-b\r\n"
        ).encode()
        + part
        + (
            b"\r\n--SIG-b\r\nContent-Type: application/pgp-signature; name=signature.asc\r\n\r\n"
            + sig.data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            + b"\r\n--SIG-b--\r\n"
        )
    )


# --------------------------------------------------------------------------- pure helpers


def test_redact_replaces_every_block_and_keeps_the_rest() -> None:
    block = "-----BEGIN PGP MESSAGE-----\n\nhQEMA1234\n=abcd\n-----END PGP MESSAGE-----"
    quoted = "\n".join("> " + line for line in block.splitlines())
    text = f"Hi,\n{block}\nmiddle\n{quoted}\nbye\n"
    assert redact(text) == f"Hi,\n{SECURED}\nmiddle\n> {SECURED}\nbye\n"
    assert redact("no pgp here") == "no pgp here"
    # unterminated: hide to the end; marker mid-line: keep what precedes it
    assert redact("a\n-----BEGIN PGP MESSAGE-----\nhQEM\n") == f"a\n{SECURED}"
    assert redact("see: -----BEGIN PGP MESSAGE-----\nx\n-----END PGP MESSAGE----- ok") == (
        f"see: {SECURED} ok"
    )


def test_scan_finds_pgp_markers_only() -> None:
    assert not scan(b"From: a@b\r\n\r\nhello\r\n")
    assert scan(b"x\r\n-----BEGIN PGP MESSAGE-----\r\n")
    assert scan(b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"')
    assert scan(b'Content-Disposition: attachment; filename="contract.pdf.gpg"')
    assert scan(b"base64 body", text="-----BEGIN PGP SIGNED MESSAGE-----")


def test_signed_region_takes_bytes_between_delimiters_crlf_canonical() -> None:
    raw = b"H: v\n\n--b\nContent-Type: text/plain\n\nline 1\nline 2\n--b\nsig\n--b--\n"
    assert signed_region(raw, "b") == b"Content-Type: text/plain\r\n\r\nline 1\r\nline 2"
    assert signed_region(raw.replace(b"\n", b"\r\n"), "b") == signed_region(raw, "b")
    assert signed_region(raw, "other") is None


@pytest.mark.parametrize(
    ("status", "stderr", "rc", "expect"),
    [
        ("BEGIN_DECRYPTION\nDECRYPTION_INFO 2 9 0\nDECRYPTION_OKAY\nGOODMDC", "", 0, ""),
        ("BEGIN_DECRYPTION\nDECRYPTION_INFO 0 9 0\nDECRYPTION_FAILED", "", 2, "no MDC"),
        ("BEGIN_DECRYPTION\nDECRYPTION_INFO 0 9 0\nDECRYPTION_OKAY", "", 0, "no MDC"),
        ("BEGIN_DECRYPTION\nBADMDC\nDECRYPTION_FAILED", "", 2, "BADMDC"),
        ("BEGIN_DECRYPTION\nDECRYPTION_OKAY", "", 0, "no integrity check"),
        ("NO_SECKEY ABCD\nBEGIN_DECRYPTION\nDECRYPTION_FAILED", "", 2, "no secret key"),
        ("ERROR pkdecrypt_failed 67108875\nDECRYPTION_FAILED", "", 2, "passphrase"),
        ("NODATA 1", "", 2, "no valid OpenPGP data"),
        ("PLAINTEXT 62 0 x\nNEWSIG\nGOODSIG K n\nVALIDSIG F", "", 0, ""),
    ],
)
def test_decryption_verdict(status: str, stderr: str, rc: int, expect: str) -> None:
    lines = "\n".join("[GNUPG:] " + s for s in status.splitlines())
    verdict = decryption_verdict(status_lines(lines), stderr, rc)
    assert (verdict == "") if not expect else (expect in verdict)


# --------------------------------------------------------------------------- incoming: inline


def test_inline_single_block(queue: Keyring, customer: gnupg.GPG) -> None:
    armored = _encrypt(customer, SECRET, FPR["queue"])
    raw = _mail(f"Hello support,\n\n{armored}\nThanks, Carla\n").as_bytes()
    assert scan(raw)
    result = _open(raw, queue)
    assert result.has_pgp and not result.failures
    assert result.customer_text == f"Hello support,\n\n{SECURED}\nThanks, Carla\n"
    (part,) = result.secrets
    assert part.kind == "inline" and part.ok and part.text == SECRET
    assert part.ciphertext.startswith(b"-----BEGIN PGP MESSAGE-----")
    assert part.signature is None and result.signature is None
    _assert_no_leak(result)


def test_two_inline_blocks_and_a_quoted_copy(queue: Keyring, customer: gnupg.GPG) -> None:
    first = _encrypt(customer, SECRET, FPR["queue"])
    second = _encrypt(customer, "second secret: card 4111", FPR["queue"])
    quoted = "\n".join("> " + line for line in first.splitlines())
    body = f"one:\n{first}\ntwo:\n{second}\nearlier you wrote:\n{quoted}\n"
    result = _open(_mail(body).as_bytes(), queue)
    assert [p.text for p in result.secrets] == [SECRET, "second secret: card 4111"]
    assert result.customer_text.count(SECURED) == 3
    assert f"> {SECURED}" in result.customer_text
    assert "card 4111" not in result.customer_text
    _assert_no_leak(result)


def test_inline_encrypted_and_signed_is_a_whole_body_signature(
    queue: Keyring, customer: gnupg.GPG
) -> None:
    armored = _encrypt(customer, SECRET, FPR["queue"], sign=FPR["customer"])
    result = _open(_mail(armored + "\n").as_bytes(), queue)
    (part,) = result.secrets
    assert part.ok and part.signature and part.signature.valid and part.signature.matches_from
    assert result.signature == part.signature
    assert result.signature.fingerprint == FPR["customer"]
    assert result.signature.signer_emails == ("customer@example.com",)


def test_inline_binary_payload_becomes_an_attachment(queue: Keyring, customer: gnupg.GPG) -> None:
    blob = bytes(range(256)) * 4
    result_enc = customer.encrypt(
        blob, FPR["queue"], armor=True, always_trust=True, extra_args=["--set-filename", "k.bin"]
    )
    assert result_enc.ok
    result = _open(_mail(f"file:\n{result_enc}\n").as_bytes(), queue)
    (part,) = result.secrets
    assert part.ok and part.text == ""
    assert part.attachments == (("k.bin", "application/octet-stream", blob),)


def test_latin1_plaintext_and_output_limit(homes: Callable[..., Path], customer: gnupg.GPG) -> None:
    home = homes(*QUEUE_RING)
    armored = _encrypt(customer, SECRET.encode("latin-1"), FPR["queue"])
    (part,) = _open(_mail(f"x\n{armored}\n").as_bytes(), Keyring(home)).secrets
    assert part.ok and part.text == SECRET
    small = Keyring(home, max_output=20)  # a compression bomb stops at the limit, as a failure
    (part,) = _open(_mail(f"x\n{armored}\n").as_bytes(), small).secrets
    assert not part.ok and "size limit" in part.reason and part.text == ""


# --------------------------------------------------------------------------- incoming: PGP/MIME


def test_pgp_mime_encrypted(queue: Keyring, customer: gnupg.GPG) -> None:
    raw = _pgp_mime(_encrypt(customer, _inner_entity(), FPR["queue"]))
    assert scan(raw)
    result = _open(raw, queue)
    assert result.customer_text == SECURED
    (part,) = result.secrets
    assert part.kind == "pgp-mime" and part.ok and part.text.strip() == SECRET
    assert part.attachments == (("key.bin", "application/octet-stream", b"\x00\x01binary\xff"),)
    assert part.source_name == "encrypted.asc"
    assert result.signature is None
    _assert_no_leak(result)


def test_pgp_mime_encrypted_and_signed(queue: Keyring, customer: gnupg.GPG) -> None:
    raw = _pgp_mime(_encrypt(customer, _inner_entity(), FPR["queue"], sign=FPR["customer"]))
    result = _open(raw, queue)
    (part,) = result.secrets
    assert part.ok
    sig = result.signature
    assert sig is not None and sig.valid and sig.matches_from and sig.reason == ""
    assert sig.fingerprint == FPR["customer"] and sig.signer_emails == ("customer@example.com",)
    assert part.signature == sig
    _assert_no_leak(result)


def test_pgp_mime_signed_then_encrypted_enigmail_style(queue: Keyring, customer: gnupg.GPG) -> None:
    """encrypted(multipart/signed(...)): the signature is checked inside the decrypted entity."""
    signed = _multipart_signed(customer, FPR["customer"], SECRET + "\n")
    inner = signed.split(b"\r\n\r\n", 1)[1]  # drop the routing headers, keep the MIME entity
    ctype = f"Content-Type: {SIGNED_CTYPE}\r\n\r\n".encode()
    raw = _pgp_mime(_encrypt(customer, ctype + inner, FPR["queue"]))
    result = _open(raw, queue)
    (part,) = result.secrets
    assert part.ok and SECRET in part.text
    assert result.signature is not None and result.signature.valid
    assert result.signature.matches_from


def test_encrypted_attachment(queue: Keyring, customer: gnupg.GPG) -> None:
    pdf = b"%PDF-1.4 secret contract \x00\xff"
    enc = customer.encrypt(pdf, FPR["queue"], armor=False, always_trust=True)
    assert enc.ok
    msg = _mail("Contract attached, encrypted.\n")
    msg.add_attachment(
        enc.data, maintype="application", subtype="octet-stream", filename="contract.pdf.gpg"
    )
    msg.add_attachment(b"just a picture", maintype="image", subtype="png", filename="x.png")
    raw = msg.as_bytes()
    assert scan(raw)
    result = _open(raw, queue)
    assert result.customer_text == "Contract attached, encrypted.\n"
    (part,) = result.secrets
    assert part.kind == "attachment" and part.ok and part.source_name == "contract.pdf.gpg"
    assert part.attachments == (("contract.pdf", "application/pdf", pdf),)
    assert part.ciphertext == enc.data


def test_armored_asc_attachment(queue: Keyring, customer: gnupg.GPG) -> None:
    armored = _encrypt(customer, "notes", FPR["queue"])
    msg = _mail("see attachment\n")
    msg.add_attachment(armored, subtype="plain", filename="notes.txt.asc")
    result = _open(msg.as_bytes(), queue)
    (part,) = result.secrets
    assert part.ok and part.attachments == (("notes.txt", "text/plain", b"notes"),)


# --------------------------------------------------------------------------- incoming: signatures


def test_clearsigned_valid(queue: Keyring, customer: gnupg.GPG) -> None:
    signed = str(customer.sign("Please close ticket 42.\n", keyid=FPR["customer"], clearsign=True))
    result = _open(_mail(signed).as_bytes(), queue)
    assert not result.secrets
    sig = result.signature
    assert sig is not None and sig.valid and sig.matches_from, sig
    assert sig.fingerprint == FPR["customer"]
    assert result.customer_text == _text_of(_mail(signed).as_bytes())  # left as the customer wrote


def test_clearsigned_with_text_around_it_is_only_partial(
    queue: Keyring, customer: gnupg.GPG
) -> None:
    signed = str(customer.sign("#status closed\n", keyid=FPR["customer"], clearsign=True))
    result = _open(_mail(f"#assign mallory\n{signed}").as_bytes(), queue)
    assert result.signature is None  # a signature over part of the body authorizes nothing
    (partial,) = result.partial_signatures
    assert partial.valid


def test_clearsigned_by_old_rsa_client(queue: Keyring, homes: Callable[..., Path]) -> None:
    old = _gpg(homes("customer-rsa.sec.asc"))
    signed = str(old.sign("Hello from 2009.\n", keyid=FPR["customer-rsa"], clearsign=True))
    sender = "Oscar <customer-rsa@example.com>"
    result = _open(_mail(signed, sender=sender).as_bytes(), queue, sender)
    assert result.signature and result.signature.valid and result.signature.matches_from


@pytest.mark.parametrize("line_end", [b"\r\n", b"\n"])
def test_multipart_signed_valid(queue: Keyring, customer: gnupg.GPG, line_end: bytes) -> None:
    raw = _multipart_signed(customer, FPR["customer"], "Signed text.\nÜmlaut line.\n")
    raw = raw.replace(b"\r\n", line_end)  # stored with LF by an MTA: still CRLF-canonical
    assert scan(raw)
    result = _open(raw, queue)
    sig = result.signature
    assert sig is not None and sig.valid and sig.matches_from and not result.secrets


def test_signed_by_a_wrong_signer(queue: Keyring, stranger: gnupg.GPG) -> None:
    raw = _multipart_signed(stranger, FPR["stranger"], "I am the customer, honest.\n")
    result = _open(raw, queue)
    sig = result.signature
    assert sig is not None and sig.valid and not sig.matches_from
    assert sig.signer_emails == ("stranger@example.org",)


def test_tampered_signed_text(queue: Keyring, customer: gnupg.GPG) -> None:
    signed = str(customer.sign("Refund 10 EUR.\n", keyid=FPR["customer"], clearsign=True))
    result = _open(_mail(signed.replace("10 EUR", "999 EUR")).as_bytes(), queue)
    assert result.signature is not None and not result.signature.valid
    assert "bad signature" in result.signature.reason
    raw = _multipart_signed(customer, FPR["customer"], "Refund 10 EUR.\n")
    result = _open(raw.replace(b"10 EUR", b"999 EUR"), queue)
    assert result.signature is not None and not result.signature.valid
    assert "bad signature" in result.signature.reason


def test_signature_without_public_key(homes: Callable[..., Path], customer: gnupg.GPG) -> None:
    bare = Keyring(homes("queue.sec.asc"))
    raw = _multipart_signed(customer, FPR["customer"], "hi\n")
    sig = _open(raw, bare).signature
    assert sig is not None and not sig.valid and "no public key" in sig.reason
    assert sig.fingerprint == FPR["customer"] and sig.signer_emails == ()


def test_signature_by_expired_key(queue: Keyring, homes: Callable[..., Path]) -> None:
    old = _gpg(homes("expired.sec.asc"))
    signed = old.sign(
        "Signed in 2020.\n",
        keyid=FPR["expired"],
        clearsign=True,
        extra_args=["--faked-system-time", "20200101T120000!"],
    )
    assert signed.data, signed.stderr
    sender = "expired@example.com"
    result = _open(_mail(str(signed), sender=sender).as_bytes(), queue, sender)
    assert result.signature is not None and not result.signature.valid
    assert result.signature.reason == "signing key has expired"


# --------------------------------------------------------------------------- incoming: failures


def test_encrypted_to_a_key_we_do_not_have(queue: Keyring, customer: gnupg.GPG) -> None:
    armored = _encrypt(customer, SECRET, FPR["stranger"])
    for raw in (_mail(f"x\n{armored}\n").as_bytes(), _pgp_mime(armored)):
        result = _open(raw, queue)
        (part,) = result.secrets
        assert not part.ok and "no secret key" in part.reason
        assert part.ciphertext.strip() == armored.strip().encode()
        assert result.failures and SECURED in result.customer_text


def test_corrupted_armor(queue: Keyring, customer: gnupg.GPG) -> None:
    armored = _encrypt(customer, SECRET, FPR["queue"])
    lines = armored.splitlines()
    lines[3] = lines[3][:10] + "AAAAAAAAAAAAAAAA" + lines[3][26:]
    broken = "\n".join(lines)
    result = _open(_mail(f"x\n{broken}\n").as_bytes(), queue)
    (part,) = result.secrets
    assert not part.ok and part.reason and part.text == ""
    assert part.ciphertext == (broken.strip() + "\n").encode()
    assert result.customer_text == f"x\n{SECURED}\n"
    _assert_no_leak(result)
    truncated = "\n".join(lines[:4])  # no END line at all
    result = _open(_mail(f"x\n{truncated}\n").as_bytes(), queue)
    assert result.failures and result.customer_text == f"x\n{SECURED}"


def test_message_without_mdc_is_refused_and_plaintext_dropped(
    queue: Keyring, customer: gnupg.GPG
) -> None:
    # gpg 2.2.40 still writes a no-MDC (SED packet) message with --rfc2440; it prints the
    # plaintext while decrypting and only fails at the end: the plaintext must be dropped
    armored = _encrypt(customer, SECRET, FPR["queue"], extra_args=["--rfc2440"])
    packets = subprocess.run(
        ["gpg", "--list-packets"], input=armored.encode(), capture_output=True, check=False
    ).stdout.decode()
    assert ":encrypted data packet:" in packets and "mdc_method" not in packets
    result = _open(_mail(f"x\n{armored}\n").as_bytes(), queue)
    (part,) = result.secrets
    assert not part.ok and "no MDC" in part.reason
    assert part.text == "" and part.attachments == ()
    assert "hunter2" not in repr(result)
    assert part.ciphertext.startswith(b"-----BEGIN PGP MESSAGE-----")


def test_symmetric_message_is_not_tried_with_the_queue_passphrase(
    queue: Keyring, customer: gnupg.GPG
) -> None:
    sym = customer.encrypt(
        SECRET, None, symmetric=True, passphrase="guess", extra_args=["--s2k-count", "65536"]
    )
    assert sym.ok
    result = _open(_mail(f"x\n{sym}\n").as_bytes(), queue)
    assert "symmetric" in result.failures[0]
    _assert_no_leak(result)


def test_protected_queue_key_and_passphrases(
    homes: Callable[..., Path], customer: gnupg.GPG
) -> None:
    fpr = FPR["queue-protected"]
    customer.import_keys((KEYS / "queue-protected.pub.asc").read_text())
    raw = _mail(f"x\n{_encrypt(customer, SECRET, fpr)}\n").as_bytes()
    for passphrase in ("wrong", None):
        ring = Keyring(homes("queue-protected.sec.asc"), passphrase)
        (part,) = _open(raw, ring).secrets
        assert not part.ok and "passphrase" in part.reason, part.reason
    ring = Keyring(homes("queue-protected.sec.asc"), "correct horse battery staple")
    (part,) = _open(raw, ring).secrets
    assert part.ok and part.text == SECRET


def test_pgp_corpus_files_give_failures_never_exceptions(queue: Keyring) -> None:
    files = sorted(CORPUS.glob("*.eml"))
    assert len(files) == 15
    for path in files:
        raw = path.read_bytes()
        msg = email.message_from_bytes(raw, policy=default)
        result = open_message(raw, _text_of(raw), queue, str(msg.get("From", "")))
        assert result.has_pgp, path.name
        if result.secrets:  # encrypted to keys we do not have (or no OpenPGP at all)
            assert result.failures, path.name
            assert all(p.ciphertext for p in result.secrets if not p.ok), path.name
        else:  # signed only, by keys we do not have (or with redacted signatures)
            checks = [result.signature, *result.partial_signatures]
            assert checks and not any(c and c.valid for c in checks), path.name
        if msg.get_content_type() == "multipart/encrypted":
            assert result.customer_text == SECURED, path.name


def test_too_many_blocks_are_kept_but_not_all_decrypted(queue: Keyring) -> None:
    blocks = [
        f"-----BEGIN PGP MESSAGE-----\n\nhQEMA{i:04d}garbage\n-----END PGP MESSAGE-----"
        for i in range(MAX_BLOCKS + 3)
    ]
    result = _open(_mail("\n".join(blocks) + "\n").as_bytes(), queue)
    assert len(result.secrets) == MAX_BLOCKS + 3 and len(result.failures) == MAX_BLOCKS + 3
    assert all("more than" in p.reason for p in result.secrets[MAX_BLOCKS:])
    assert result.customer_text.count(SECURED) == MAX_BLOCKS + 3


def test_plain_message_has_no_pgp(queue: Keyring) -> None:
    raw = _mail("Just a question about my invoice.\n").as_bytes()
    assert not scan(raw, _text_of(raw))
    result = _open(raw, queue)
    assert not result.has_pgp and result.customer_text == _text_of(raw)


def test_pgp_mime_armor_also_in_text_is_decrypted_once(queue: Keyring, customer: gnupg.GPG) -> None:
    armored = _encrypt(customer, _inner_entity(), FPR["queue"])
    raw = _pgp_mime(armored)
    result = open_message(raw, f"Version: 1\n{armored}\n", queue, CUSTOMER)
    assert [p.kind for p in result.secrets] == ["pgp-mime"]
    assert result.customer_text == SECURED


def test_open_message_never_raises_on_garbage(queue: Keyring) -> None:
    for raw in (b"", b"\xff\xfe\x00garbage", b"Content-Type: multipart/encrypted\r\n\r\n--x"):
        result = open_message(raw, "", queue, "")
        assert isinstance(result, CryptoResult)


# --------------------------------------------------------------------------- outgoing


def test_encrypt_mime_round_trip(queue: Keyring, homes: Callable[..., Path]) -> None:
    reply = _mail(SECRET + "\n", sender="Support <support@example.test>", subject="Re: help")
    del reply["To"]
    reply["To"] = CUSTOMER
    reply["Cc"] = "boss@example.com"
    reply["Date"] = "Mon, 02 Mar 2026 10:00:00 +0000"
    reply.replace_header("Message-ID", "<reply-1@example.test>")
    reply["In-Reply-To"] = "<m1@example.com>"
    reply["References"] = "<m0@example.com> <m1@example.com>"
    reply["Auto-Submitted"] = "auto-replied"
    reply["X-Mailgate-Loop"] = "support"
    reply.add_attachment(b"\x00log", maintype="application", subtype="octet-stream", filename="l")

    out = encrypt_mime(reply, [FPR["customer"]], sign_with=FPR["queue"], keyring=queue)
    wire = out.as_bytes()
    assert b"hunter2" not in wire
    parsed = email.message_from_bytes(wire, policy=default)
    assert parsed.get_content_type() == "multipart/encrypted"
    assert parsed.get_param("protocol") == "application/pgp-encrypted"
    for name in ("From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To"):
        assert parsed[name] == reply[name], name
    for name in ("References", "Auto-Submitted", "X-Mailgate-Loop"):
        assert parsed[name] == reply[name], name
    control, payload = parsed.iter_parts()
    assert control.get_content_type() == "application/pgp-encrypted"
    assert control.get_content().strip() == b"Version: 1"

    # the customer decrypts it with their own key and sees the body and the attachment
    side = Keyring(homes("customer.sec.asc", "queue.pub.asc"))
    opened = open_message(wire, "", side, "support@example.test")
    (part,) = opened.secrets
    assert part.ok and part.text.strip() == SECRET
    assert part.attachments == (("l", "application/octet-stream", b"\x00log"),)
    assert opened.signature and opened.signature.valid and opened.signature.matches_from
    assert opened.customer_text == SECURED


def test_encrypt_mime_refuses_unusable_recipients(queue: Keyring) -> None:
    msg = _mail("x")
    for bad in ([], ["customer@example.com"], [FPR["revoked"]], [FPR["expired"]]):
        with pytest.raises(CryptoError):
            encrypt_mime(msg, bad, keyring=queue)


# --------------------------------------------------------------------------- keys


def test_public_key_for(queue: Keyring, homes: Callable[..., Path]) -> None:
    assert queue.public_key_for("customer@example.com") == FPR["customer"]
    assert queue.public_key_for("CUSTOMER@Example.COM") == FPR["customer"]
    assert queue.public_key_for("Carla <customer@example.com>") == FPR["customer"]
    assert queue.public_key_for("ustomer@example.com") is None
    assert queue.public_key_for("customer@example.co") is None
    assert queue.public_key_for("expired@example.com") is None
    assert queue.public_key_for("revoked@example.com") is None
    assert queue.public_key_for("nobody@example.com") is None
    assert queue.public_key_for("") is None
    # a sign-only key is no encryption key
    subprocess.run(
        ["gpg", "--homedir", str(queue.home), "--batch", "--passphrase", "", "--quick-gen-key",
         "Signer <signer@example.com>", "ed25519", "sign", "0"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    assert queue.public_key_for("signer@example.com") is None


def test_keys_create_import_export_list(homes: Callable[..., Path]) -> None:
    base = homes()
    home = base / "queue-home"  # missing: created with mode 700
    fpr = keys.create_queue_key(home, "Mailgate Sales", "sales@example.test")
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert re.fullmatch(r"[0-9A-F]{40}", fpr)
    (info,) = keys.list_keys(home)
    assert info.fingerprint == fpr and info.secret and info.algo == "ed25519"
    assert info.uids == ("Mailgate Sales <sales@example.test>",) and info.expires is None
    assert info.can_encrypt and info.usable

    public = keys.export_public(home, fpr)
    assert public.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----") and "PRIVATE" not in public
    other = homes()
    assert keys.import_key(other, public) == [fpr]
    assert keys.import_key(other, KEYS / "customer.pub.asc") == [FPR["customer"]]
    listed = {k.fingerprint: k for k in keys.list_keys(other)}
    assert set(listed) == {fpr, FPR["customer"]} and not listed[fpr].secret

    revoked = {k.fingerprint: k for k in keys.list_keys(homes("revoked.pub.asc"))}
    assert revoked[FPR["revoked"]].revoked and not revoked[FPR["revoked"]].usable

    for bad_call in (
        lambda: keys.create_queue_key(home, "X", "not-an-email"),
        lambda: keys.create_queue_key(home, "X\nPassphrase: y", "x@example.test"),
        lambda: keys.create_queue_key(home, "X", "x@example.test", algo="dsa"),
        lambda: keys.import_key(other, "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\ngarbage\n"),
        lambda: keys.import_key(other, other / "missing.asc"),
        lambda: keys.export_public(home, FPR["stranger"]),
    ):
        with pytest.raises(keys.KeyManagementError):
            bad_call()
    drop_home(home)
