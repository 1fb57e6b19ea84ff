"""HTML mail both ways, over real sockets: the daemon, the relay sink, the database.

An agent answers an HTML notification from Outlook (desktop and web), Gmail, Apple Mail
and Thunderbird (tests/reply_clients.py's layouts) with a command line on top, an inline
image in the answer and the notification's own image quoted below: the customer gets the
answer as text and sanitised HTML (multipart/related), the answer's image shown by cid:,
no quote, no marker, no command, no quoted image. An inline answer (author lines between
quotes) falls back to the text answer. A customer's HTML mail reaches the agents without
its quoted history; scripts, handlers and remote images never pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

import pytest

from tests import reply_clients as clients
from tests.harness import running, tickets, wait_until
from tests.integration.test_agents import Desk, agents_config, text_of
from tests.servers import SmtpSink

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 300
QUOTED_PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 300
ANSWER_IMAGE = '<p><img src="cid:fix1@example.test" alt="where"></p>'


@pytest.fixture
def desk(tmp_path, smtp_sink: SmtpSink) -> Iterator[Desk]:
    cfg = agents_config(tmp_path, smtp_sink)
    with running(cfg) as d:
        yield Desk(d, smtp_sink, cfg)


def _ticket(desk: Desk, html: str, subject: str) -> int:
    m = EmailMessage()
    m["From"] = "Carla Customer <customer@example.com>"
    m["To"] = "support@example.test"
    m["Subject"] = subject
    m["Date"] = format_datetime(datetime.now(UTC))
    m["Message-ID"] = make_msgid(domain="example.com")
    m.set_content("Hello,\nthe printer is broken, see the screenshot.\n")
    m.add_alternative(html, subtype="html")
    m.get_payload()[1].add_related(
        QUOTED_PNG, "image", "png", cid="<shot1@example.com>", filename="shot.png"
    )
    before = len(tickets(desk.d.engine))
    desk.d.send(m.as_bytes(policy=SMTP), rcpts=["support@example.test"])
    wait_until(lambda: len(tickets(desk.d.engine)) > before)
    tid = tickets(desk.d.engine)[-1].id
    desk.wait_mail("bob@example.test", f"[support #{tid}] New")
    return tid


def _agent_html(desk: Desk, tid: int, html: str, plain: str = "") -> None:
    to = desk.address("bob", tid)
    m = clients.agent_mime(to, plain or "x")
    if plain:
        m.add_alternative(html, subtype="html")
        part = m.get_payload()[1]
    else:
        m.set_content(html, subtype="html")
        part = m
    part.add_related(PNG, "image", "png", cid="<fix1@example.test>", filename="fix.png")
    part.add_related(QUOTED_PNG, "image", "png", cid="<shot1@example.com>", filename="shot.png")
    desk.d.send(m.as_bytes(policy=SMTP), rcpts=[to], sender="bob@example.test")


def _answer(desk: Desk, tid: int) -> EmailMessage:
    def found() -> list[EmailMessage]:
        return [
            c.message
            for c in desk.sink.messages
            if "customer@example.com" in c.rcpt_tos
            and f"#{tid}]" in str(c.message["Subject"])
            and c.message["Auto-Submitted"] == "no"
        ]

    return wait_until(found, 30, f"the answer on #{tid}")[0]


def _with_image_and_command(client: str) -> str:
    html = clients.HTML_REPLIES[client]
    html = html.replace("<p>Hello Carla,</p>", "<div>#tag +printer</div><p>Hello Carla,</p>", 1)
    html = html.replace("off and on again.</p>", "off and on again.</p>" + ANSWER_IMAGE, 1)
    return html.replace("<p>Ticket #12</p>", '<p>Ticket #12 <img src="cid:shot1@example.com"></p>')


GMAIL_PLAIN = (
    "#tag +printer\n\nHello Carla,\n\nplease switch it off and on again.\n\n[image: where]\n\n"
    "Best regards,\nBob\n\nOn Tue, 1 Dec 2026 at 10:00, Example Support wrote:\n"
    "> ##- Reply above this line: command lines first, then your answer -##\n> Ticket #12\n"
)


@pytest.mark.parametrize("client", list(clients.HTML_REPLIES))
def test_an_html_answer_reaches_the_customer_with_its_inline_image(desk: Desk, client: str):
    tid = _ticket(desk, '<p>Hello, <img src="cid:shot1@example.com"></p>', f"Broken {client}")
    plain = GMAIL_PLAIN.replace("[image: where]\n\n", "") if client == "gmail" else ""
    _agent_html(desk, tid, _with_image_and_command(client), plain)
    m = _answer(desk, tid)
    wait_until(lambda: desk.tags(tid) == {"printer"}, 30, "the command")
    html = m.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = text_of(m)
    for part in (html, text):
        assert "please switch it off and on again." in part
        assert "Ticket #12" not in part and "Reply above" not in part.replace("\n", " ")
        assert "#tag" not in part and "wrote" not in part and "support@example.test" not in part
        assert "+t" not in part  # no token
    assert '<img src="cid:fix1@example.test" alt="where">' in html
    assert "cid:shot1" not in html
    related = next(p for p in m.walk() if p.get_content_type() == "multipart/related")
    images = [p for p in related.iter_parts() if p.get_content_maintype() == "image"]
    assert [(p["Content-ID"], p.get_content()) for p in images] == [("<fix1@example.test>", PNG)]
    assert not [p for p in m.walk() if p.get_filename() == "shot.png"]  # the quoted image
    assert text.count("Bob") == html.count("Bob") == 2  # "Bob Example" footer + sign-off


def test_an_inline_html_answer_falls_back_to_the_text_answer(desk: Desk):
    tid = _ticket(desk, "<p>Hello</p>", "Inline answer")
    html = (
        "<div>First point, fixed.</div><blockquote><p>Your first question</p></blockquote>"
        "<div>Second point, fixed too.</div><blockquote><p>Your second question</p></blockquote>"
    )
    _agent_html(desk, tid, html)
    m = _answer(desk, tid)
    assert not [p for p in m.walk() if p.get_content_type() == "text/html"]
    text = text_of(m)
    assert "First point, fixed." in text and "Second point, fixed too." in text
    assert "question" not in text


def test_a_customers_html_reaches_agents_without_quotes_scripts_or_remote_images(desk: Desk):
    customer_html = (
        '<div dir="ltr"><p onclick="steal()">The printer smokes <b>again</b>.'
        '<img src="cid:shot1@example.com"><img src="https://tracker.example/p.gif">'
        "<script>alert(1)</script></p></div>"
        '<div class="gmail_quote">On Monday Support wrote:<blockquote class="gmail_quote">'
        "<p>Old answer from us</p></blockquote></div>"
    )
    tid = _ticket(desk, customer_html, "Smoke")
    (m,) = desk.wait_mail("bob@example.test", f"[support #{tid}] New")
    html = m.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "The printer smokes <b>again</b>." in html
    assert '<img src="cid:shot1@example.com">' in html
    for bad in ("onclick", "<script", "alert(1)", "tracker.example", "Old answer from us"):
        assert bad not in html.split("<hr>")[0], bad  # the customer's part (history below)
    related = next(p for p in m.walk() if p.get_content_type() == "multipart/related")
    (image,) = [p for p in related.iter_parts() if p.get_content_maintype() == "image"]
    assert image["Content-ID"] == "<shot1@example.com>" and image.get_content() == QUOTED_PNG
