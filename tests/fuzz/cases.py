"""Fuzz cases: seeded mutations of the corpus plus constructed hostile messages."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"
MAX_SEED_BYTES = 200_000  # bigger corpus files are parsed whole by test_corpus already

HEAD = b"From: %s\r\nTo: support@example.test\r\nSubject: %s\r\nMessage-ID: <%s@fuzz>\r\n"


def seeds() -> list[bytes]:
    files = sorted(p for p in CORPUS.rglob("*.eml") if p.stat().st_size <= MAX_SEED_BYTES)
    return [p.read_bytes() for p in files]


def _flip(rng: random.Random, raw: bytes) -> bytes:
    b = bytearray(raw)
    for _ in range(rng.randint(1, 20)):
        b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b)


def _insert(rng: random.Random, raw: bytes) -> bytes:
    junk = rng.choice(
        [
            b"\x00",
            b"\r",
            b"\xff\xfe",
            b"\xc3(",
            b"\xed\xa0\x80",
            b"=?utf-8?q?\xc3\xa9=?=",
            b"\x1b$B",
        ]
    )
    i = rng.randrange(len(raw) + 1)
    return raw[:i] + junk * rng.randint(1, 50) + raw[i:]


def _cut(rng: random.Random, raw: bytes) -> bytes:
    i = rng.randrange(len(raw))
    j = min(len(raw), i + rng.randint(1, 2000))
    return raw[:i] + raw[j:] if rng.random() < 0.7 else raw[:i]


def _repeat(rng: random.Random, raw: bytes) -> bytes:
    i = rng.randrange(len(raw))
    piece = raw[i : i + rng.randint(1, 500)]
    return raw[:i] + piece * rng.randint(2, 30) + raw[i:]


def _line_ends(rng: random.Random, raw: bytes) -> bytes:
    return raw.replace(b"\r\n", rng.choice([b"\r", b"\n", b"\n\r", b"\r\r\n"]))


def _header(rng: random.Random, raw: bytes) -> bytes:
    extra = rng.choice(
        [
            "From: José Núñez <josé@exämple.com>\r\n".encode(),
            b"Content-Type: text/plain; charset=\xff\xfe\r\n",
            b'Content-Type: multipart/mixed; boundary="unclosed\r\n',
            b"Content-Type: text/pl\xe9in; charset=x-unknown-42\r\n",
            b"Subject: =?koi8-r?b?\xff\xfe?= =?utf-8?q?" + b"\xc3\xa9" * 40 + b"?=\r\n",
            b"X-Long: " + b"y" * 70_000 + b"\r\n",
        ]
    )
    return extra + raw if rng.random() < 0.5 else raw.replace(b"\n", b"\n" + extra, 1)


MUTATIONS: list[Callable[[random.Random, bytes], bytes]] = [
    _flip,
    _insert,
    _cut,
    _repeat,
    _line_ends,
    _header,
]


def mutated(rng: random.Random, seed: bytes) -> bytes:
    raw = seed
    for _ in range(rng.randint(1, 3)):
        if raw:
            raw = rng.choice(MUTATIONS)(rng, raw)
    return raw or b"x"


def _nested(depth: int) -> bytes:
    out = b""
    for i in range(depth):
        out += b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
    return out + b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep\r\n" % depth


def hostile(i: int) -> bytes:
    """Constructed hostile messages, one family per i (cycled)."""
    n = i // 10
    head = HEAD % (b"attacker@example.org", b"hostile %d" % i, b"h%d" % i)
    family = i % 10
    if family == 0:  # nesting depth
        depth = 50 + (n * 37) % 1500
        return head + b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n" + _nested(depth)
    if family == 1:  # part counts
        parts = b"".join(
            b"--p\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % k for k in range(300 + n * 50)
        )
        return head + b"Content-Type: multipart/mixed; boundary=p\r\n\r\n" + parts + b"--p--\r\n"
    if family == 2:  # huge headers
        return head + b"".join(b"X-H%d: %s\r\n" % (k, b"v" * 200) for k in range(5000)) + b"\r\nx"
    if family == 3:  # bad charsets
        label = [b"x-nope", b"utf-7", b"utf-16", b"\xff", b"unicode-escape", b"idna"][n % 6]
        return head + b"Content-Type: text/plain; charset=" + label + b"\r\n\r\n\xe9\xff\x00body"
    if family == 4:  # NUL everywhere
        return (head + b"X-N: a\x00b\r\n\r\nbo\x00dy\x00").replace(b"hostile", b"hos\x00tile")
    if family == 5:  # bare CR
        return (head + b"\r\nline one\r\nline two\r\n").replace(b"\r\n", b"\r")
    if family == 6:  # traversal file names
        name = [b"../../etc/passwd", b"..\\..\\win.ini", b"/abs/path", b"a\x00b.exe", b"CON"][n % 5]
        return head + (
            b"Content-Type: multipart/mixed; boundary=t\r\n\r\n--t\r\nContent-Type: text/plain\r\n"
            b"\r\nsee attached\r\n--t\r\nContent-Type: application/octet-stream\r\n"
            b'Content-Disposition: attachment; filename="' + name + b'"\r\n\r\ndata\r\n--t--\r\n'
        )
    if family == 7:  # 8-bit bytes everywhere
        return HEAD % (b"\xff\xfe <a\xe9@example.org>", b"\xc3(\xa0\xe9", b"e%d" % i) + (
            b'Content-Type: text/pl\xe9in; charset="\xe9"\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4\r\n'
        )
    if family == 8:  # UTF-8 addresses (RFC 6532), which get an acknowledgement
        who = ["josé@example.com", "用户@例子.广告", "δοκιμή@παράδειγμα.δοκιμή"][n % 3]
        return HEAD % (f"Jö Ü <{who}>".encode(), "Grüße".encode(), b"u%d" % i) + b"\r\nhi\r\n"
    return head + b"Content-Type: text/plain\r\n\r\n" + b"z" * (3000 + n) + b"\r\n"  # long line


def cases(count: int, seed: int = 13) -> Iterator[bytes]:
    rng = random.Random(seed)
    corpus = seeds()
    for i in range(count):
        yield hostile(i) if i % 4 == 0 else mutated(rng, rng.choice(corpus))
