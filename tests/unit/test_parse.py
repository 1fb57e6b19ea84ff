"""Unit tests of the pure parse stage (mailgate.parse) and its run over the real-world corpus."""

from __future__ import annotations

import csv
import hashlib
import random
import textwrap
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mailgate.parse import message as message_module
from mailgate.parse import mime, prescan
from mailgate.parse.attachments import Attachment
from mailgate.parse.limits import ParseLimits, ParseRejected
from mailgate.parse.message import Parsed, parse

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"


def mail(text: str, eol: str = "\n", charset: str = "utf-8") -> bytes:
    """A message from an indented literal, with the chosen line ends."""
    body = textwrap.dedent(text).lstrip("\n")
    return body.replace("\n", eol).encode(charset)


PLAIN = """
    Return-Path: <Alice@Example.COM>
    From: "Alice Example" <Alice@Example.COM>
    To: Support <support@helpdesk.example>, bob@example.org
    Cc: carol@example.net
    Subject: Printer on fire
    Date: Mon, 02 Mar 2026 08:00:57 +0100
    Message-ID: <abc.123@mail.example.com>
    MIME-Version: 1.0
    Content-Type: text/plain; charset=us-ascii

    Hello,

    the printer is on fire.
    """


# --------------------------------------------------------------------------- basics


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "bare-CR"])
def test_plain_message_with_any_line_end(eol: str) -> None:
    raw = mail(PLAIN, eol)
    p = parse(raw)
    assert isinstance(p, Parsed)
    assert p.raw_sha256 == hashlib.sha256(raw).hexdigest()
    assert p.size == len(raw)
    assert p.subject == "Printer on fire"
    assert p.from_addr == "alice@example.com"
    assert p.from_name == "Alice Example"
    assert p.to == ("support@helpdesk.example", "bob@example.org")
    assert p.cc == ("carol@example.net",)
    assert p.message_id == "<abc.123@mail.example.com>"
    assert p.date == datetime(2026, 3, 2, 7, 0, 57, tzinfo=UTC)
    assert p.date.utcoffset() == timedelta(hours=1)
    assert p.return_path == "alice@example.com"
    assert p.content_type == "text/plain"
    assert p.text == "Hello,\n\nthe printer is on fire.\n"
    assert "\r" not in p.text
    assert p.html == ""
    assert p.attachments == ()
    assert p.defects == ()


def test_headers_in_order_lowercased_unfolded_and_decoded() -> None:
    raw = mail(
        """
        Subject: =?utf-8?q?caf=C3=A9?= and
         more
        X-Custom: one
        x-custom: two
        From: a@example.org

        body
        """
    )
    p = parse(raw)
    assert p.headers == (
        ("subject", "café and more"),
        ("x-custom", "one"),
        ("x-custom", "two"),
        ("from", "a@example.org"),
    )
    assert p.header("X-CUSTOM") == "one"
    assert p.header_all("X-Custom") == ("one", "two")
    assert p.header("missing") == ""
    assert p.header_all("missing") == ()


def test_parsed_is_frozen() -> None:
    p = parse(mail(PLAIN))
    with pytest.raises(AttributeError):
        p.subject = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------- subjects, names


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=", "Grüße aus Köln"),
        ("=?utf-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=", "Grüße aus Köln"),
        ("=?ISO-8859-1?Q?Gr=FC=DFe?= aus =?iso-8859-1?q?K=F6ln?=", "Grüße aus Köln"),
        ("=?iso-8859-1?b?R3L832U=?=", "Grüße"),
        ("Re: =?utf-8?q?a?=  =?utf-8?q?b?=", "Re: ab"),  # whitespace between words dropped
        ("=?utf-8?b?w6k=?==?utf-8?b?w6k=?=", "éé"),
        ("=?utf-8?b?4oK=?= =?utf-8?b?rA==?=", "€"),  # a character split across two words
        ("=?utf-8?q?broken word?=", "broken word"),  # spaces inside: malformed, decoded anyway
        ("prefix=?utf-8?q?=C3=A9?=suffix", "prefixésuffix"),  # mid-word: malformed
        ("=?utf-8*en?q?hello?=", "hello"),  # RFC 2231 language tag
        ("=?UTF8?B?w6k=?=", "é"),
        ("=?utf-8?b?w6k?=", "é"),  # missing padding
        ("  Re:   spaced  ", "Re:   spaced"),
        ("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
        ("", ""),
    ],
)
def test_rfc2047_subjects(header: str, expected: str) -> None:
    p = parse(f"From: a@example.org\nSubject: {header}\n\nx\n".encode())
    assert p.subject == expected


def test_folded_encoded_subject() -> None:
    raw = mail(
        """
        Subject: =?utf-8?B?0J/RgNC40LLQtdGCLCDQvNC40YAh?=
         =?utf-8?B?INCa0LDQuiDQtNC10LvQsD8=?=
        From: a@example.org

        x
        """,
        "\r\n",
    )
    assert parse(raw).subject == "Привет, мир! Как дела?"


def test_unknown_charset_in_encoded_word_is_a_defect() -> None:
    p = parse(b"From: a@example.org\nSubject: =?x-bogus?q?caf=C3=A9?=\n\nx\n")
    assert p.subject == "café"
    assert any("unknown charset x-bogus" in d for d in p.defects)


def test_raw_utf8_headers() -> None:
    raw = mail(
        """
        From: Jörg Müller <joerg@example.de>
        To: "Zoë" <zoe@example.org>
        Subject: Grüße – 你好

        Hallo
        """
    )
    p = parse(raw)
    assert p.subject == "Grüße – 你好"
    assert p.from_name == "Jörg Müller"
    assert p.from_addr == "joerg@example.de"
    assert p.to == ("zoe@example.org",)
    assert p.defects == ()


def test_raw_latin1_header_falls_back_with_defect() -> None:
    p = parse(b"From: J\xf6rg <j@example.de>\nSubject: Gr\xfc\xdfe\n\nx\n")
    assert p.subject == "Grüße"
    assert p.from_name == "Jörg"
    assert any("8-bit header subject" in d and "latin-1" in d for d in p.defects)


def test_raw_8bit_header_in_body_charset() -> None:
    raw = "Subject: Тест\nContent-Type: text/plain; charset=koi8-r\n\nТест\n".encode("koi8-r")
    p = parse(b"From: a@example.org\n" + raw)
    assert p.subject == "Тест"
    assert p.text == "Тест\n"


@pytest.mark.parametrize(
    ("header", "addr", "name"),
    [
        ('"Doe, John" <John.Doe@Example.com>', "john.doe@example.com", "Doe, John"),
        ("=?utf-8?q?Doe=2C_J=C3=B6rg?= <j@example.com>", "j@example.com", "Doe, Jörg"),
        ("j@example.com (John Doe)", "j@example.com", "John Doe"),
        ("MAILER-DAEMON (Mail Delivery System)", "mailer-daemon", "Mail Delivery System"),
        ("<j@example.com>", "j@example.com", ""),
        ('"quoted \\"name\\"" <q@example.com>', "q@example.com", 'quoted "name"'),
        ("John Doe", "", ""),
        ("", "", ""),
    ],
)
def test_from_address_and_name(header: str, addr: str, name: str) -> None:
    p = parse(f"From: {header}\nSubject: s\n\nx\n".encode())
    assert (p.from_addr, p.from_name) == (addr, name)


def test_address_lists() -> None:
    raw = mail(
        """
        From: a@example.org
        To: undisclosed-recipients:;
        Cc: Team: x@example.org, "Y, Why" <Y@Example.org>;, z@example.org, localonly
        Cc: second@example.org, x@example.org
        Reply-To: <Reply@Example.org>

        x
        """
    )
    p = parse(raw)
    assert p.to == ()
    assert p.cc == ("x@example.org", "y@example.org", "z@example.org", "second@example.org")
    assert p.reply_to == ("reply@example.org",)


# --------------------------------------------------------------------------- ids, dates


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("<abc@example.com>", "<abc@example.com>"),
        ("   <abc@example.com>   ", "<abc@example.com>"),
        ("abc@example.com", "<abc@example.com>"),
        ("< abc@example.com >", "<abc@example.com>"),
        ("<abc@example.com> (comment)", "<abc@example.com>"),
        ("<>", ""),
        ("garbage", ""),
        ("", ""),
    ],
)
def test_message_id_normalized(header: str, expected: str) -> None:
    p = parse(f"From: a@example.org\nMessage-ID: {header}\n\nx\n".encode())
    assert p.message_id == expected


def test_missing_message_id() -> None:
    p = parse(b"From: a@example.org\nSubject: s\n\nx\n")
    assert p.message_id == ""
    assert p.in_reply_to == ()
    assert p.references == ()


def test_references_and_in_reply_to_normalized() -> None:
    raw = mail(
        """
        From: a@example.org
        In-Reply-To: Your message of Mon, 2 Mar 2026 <one@example.com>
        References: <one@example.com>
         <two@example.com>,<three@example.com>  <one@example.com>
        References: four@example.com

        x
        """
    )
    p = parse(raw)
    assert p.in_reply_to == ("<one@example.com>",)
    assert p.references == (
        "<one@example.com>",
        "<two@example.com>",
        "<three@example.com>",
    )
    bare = parse(b"From: a@example.org\nIn-Reply-To: one@example.com\nReferences: x y@z\n\nx\n")
    assert bare.in_reply_to == ("<one@example.com>",)
    assert bare.references == ("<y@z>",)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Mon, 02 Mar 2026 08:00:57 +0000", datetime(2026, 3, 2, 8, 0, 57, tzinfo=UTC)),
        ("2 Mar 2026 08:00 -0500", datetime(2026, 3, 2, 13, 0, tzinfo=UTC)),
        ("Mon, 2 Mar 2026 08:00:57 +0000 (UTC)", datetime(2026, 3, 2, 8, 0, 57, tzinfo=UTC)),
        ("Mon, 02 Mar 2026 08:00:57 -0000", datetime(2026, 3, 2, 8, 0, 57, tzinfo=UTC)),
        ("Mon, 02 Mar 2026 08:00:57 GMT", datetime(2026, 3, 2, 8, 0, 57, tzinfo=UTC)),
        ("Mon, 02 Mar 26 08:00:57 EST", datetime(2026, 3, 2, 13, 0, 57, tzinfo=UTC)),
        ("Mon, 02 Mar 2026 08:00:57", datetime(2026, 3, 2, 8, 0, 57, tzinfo=UTC)),
        ("yesterday at noon", None),
        ("Mon, 31 Feb 2026 08:00:57 +0000", None),
        ("Mon, 02 Mar 2026 08:00:57 +9999", None),
        ("", None),
    ],
)
def test_date(header: str, expected: datetime | None) -> None:
    p = parse(f"From: a@example.org\nDate: {header}\n\nx\n".encode())
    assert p.date == expected
    if p.date is not None:
        assert p.date.tzinfo is not None
    elif header:
        assert any("unparseable Date" in d for d in p.defects)


def test_date_keeps_offset() -> None:
    p = parse(b"From: a@example.org\nDate: Tue, 3 Mar 2026 10:00:00 +0530\n\nx\n")
    assert p.date is not None
    assert p.date.utcoffset() == timezone(timedelta(hours=5, minutes=30)).utcoffset(None)


def test_missing_date() -> None:
    assert parse(b"From: a@example.org\n\nx\n").date is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Return-Path: <>\n", ""),
        ("Return-Path: <Bounce+X@Lists.Example.org>\n", "bounce+x@lists.example.org"),
        ("Return-Path: <@relay.example:user@example.org>\n", "user@example.org"),
        ("Return-Path: <MAILER-DAEMON>\n", "mailer-daemon"),
        ("", None),
    ],
)
def test_return_path(header: str, expected: str | None) -> None:
    p = parse(f"{header}From: a@example.org\n\nx\n".encode())
    assert p.return_path == expected


# --------------------------------------------------------------------------- bodies and charsets


def test_html_only_gets_readable_text() -> None:
    raw = mail(
        """
        From: a@example.org
        Content-Type: text/html; charset=utf-8

        <html><head><title>T</title><style>p {color: red}</style>
        <script>alert("x")</script></head>
        <body><p>Hello&nbsp;<b>World</b> &amp; friends,</p>
        <p>line one<br>line two</p>
        <ul><li>first</li><li>second &lt;2&gt;</li></ul>
        <!-- a comment -->
        <div>caf&eacute; &#8364;5</div></body></html>
        """
    )
    p = parse(raw)
    assert p.content_type == "text/html"
    assert p.html.startswith("<html>")
    assert p.text == (
        "Hello World & friends,\n\nline one\nline two\n\n- first\n- second <2>\n\ncafé €5"
    )


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>a</p><script>never", "a"),  # unterminated script: the rest is not text
        ("<style>x{}</style>b<style>unterminated", "b"),
        ("<!-- unterminated comment <p>x</p>", ""),
        ("a < b and c > d", "a < b and c > d"),
        ("<pre>  keep\n  lines</pre>", "keep\nlines"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
        ("<<<<>>>>", "<<<<>>>>"),
        ("&zzz; &lt;", "&zzz; <"),
    ],
)
def test_html_rendering_edge_cases(html: str, text: str) -> None:
    raw = f"From: a@example.org\nContent-Type: text/html\n\n{html}".encode()
    assert parse(raw).text == text


def test_html_rendering_is_linear_on_hostile_input() -> None:
    html = "<script>" * 20000 + "<!--" * 20000 + "<a " * 20000
    raw = f"From: a@example.org\nContent-Type: text/html\n\n{html}".encode()
    start = time.perf_counter()
    parse(raw)
    assert time.perf_counter() - start < 2.0


ALTERNATIVE = """
    From: a@example.org
    Subject: alt
    MIME-Version: 1.0
    Content-Type: multipart/alternative; boundary="b1"

    preamble
    --b1
    Content-Type: text/html; charset=utf-8

    <p>HTML version</p>
    --b1
    Content-Type: text/plain; charset="UTF8"
    Content-Transfer-Encoding: quoted-printable

    Plain version =E2=82=AC
    --b1--
    """


def test_multipart_alternative_prefers_plain_and_keeps_html() -> None:
    p = parse(mail(ALTERNATIVE, "\r\n"))
    assert p.content_type == "multipart/alternative"
    assert p.text == "Plain version €"
    assert p.html == "<p>HTML version</p>"
    assert p.attachments == ()


def test_empty_plain_alternative_falls_back_to_html() -> None:
    raw = mail(ALTERNATIVE.replace("Plain version =E2=82=AC", "  "))
    p = parse(raw)
    assert p.text == "HTML version"
    assert p.html == "<p>HTML version</p>"


@pytest.mark.parametrize(
    ("charset", "payload", "text", "defect"),
    [
        ("utf-8", "é€".encode(), "é€", None),
        ("utf8", "é".encode(), "é", None),
        ("UTF8", "é".encode(), "é", None),
        ('"utf-8"', "é".encode(), "é", None),
        ("iso-8859-1", "é".encode("latin-1"), "é", None),
        ("iso-8859-1", b"\x80", "€", None),  # labelled latin-1, really windows-1252
        ("windows-1252", b"\x93q\x94", "\u201cq\u201d", None),
        ("gb2312", "测试".encode("gb18030"), "测试", None),
        ("us-ascii", b"plain", "plain", None),
        ("us-ascii", "é".encode(), "é", "8-bit data with charset us-ascii, decoded as utf-8"),
        (None, "é".encode("latin-1"), "é", "8-bit data with no charset, decoded as latin-1"),
        ("x-foo", "é".encode(), "é", "unknown charset x-foo, decoded as utf-8"),
        ("x-foo", "é".encode("latin-1"), "é", "unknown charset x-foo, decoded as latin-1"),
        ("utf-8", b"ok \xff ok", "ok \ufffd ok", "invalid utf-8 bytes replaced"),
        ("base64", b"plain", "plain", None),  # a non-text codec is not a charset
        ("rot13", b"uryyb", "uryyb", None),
    ],
)
def test_charsets(charset: str | None, payload: bytes, text: str, defect: str | None) -> None:
    ctype = "text/plain" + (f"; charset={charset}" if charset else "")
    raw = f"From: a@example.org\nContent-Type: {ctype}\n\n".encode() + payload
    p = parse(raw)
    assert p.text == text
    if defect:
        assert any(defect in d for d in p.defects), p.defects
    elif charset not in ("base64", "rot13"):
        assert p.defects == ()


def test_base64_body_and_nul_removed() -> None:
    raw = mail(
        """
        From: a@example.org
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: base64

        SGFsbG8gV2VsdAANCg==
        """
    )
    assert parse(raw).text == "Hallo Welt\n"


def test_text_truncated_at_max_text_chars() -> None:
    raw = b"From: a@example.org\n\n" + b"x" * 5000
    p = parse(raw, ParseLimits(max_text_chars=100))
    assert p.text == "x" * 100
    assert "text truncated at 100 chars" in p.defects


# --------------------------------------------------------------------------- attachments


def multipart_with(*parts: str, boundary: str = "XYZ") -> bytes:
    """A multipart/mixed message (LF) from raw part texts (headers, blank line, body)."""
    out = [
        "From: a@example.org",
        "Subject: parts",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
        "",
    ]
    for part in parts:
        out += [f"--{boundary}", textwrap.dedent(part).strip("\n")]
    out.append(f"--{boundary}--")
    return "\n".join(out).encode("utf-8", "surrogateescape")


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\\\x\\\\evil.exe", "evil.exe"),
        ("\x00", "attachment-1.pdf"),
        ("a\x00b\x07c.pdf", "abc.pdf"),
        ("....", "attachment-1.pdf"),
        (".hidden", "attachment-1.hidden"),
        ("..\\\\..\\\\", "attachment-1.pdf"),
        ("CON.pdf", "_CON.pdf"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        ("what?<>|*.pdf", "what_____.pdf"),
        ("  spaced   name .pdf  ", "spaced name .pdf"),
        ("x" * 500 + ".pdf", "x" * 196 + ".pdf"),
        ("y" * 500, "y" * 200),
        ("=?utf-8?b?w6l0w6kucGRm?=", "été.pdf"),
        ("", "attachment-1.pdf"),
    ],
)
def test_hostile_filenames_sanitized(filename: str, expected: str) -> None:
    raw = multipart_with(
        "Content-Type: text/plain\n\nbody",
        f'Content-Type: application/pdf\nContent-Disposition: attachment; filename="{filename}"\n'
        "Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK",
    )
    p = parse(raw)
    assert p.text == "body"
    (att,) = p.attachments
    assert att.filename == expected
    assert len(att.filename) <= 200
    assert "/" not in att.filename and "\\" not in att.filename and "\x00" not in att.filename
    assert not att.filename.startswith(".")
    assert att.data == b"%PDF-1.4\n"
    assert att.sha256 == hashlib.sha256(b"%PDF-1.4\n").hexdigest()
    assert att.content_type == "application/pdf"
    assert att.inline is False


def test_rfc2231_and_raw_8bit_filenames() -> None:
    raw = multipart_with(
        "Content-Type: text/plain\n\nbody",
        "Content-Type: application/octet-stream\n"
        "Content-Disposition: attachment; filename*=utf-8''%C3%A9t%C3%A9.txt",
        "Content-Type: application/octet-stream\n"
        'Content-Disposition: attachment; filename="Счёт.pdf"\n\nx',
    )
    names = [a.filename for a in parse(raw).attachments]
    assert names == ["été.txt", "Счёт.pdf"]


def test_attachment_kinds_inline_images_and_pgp() -> None:
    raw = multipart_with(
        "Content-Type: text/plain\n\nsee attached",
        "Content-Type: image/png\nContent-ID: <img1@example>\nContent-Transfer-Encoding: base64\n"
        "\niVBORw0KGgo=",
        "Content-Type: image/gif\nContent-Disposition: inline; filename=a.gif\n\nGIF89a",
        "Content-Type: application/pgp-signature; name=signature.asc\n\n-----BEGIN PGP-----",
        "Content-Type: text/calendar; method=REQUEST\n\nBEGIN:VCALENDAR",
        "Content-Type: text/plain\nContent-Disposition: attachment\n\nnotes",
        "Content-Type: text/plain\n\nsecond inline text is not the body",
        "Content-Type: text/html\n\n<p>first html</p>",
        "Content-Type: text/html\n\n<p>second html</p>",
    )
    p = parse(raw)
    assert p.text == "see attached"
    got = [(a.filename, a.content_type, a.content_id, a.inline) for a in p.attachments]
    assert got == [
        ("attachment-1.png", "image/png", "img1@example", True),
        ("a.gif", "image/gif", "", True),
        ("signature.asc", "application/pgp-signature", "", False),
        ("attachment-4.ics", "text/calendar", "", False),
        ("attachment-5.txt", "text/plain", "", False),
        ("attachment-6.txt", "text/plain", "", True),
        ("attachment-7.html", "text/html", "", True),
    ]
    assert p.html == "<p>first html</p>"
    assert p.attachments[5].data == b"second inline text is not the body"
    assert p.attachments[0].data == b"\x89PNG\r\n\x1a\n"
    assert all(isinstance(a, Attachment) for a in p.attachments)


def test_pgp_mime_encrypted_parts_are_attachments() -> None:
    raw = mail(
        """
        From: a@example.org
        MIME-Version: 1.0
        Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="E"

        --E
        Content-Type: application/pgp-encrypted

        Version: 1
        --E
        Content-Type: application/octet-stream; name="encrypted.asc"
        Content-Disposition: inline; filename="encrypted.asc"

        -----BEGIN PGP MESSAGE-----
        hQEMA
        -----END PGP MESSAGE-----
        --E--
        """
    )
    p = parse(raw)
    assert p.text == ""
    assert [(a.content_type, a.filename) for a in p.attachments] == [
        ("application/pgp-encrypted", "attachment-1.pgp"),
        ("application/octet-stream", "encrypted.asc"),
    ]
    assert p.attachments[0].data == b"Version: 1"
    assert p.attachments[1].data.startswith(b"-----BEGIN PGP MESSAGE-----")


def test_enclosed_message_is_an_attachment_not_the_body() -> None:
    inner = "From: x@example.org\nSubject: Original: problem?\n\nINNER TEXT\n"
    raw = multipart_with(
        "Content-Type: text/plain\n\nforwarding",
        "Content-Type: message/rfc822\n\n" + inner,
    )
    p = parse(raw)
    assert p.text == "forwarding"
    (att,) = p.attachments
    assert att.content_type == "message/rfc822"
    assert att.filename == "Original_ problem_.eml"
    assert att.data == inner.rstrip("\n").encode()
    assert "INNER" not in p.text


def test_top_level_enclosed_message() -> None:
    raw = b"From: a@example.org\nContent-Type: message/rfc822\n\nSubject: inner\n\nhi\n"
    p = parse(raw)
    assert p.content_type == "message/rfc822"
    assert [a.filename for a in p.attachments] == ["inner.eml"]


# --------------------------------------------------------------------------- limits


def nested(depth: int, leaf: str = "deep text") -> bytes:
    """A message with `depth` nested multipart/mixed levels around one text part."""
    out = "From: a@example.org\nSubject: deep\nMIME-Version: 1.0\n"
    for i in range(depth):
        out += f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n'
    out += f"Content-Type: text/plain\n\n{leaf}\n"
    for i in reversed(range(depth)):
        out += f"--b{i}--\n"
    return out.encode()


def test_nesting_within_limit() -> None:
    p = parse(nested(10))
    assert p.text == "deep text"
    assert p.defects == ()


def test_nesting_depth_limit() -> None:
    p = parse(nested(15))
    assert p.text == ""
    assert any(d.startswith("nesting too deep") for d in p.defects)
    assert parse(nested(15), ParseLimits(max_depth=20)).text == "deep text"


@pytest.mark.parametrize("depth", [1000, 5000])
def test_pathological_nesting_is_bounded(depth: int) -> None:
    start = time.perf_counter()
    p = parse(nested(depth))
    assert time.perf_counter() - start < 2.0
    assert p.subject == "deep"
    assert any("nesting" in d for d in p.defects)


def test_part_count_limit() -> None:
    parts = ["Content-Type: text/plain\n\nbody"] + [
        f"Content-Type: application/octet-stream\n\nblob {i}" for i in range(300)
    ]
    p = parse(multipart_with(*parts))
    assert p.text == "body"
    assert len(p.attachments) == 198  # 200 parts: the root, the body, 198 attachments
    assert "too many parts: kept first 200" in p.defects
    small = parse(multipart_with(*parts), ParseLimits(max_parts=5))
    assert len(small.attachments) == 3
    assert "too many parts: kept first 5" in small.defects


def test_many_parts_are_not_all_handed_to_the_parser() -> None:
    parts = ["Content-Type: text/plain\n\nbody"] + ["\nx"] * 20000
    start = time.perf_counter()
    p = parse(multipart_with(*parts))
    assert time.perf_counter() - start < 2.0
    assert p.text == "body"
    assert "more than 200 parts: the rest not parsed" in p.defects


def test_header_block_line_cap() -> None:
    raw = b"From: a@example.org\n" + b"X-Noise: v\n" * 20000 + b"Subject: late\n\nthe body\n"
    p = parse(raw)
    assert p.from_addr == "a@example.org"
    assert p.subject == ""  # beyond the first 10,000 header lines
    assert p.text == "the body\n"
    assert len(p.header_all("x-noise")) == 9999
    assert any(d.startswith("header block longer than 10000 lines") for d in p.defects)


def test_total_line_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prescan, "MIN_LINE_CAP", 100)
    raw = b"From: a@example.org\n\n" + b"line\n" * 1000
    p = parse(raw, ParseLimits(max_bytes=len(raw)))  # cap: max(100, 5021 // 50) = 100 lines
    assert p.text == "line\n" * 98
    assert "more than 100 lines: the rest not parsed" in p.defects


def test_huge_header_values_are_truncated() -> None:
    raw = b"From: a@example.org\nTo: " + b"x@example.org, " * 10000 + b"\nSubject: s\n\nx"
    p = parse(raw)
    assert len(p.header("to")) == 65536
    assert 1 <= len(p.to) <= 4400
    assert any(d.startswith("header to longer than 65536 chars") for d in p.defects)


def test_size_limit_rejects() -> None:
    raw = mail(PLAIN)
    with pytest.raises(ParseRejected) as err:
        parse(raw, ParseLimits(max_bytes=len(raw) - 1))
    assert "too large" in err.value.reason
    assert parse(raw, ParseLimits(max_bytes=len(raw))).subject == "Printer on fire"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"\n\n \r\n\t\n", "only blank lines"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "OLE"),
        (bytes(range(256)) * 4, "no header block"),
        (b"Hello,\nthis is just text: no headers\n", "no header block"),
        (b"<html><body>Hi</body></html>\n", "no header block"),
        (b"From someone Mon Feb  8 02:00:00 2026\nnot a header\n", "no header block"),
        ("not bytes", "expected bytes"),
    ],
)
def test_rejected_inputs(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseRejected) as err:
        parse(raw)
    assert reason in err.value.reason


def test_accepted_oddities() -> None:
    mbox = parse(b"From someone Mon Feb  8 02:00:00 2026\nSubject: mbox\n\nx\n")
    assert mbox.subject == "mbox"
    lead = parse(b"\xef\xbb\xbf   \n\r\nSubject: after blank lines\n\nx\n")
    assert lead.subject == "after blank lines"
    assert any("leading bytes" in d for d in lead.defects)
    assert parse(bytearray(b"Subject: ba\n\nx")).subject == "ba"
    headers_only = parse(b"Subject: no body")
    assert (headers_only.subject, headers_only.text) == ("no body", "")


def test_stdlib_defects_are_recorded_with_location() -> None:
    raw = mail(
        """
        From: a@example.org
        Content-Type: multipart/mixed; boundary="never"

        no boundary ever appears
        """
    )
    p = parse(raw)
    assert any(d.startswith("StartBoundaryNotFoundDefect in message") for d in p.defects)


# --------------------------------------------------------------------------- robustness


def test_mail_parser_fallback_when_walk_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: object, root: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(mime.Body, "walk", broken)
    p = parse(mail(ALTERNATIVE))
    assert p.subject == "alt"
    assert p.text.startswith("Plain version")
    assert any(
        "body walk failed (RuntimeError: simulated bug); used mail-parser" in d for d in p.defects
    )


def test_header_stage_failure_keeps_body(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(msg: object, defects: object) -> object:
        raise ValueError("simulated")

    monkeypatch.setattr(message_module, "read_envelope", broken)
    p = parse(mail(PLAIN))
    assert p.subject == "" and p.headers == ()
    assert p.text.startswith("Hello")
    assert any(d.startswith("headers not decoded") for d in p.defects)


def _mutations(seed_messages: list[bytes], count: int) -> list[bytes]:
    """Deterministic truncations and byte flips of well-formed messages."""
    rng = random.Random(20260302)
    out = []
    for raw in seed_messages:
        for cut in range(0, len(raw), max(1, len(raw) // 25)):
            out.append(raw[:cut])
        for _ in range(count):
            data = bytearray(raw)
            for _ in range(rng.randint(1, 12)):
                pos = rng.randrange(len(data))
                data[pos] = rng.choice(b'\x00\r\n:;=?"<>\\-\xff\xc3 abcB')
            out.append(bytes(data))
    return out


def test_never_raises_anything_but_parse_rejected() -> None:
    seeds = [
        mail(PLAIN),
        mail(ALTERNATIVE, "\r\n"),
        multipart_with(
            "Content-Type: text/plain\n\nb",
            "Content-Type: message/rfc822\n\nSubject: =?utf-8?q?x?=\n\nin",
            'Content-Type: image/png; name="a.png"\nContent-Transfer-Encoding: base64\n\niVBO',
        ),
        nested(14),
    ]
    for raw in _mutations(seeds, 150):
        try:
            p = parse(raw)
        except ParseRejected as exc:
            assert exc.reason
            continue
        assert isinstance(p, Parsed)
        for value in (p.text, p.html, p.subject, p.from_name, *(v for _, v in p.headers)):
            value.encode("utf-8")  # no lone surrogates: storable as UTF-8
            assert "\x00" not in value


# --------------------------------------------------------------------------- the real-world corpus


def corpus_manifest() -> list[dict[str, str]]:
    """Rows of tests/data/corpus/MANIFEST.tsv."""
    with (CORPUS / "MANIFEST.tsv").open(newline="") as fh:
        return [
            {k.strip(): (v or "").strip() for k, v in row.items()}
            for row in csv.DictReader(fh, delimiter="\t")
        ]


def test_corpus_copy_matches_manifest_and_licenses() -> None:
    rows = corpus_manifest()
    assert len(rows) == 163
    on_disk = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.eml"))
    assert on_disk == sorted(row["file"] for row in rows)
    for row in rows:
        assert row["license"] in ("Apache-2.0", "BSD-3-Clause", "MPL-2.0"), row
        assert not row["file"].split("/")[-1].startswith("rt__")
        data = (CORPUS / row["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"], row["file"]


def test_corpus_parses_or_is_rejected_with_reason() -> None:
    timings: list[tuple[float, str]] = []
    failures: list[str] = []
    rejected: dict[str, str] = {}
    for path in sorted(CORPUS.rglob("*.eml")):
        name = str(path.relative_to(CORPUS))
        raw = path.read_bytes()
        start = time.perf_counter()
        try:
            p = parse(raw)
            assert isinstance(p, Parsed)
            assert p.raw_sha256 == hashlib.sha256(raw).hexdigest()
        except ParseRejected as exc:
            if not exc.reason:
                failures.append(f"{name}: ParseRejected without a reason")
            rejected[name] = exc.reason
        except Exception as exc:  # the point of the test
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
        timings.append((time.perf_counter() - start, name))
    timings.sort(reverse=True)
    print(f"\nslowest: {timings[0][1]} {timings[0][0] * 1000:.1f} ms; rejected: {rejected}")
    assert not failures, failures
    too_slow = [(name, round(t, 3)) for t, name in timings if t >= 2.0]
    assert not too_slow, too_slow
    assert set(rejected) == {
        "malformed/mailparser__mail_outlook_1.eml",
        "malformed/deltachat__gmx-quote-body.eml",
    }


def corpus(name: str) -> Parsed:
    """Parse one corpus file."""
    return parse((CORPUS / name).read_bytes())


def test_corpus_outlook_msg_is_rejected() -> None:
    with pytest.raises(ParseRejected) as err:
        corpus("malformed/mailparser__mail_outlook_1.eml")
    assert "OLE" in err.value.reason


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        ("charset/djhelpdesk__quoted_printable.eml", "Český test"),
        ("charset/flanker__bilingual-simple.eml", "Simple text. How are you? Как ты поживаешь?"),
        ("charset/mailparser__mail_test_5.eml", "Je prépare mon été zéro complexe !"),
        ("charset/djhelpdesk__all-special-chars.eml", "Testovácí email"),
        ("malformed/mailparser__mail_test_12.eml", "代开各地增值税发票"),
        ("charset/deltachat__mailinglist_ttline.eml", "Unsere Sommerangebote an Bord ⚓"),
    ],
)
def test_corpus_known_subjects(name: str, subject: str) -> None:
    assert corpus(name).subject == subject


def test_corpus_known_facts() -> None:
    iso = corpus("charset/deltachat__text_plain_iso88591.eml")
    assert iso.text == "message with a non-UTF-8 encoding: äöüßÄÖÜ\n"

    latin_from = corpus("malformed/flanker__from-encoding.eml")
    assert latin_from.from_name == "Ingo Lütkebohle"

    endless = corpus("malformed/flanker__enclosed-endless.eml")
    assert endless.text == "Hello\n"
    assert [(a.filename, a.content_type) for a in endless.attachments] == [
        ("thanks.eml", "message/rfc822")
    ]

    ndn = corpus("bounces_autoreplies/deltachat__gmail_ndn.eml")
    assert ndn.return_path == ""
    assert ndn.from_addr == "mailer-daemon@googlemail.com"

    encrypted = corpus("pgp/deltachat__thunderbird_encrypted_signed.eml")
    assert [a.content_type for a in encrypted.attachments] == [
        "application/pgp-encrypted",
        "application/octet-stream",
    ]
    assert encrypted.attachments[1].data.startswith(b"-----BEGIN PGP MESSAGE-----")

    russian = corpus("malformed/flanker__russian-attachment-yahoo.eml")
    assert russian.attachments[0].filename.startswith("Картинка с очень, очень длинным")

    html_only = corpus("plain/deltachat__gmx-quote.eml")
    assert html_only.text.startswith("YIPPEEEEEE")
    assert "<div" not in html_only.text and "&nbsp;" not in html_only.text
