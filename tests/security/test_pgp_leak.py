"""Decrypted PGP content is agent-only (docs/pgp.md): a canary sent encrypted never leaves in clear.

A realistic flow through the real SMTP listener, the worker, the agent path and the sender
against an SMTP sink, with the committed fixture keys and the real gpg:

1. the customer mails the canary to support@ (a queue with [pgp]): inline-encrypted and
   signed, plus an encrypted attachment holding it too;
2. the ack goes out (encrypted to the customer), the agents are notified;
3. the customer replies to the ack, quoting it and their own ciphertext;
4. the agent answers by replying to the notification (quoting it);
5. someone else mails the same ciphertext in (a replay);
6. the agent asks for the secret (`secret_for_agent`, what `#secret N` calls).

Then every outbox row and every message the sink got is scanned for the canary in every
encoding (tests/security/leakscan.py). The test also proves the canary was really
decrypted and stored (so the scan had something to miss) and that the scanner sees it in
each encoding.
"""

from __future__ import annotations

import base64
import email
import quopri
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP, default
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path

import gnupg
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.db.models import Article, OutboxRow, pgp_secrets
from mailgate.pgp.keyring import Keyring
from mailgate.pgp.opener import open_message
from mailgate.pgp.secrets import secret_for_agent, secrets_of
from mailgate.store.articles import attachments, blobs
from mailgate.store.outbox import add_outbox
from tests.harness import load, message, outbox, running, tickets, wait_until, write_config
from tests.pgp_keys import FPR
from tests.security.leakscan import assert_no_canary, canary_forms, find_canary
from tests.servers import SmtpSink

CANARY = "CANARY-4f1d2c9e-Zebra-Quartz-7731-secret"
FILE_CANARY = "FILECANARY-8b3e-Walrus-Ladder-0042-bytes"
AGENTS = f"""[[agents]]
name = "alice"
address = "alice@example.test"
full_name = "Alice Example"
signature = "Alice"
queues = ["support"]
tier = "L2"
role = "admin"
pgp_fingerprint = "{FPR["agent"]}"
"""


def test_the_scanner_finds_every_encoding() -> None:
    plain = CANARY.encode()
    for shift in range(3):
        wrapped = base64.encodebytes(b"x" * shift + plain + b" tail")  # 76-column lines
        assert find_canary(b"Content-Transfer-Encoding: base64\r\n\r\n" + wrapped, CANARY)
    qp = quopri.encodestring(("caf\u00e9 " * 20 + CANARY).encode("utf-8"))
    assert b"=\n" in qp and plain not in qp  # a soft break runs through the canary
    assert "quoted-printable" in find_canary(qp, CANARY)
    assert find_canary(b"Subject: =?utf-8?b?" + base64.b64encode(plain) + b"?=\r\n\r\n", CANARY)
    assert not find_canary(b"Subject: nothing\r\n\r\nhere\r\n", CANARY)
    assert set(canary_forms(CANARY)) >= {"plain", "quoted-printable", "base64/0"}


def _customer_mail(gpg: gnupg.GPG) -> bytes:
    armored = gpg.encrypt(
        CANARY.encode(), FPR["queue"], armor=True, always_trust=True, sign=FPR["customer"]
    )
    enc_file = gpg.encrypt(FILE_CANARY.encode(), FPR["queue"], armor=False, always_trust=True)
    assert armored.ok and enc_file.ok
    msg = EmailMessage()
    msg["From"] = "Carla Customer <customer@example.com>"
    msg["To"] = "support@example.test"
    msg["Subject"] = "Server credentials"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = "<leak-1@example.com>"
    msg.set_content(f"Hello,\nthe root password is below.\n\n{armored}\n\nThanks, Carla\n")
    msg.add_attachment(
        enc_file.data, maintype="application", subtype="octet-stream", filename="creds.txt.gpg"
    )
    return msg.as_bytes(policy=SMTP)


def test_an_encrypted_canary_never_leaves_in_clear(
    tmp_path: Path, homes: Callable[..., Path], smtp_sink: SmtpSink
) -> None:
    queue_home = homes("queue.sec.asc", "customer.pub.asc", "agent.pub.asc")
    customer = gnupg.GPG(gnupghome=str(homes("customer.sec.asc", "queue.pub.asc")))
    pgp = (
        f'[pgp]\ngnupg_home = "{queue_home}"\nkey = "{FPR["queue"]}"\n'
        "sign_outgoing = true\npublish_key_hint = true\n"
        "\n[agent_mail]\nnotify = true\n"
    )
    cfg = load(
        write_config(
            tmp_path,
            relay_port=smtp_sink.port,
            queue_extra={"support": pgp},
            agents_toml=AGENTS,
        )
    )
    with running(cfg) as d:
        engine = d.engine
        # 1-2: the customer's encrypted mail; the ack and alice's notification go out
        first = _customer_mail(customer)
        d.send(first)
        wait_until(lambda: len(smtp_sink.messages) >= 2)
        by_rcpt = {m.rcpt_tos[0]: m for m in smtp_sink.messages}
        ack = email.message_from_bytes(by_rcpt["customer@example.com"].data, policy=default)
        note = email.message_from_bytes(by_rcpt["alice@example.test"].data, policy=default)
        assert ack.get_content_type() == "multipart/encrypted"  # we hold the customer's key

        # 3: the customer replies to the ack, quoting it and their own ciphertext
        body = first.decode().replace("\r\n", "\n").split("\n\n", 1)[1]
        quoted = "\n".join("> " + line for line in body.splitlines())
        reply = message(
            subject=f"Re: {ack['Subject']}",
            body=f"Did you get it? Here it is again:\n\n{quoted}\n",
            in_reply_to=ack["Message-ID"],
            references=f"<leak-1@example.com> {ack['Message-ID']}",
        )
        d.send(reply)

        # 4: alice answers the customer by replying to her notification
        reply_to = parseaddr(note["Reply-To"])[1]
        note_text = note.get_body(("plain",)).get_content()
        answer = message(
            sender="alice@example.test",
            name="Alice Example",
            to=reply_to,
            subject=f"Re: {note['Subject']}",
            message_id=make_msgid(domain="example.test"),
            body=(
                "Thanks Carla, we have reset the account as you asked.\n\n"
                + "\n".join("> " + line for line in note_text.splitlines())
                + "\n"
            ),
        )
        d.send(answer, rcpts=[reply_to], sender="alice@example.test")

        # 5: someone else mails the same ciphertext in
        armored = first.decode().split("-----BEGIN PGP MESSAGE-----", 1)[1]
        armored = "-----BEGIN PGP MESSAGE-----" + armored.split("-----END PGP MESSAGE-----")[0]
        replay = message(
            sender="mallory@example.net",
            name="Mallory",
            subject="please decrypt this for me",
            body=f"What does this say? Quote it back please.\n{armored}-----END PGP MESSAGE-----\n",
        )
        d.send(replay, sender="mallory@example.net")

        def settled() -> bool:
            rows = outbox(engine)
            kinds = [o.kind for o in rows]
            done = all(o.status != "pending" for o in rows)
            return done and "answer" in kinds and kinds.count("ack") >= 2

        wait_until(settled, timeout=30)

        # 6: alice asks for the secret (what `#secret 1` does); queued like any agent mail
        alice = cfg.agent("alice")
        assert alice is not None
        now = datetime.now(UTC)
        with engine.begin() as conn:
            out = secret_for_agent(conn, cfg, 1, alice, now, d.daemon.keyrings, cause="leak-test")
            assert not isinstance(out, str), out
            assert add_outbox(conn, out, now, now + timedelta(hours=1))
        wait_until(lambda: all(o.status != "pending" for o in outbox(engine)), timeout=30)

    rows = outbox(engine)
    assert all(o.status == "sent" for o in rows), [(o.kind, o.last_error) for o in rows]
    kinds = sorted(o.kind for o in rows)
    assert {"ack", "answer", "secret"} <= set(kinds), kinds
    assert any(k.startswith("notify-") for k in kinds), kinds

    # the canary was really decrypted and stored (agent-only) ...
    with Session(engine) as s:
        stored = [r.text for r in s.execute(select(pgp_secrets)).all()]
        articles = list(s.scalars(select(Article)))
        raws = [(f"outbox {o.kind} {o.message_id}", o.raw) for o in s.scalars(select(OutboxRow))]
    assert CANARY in stored
    first_ticket = tickets(engine)[0]
    inbound = [a for a in first_ticket.articles if a.kind == "inbound"]
    assert len(inbound) == 2  # the customer's reply joined the ticket
    # ... the decrypted file is an agent-only attachment
    with Session(engine) as s:
        agent_only = s.execute(
            select(blobs.c.data)
            .join(attachments, attachments.c.blob_sha256 == blobs.c.sha256)
            .where(attachments.c.agent_only.is_(True))
        ).scalars()
        assert FILE_CANARY.encode() in list(agent_only)
    # ... but is in no article body, no outbox row, no delivered message, in no encoding
    assert_no_canary([(f"article {a.id}", a.body_text.encode()) for a in articles], CANARY)
    sent = [(f"sink to {m.rcpt_tos}", m.data) for m in smtp_sink.messages]
    for canary in (CANARY, FILE_CANARY):
        assert_no_canary(raws, canary)
        assert_no_canary(sent, canary)

    # the replay got no plaintext; mallory's ticket is separate
    mallory = next(t for t in tickets(engine) if t.requester_addr == "mallory@example.net")
    with engine.connect() as conn:
        (replayed,) = secrets_of(conn, mallory.id)
    assert not replayed.ok and replayed.reason.startswith("replayed")

    # the secret mail reached alice encrypted to her key, and she can read it
    secret_mail = next(m for m in smtp_sink.messages if b"Secured information" in m.data)
    side = Keyring(homes("agent.sec.asc", "queue.pub.asc"))
    (part,) = open_message(secret_mail.data, "", side, "support@example.test").secrets
    assert part.ok and CANARY in part.text
    assert any(data == FILE_CANARY.encode() for _, _, data in part.attachments)
