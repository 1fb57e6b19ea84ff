"""Feedback that never leaves an agent guessing (issue 12, item 5), over real sockets.

- an agent writing to support@ (the visible From) instead of the Reply-To: kept as a
  note, one notice an hour, nothing to the customer, no "customer replied";
- a refused command mail: kept cleaned, the transcript quotes the text to resend;
- an agent mail encrypted to the queue key: nothing to the customer, the agent told why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import gnupg
import pytest

from tests import reply_clients as clients
from tests.harness import message, running, wait_until
from tests.integration.test_agents import Desk, agents_config, text_of
from tests.pgp_keys import FPR
from tests.servers import SmtpSink


@pytest.fixture
def desk(tmp_path, smtp_sink: SmtpSink) -> Iterator[Desk]:
    cfg = agents_config(tmp_path, smtp_sink)
    with running(cfg) as d:
        yield Desk(d, smtp_sink, cfg)


def _to_customer(desk: Desk, tid: int) -> list[EmailMessage]:
    return [
        m.message
        for m in desk.sink.messages
        if "customer@example.com" in m.rcpt_tos
        and f"#{tid}]" in str(m.message["Subject"])
        and m.message["Auto-Submitted"] == "no"
    ]


def test_an_agent_writing_to_support_directly_gets_one_notice_and_the_customer_nothing(
    desk: Desk,
):
    t, _ = desk.new_ticket(subject="Printer is broken")
    (note,) = desk.wait_mail("bob@example.test", f"[support #{t.id}] New")
    desk.wait_mail("alice@example.test", f"[support #{t.id}] New")
    quoted = clients.gmail("Hello Carla, it is fixed.", text_of(note))
    for n in (1, 2):  # the second, within the hour, gets no second notice
        desk.d.send(
            message(
                sender="bob@example.test",
                name="Bob Example",
                to="support@example.test",
                subject=f"Re: {note['Subject']}",
                body=quoted,
                in_reply_to=str(note["Message-ID"]),
            ),
            rcpts=["support@example.test"],
            sender="bob@example.test",
        )
        wait_until(lambda n=n: len(desk.articles(t.id, "note")) == n)
    (notice,) = desk.wait_mail("bob@example.test", "Not applied")
    text = text_of(notice)
    assert "carried no reply address of yours" in text and f"ticket #{t.id}" in text
    assert notice["Reply-To"] == desk.address("bob", t.id)  # replying to it works
    kept = desk.articles(t.id, "note")[0].body_text
    assert kept == "Hello Carla, it is fixed."  # cleaned: no quote, no token
    assert not _to_customer(desk, t.id)
    assert not desk.mails(lambda m: "Customer reply" in str(m.message["Subject"]))
    assert len(desk.mails(lambda m: "Not applied" in str(m.message["Subject"]))) == 1
    assert not desk.articles(t.id, "inbound")[1:]  # never stored as a customer reply


def test_a_refused_command_mail_is_kept_cleaned_and_the_transcript_quotes_the_text(
    desk: Desk,
):
    t, _ = desk.new_ticket(subject="Printer is broken")
    (note,) = desk.wait_mail("bob@example.test", f"[support #{t.id}] New")
    body = clients.gmail("#bogus\n\nHello Carla,\nplease restart it.", text_of(note))
    desk.agent("bob", t.id, body)
    (err,) = desk.wait_mail("bob@example.test", "Not applied")
    text = text_of(err)
    assert "> Hello Carla,\n> please restart it." in text
    (kept,) = desk.articles(t.id, "note")
    assert kept.body_text == "#bogus\n\nHello Carla,\nplease restart it."
    assert "support+" not in kept.body_text and "Reply above" not in kept.body_text
    assert not _to_customer(desk, t.id)


def test_an_encrypted_agent_mail_sends_the_customer_nothing(
    tmp_path: Path, homes: Callable[..., Path], smtp_sink: SmtpSink
):
    queue_home = homes("queue.sec.asc", "customer.pub.asc", "agent.pub.asc")
    agent_gpg = gnupg.GPG(gnupghome=str(homes("agent.sec.asc", "queue.pub.asc")))
    pgp = f'\n[pgp]\ngnupg_home = "{queue_home}"\nkey = "{FPR["queue"]}"\n'
    cfg = agents_config(tmp_path, smtp_sink, pgp)  # every queue: the same queue key
    with running(cfg) as d:
        desk = Desk(d, smtp_sink, cfg)
        t, _ = desk.new_ticket(subject="Printer is broken")
        desk.wait_mail("bob@example.test", f"[support #{t.id}] New")
        armored = agent_gpg.encrypt(
            "Hello Carla, the fix is below.", FPR["queue"], armor=True, always_trust=True
        )
        assert armored.ok
        to = desk.address("bob", t.id)
        m = clients.agent_mime(to, str(armored))
        d.send(m.as_bytes(policy=SMTP), rcpts=[to], sender="bob@example.test")
        (err,) = desk.wait_mail("bob@example.test", "Not applied")
        assert "the mail is encrypted" in text_of(err) and "nothing was sent" in text_of(err)
        assert not _to_customer(desk, t.id)
        assert not desk.articles(t.id, "outbound")
