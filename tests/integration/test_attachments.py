"""Attachments both ways, over real sockets: the daemon, the relay sink, the database.

A customer's PDF and inline image reach the agents' notification (listed, carried, the
image with its Content-ID); over the queue's cap they are listed and `#attachment N`
fetches one; `mailgate attachments list|get` serve admins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

import pytest

from mailgate.cli.main import main as cli_main
from tests import reply_clients as clients
from tests.harness import running, tickets, wait_until
from tests.integration.test_agents import Desk, agents_config, text_of
from tests.servers import SmtpSink

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40  # 10 KiB and a bit
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 500


def customer_mail_with_files() -> bytes:
    m = EmailMessage()
    m["From"] = "Carla Customer <customer@example.com>"
    m["To"] = "support@example.test"
    m["Subject"] = "Invoice is wrong"
    m["Date"] = format_datetime(datetime.now(UTC))
    m["Message-ID"] = make_msgid(domain="example.com")
    m.set_content("Hello,\nthe invoice is attached, and a screenshot.\n")
    m.add_alternative(
        '<p>Hello,<br>the invoice, and <img src="cid:shot1@example.com"></p>', subtype="html"
    )
    html = m.get_payload()[1]
    html.add_related(PNG, "image", "png", cid="<shot1@example.com>", filename="shot.png")
    m.add_attachment(PDF, "application", "pdf", filename="Rechnung 2026-11.pdf")
    return m.as_bytes(policy=SMTP)


def _desk(tmp_path, sink: SmtpSink, extra: str = "") -> Iterator[Desk]:
    cfg = agents_config(tmp_path, sink, extra)
    with running(cfg) as d:
        yield Desk(d, sink, cfg)


@pytest.fixture
def desk(tmp_path, smtp_sink: SmtpSink) -> Iterator[Desk]:
    yield from _desk(tmp_path, smtp_sink)


@pytest.fixture
def small_cap_desk(tmp_path, smtp_sink: SmtpSink) -> Iterator[Desk]:
    yield from _desk(tmp_path, smtp_sink, "attachments_max_bytes = 2000\n")


def _new_ticket(desk: Desk) -> int:
    before = len(tickets(desk.d.engine))
    desk.d.send(customer_mail_with_files(), rcpts=["support@example.test"])
    wait_until(lambda: len(tickets(desk.d.engine)) > before)
    return tickets(desk.d.engine)[-1].id


def test_notification_lists_and_carries_a_pdf_and_an_inline_image(desk: Desk):
    tid = _new_ticket(desk)
    (m,) = desk.wait_mail("bob@example.test", f"[support #{tid}] New")
    # mixed(related(alternative(text, html), image), pdf): the HTML part shows the image
    assert m.get_content_type() == "multipart/mixed"
    files = {p.get_filename(): p for p in m.walk() if p.get_filename()}
    assert files["Rechnung 2026-11.pdf"].get_content() == PDF
    assert files["shot.png"].get_content() == PNG
    assert files["shot.png"]["Content-ID"] == "<shot1@example.com>"
    related = next(p for p in m.walk() if p.get_content_type() == "multipart/related")
    assert files["shot.png"] in related.get_payload()
    html = m.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert '<img src="cid:shot1@example.com">' in html
    assert html.index("Reply above this line") < html.index("cid:shot1")
    body = text_of(m.get_body(("plain",)))  # type: ignore[arg-type]
    assert "Rechnung 2026-11.pdf (application/pdf, 10.0 KiB) - attached" in body
    assert "shot.png (image/png, 508 bytes) - attached" in body


def test_over_the_cap_the_notification_lists_and_attachment_n_fetches(small_cap_desk: Desk):
    desk = small_cap_desk
    tid = _new_ticket(desk)
    (m,) = desk.wait_mail("bob@example.test", f"[support #{tid}] New")
    assert [p.get_filename() for p in m.iter_attachments()] == ["shot.png"]  # 508 B fits
    body = text_of(m.get_body(("plain",)))  # type: ignore[arg-type]
    line = next(s for s in body.split("\n") if "Rechnung" in s)
    assert "not attached (over the size cap): reply #attachment" in line
    number = int(line.split("[", 1)[1].split("]", 1)[0])
    desk.agent("bob", tid, f"#attachment {number}\n")
    (got,) = desk.wait_mail("bob@example.test", f"Attachment [{number}]")
    (pdf,) = list(got.iter_attachments())
    assert pdf.get_filename() == "Rechnung 2026-11.pdf" and pdf.get_content() == PDF
    # carol (billing only) may not fetch it: the same answer as for no such attachment
    desk.agent("carol", 0, f"#attachment {number}\n", queue="billing")
    (res,) = desk.wait_mail("carol@example.test", "Done")
    assert f"#attachment {number}: no such attachment in your queues." in text_of(res)
    assert not desk.mails(
        lambda c: "carol@example.test" in c.rcpt_tos and "Attachment [" in str(c.message["Subject"])
    )


def test_admin_cli_lists_and_gets(desk: Desk, tmp_path, capsys):
    tid = _new_ticket(desk)
    config = str(tmp_path / "config" / "mailgate.toml")
    assert cli_main(["--config", config, "attachments", "list", str(tid)]) == 0
    listed = capsys.readouterr().out
    assert "Rechnung 2026-11.pdf" in listed and "shot1@example.com" in listed
    (pdf,) = [a for a in desk.ticket(tid).articles[0].attachments if a.filename.endswith(".pdf")]
    out = tmp_path / "out.pdf"
    assert cli_main(["--config", config, "attachments", "get", str(pdf.id), "-o", str(out)]) == 0
    assert out.read_bytes() == PDF
    assert cli_main(["--config", config, "attachments", "get", "999999"]) == 1


def agent_mail_with_file(desk: Desk, tid: int, body: str, name: str, data: bytes) -> None:
    to = desk.address("bob", tid)
    m = clients.agent_mime(to, body)
    m.add_attachment(data, "application", "pdf", filename=name)
    desk.d.send(m.as_bytes(policy=SMTP), rcpts=[to], sender="bob@example.test")


def _customer_mails(desk: Desk, subject_has: str) -> list[EmailMessage]:
    return [
        c.message
        for c in desk.sink.messages
        if "customer@example.com" in c.rcpt_tos and subject_has in str(c.message["Subject"])
    ]


def test_an_agents_attachment_reaches_the_customer_sanitised_and_stored(desk: Desk):
    tid = _new_ticket(desk)
    desk.wait_mail("bob@example.test", f"[support #{tid}] New")
    credit = b"%PDF-1.4 credit note\n" * 50
    agent_mail_with_file(
        desk, tid, "Here is the credit note.\n", "../../Gutschrift\u202e.pdf", credit
    )
    (answer,) = wait_until(
        lambda: [m for m in _customer_mails(desk, f"#{tid}]") if m["Auto-Submitted"] == "no"]
    )
    (part,) = list(answer.iter_attachments())
    assert part.get_filename() == "Gutschrift.pdf" and part.get_content() == credit
    assert "Here is the credit note." in text_of(answer.get_body(("plain",)))  # type: ignore[arg-type]
    (outbound,) = desk.articles(tid, "outbound")
    (stored,) = outbound.attachments
    assert stored.filename == "Gutschrift.pdf" and stored.size == len(credit)
    assert stored.blob_sha256 == hashlib.sha256(credit).hexdigest()


def test_an_answer_over_the_attachment_cap_sends_the_customer_nothing(tmp_path, smtp_sink):
    cfg_extra = "answer_attachments_max_bytes = 1000\n"
    for desk in _desk(tmp_path, smtp_sink, cfg_extra):
        tid = _new_ticket(desk)
        desk.wait_mail("bob@example.test", f"[support #{tid}] New")
        agent_mail_with_file(desk, tid, "Too big.\n", "big.pdf", b"x" * 5000)
        (err,) = desk.wait_mail("bob@example.test", "Not applied")
        assert "over this queue's cap of 1000 bytes: nothing was sent" in text_of(err)
        assert not [m for m in _customer_mails(desk, f"#{tid}]") if m["Auto-Submitted"] == "no"]
        assert not desk.articles(tid, "outbound")
