"""PGP through the whole mail path, with the committed fixture keys and the real gpg.

Each test gets fresh, short GnuPG homes under /tmp (the gpg-agent socket lives there):
the queue's (its secret key plus the public keys it knows) and the customer's own. Every
home's gpg-agent is killed and the home removed afterwards.
"""

from __future__ import annotations

import email
import hashlib
import io
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP, default
from pathlib import Path
from typing import Any

import gnupg
import pytest
from sqlalchemy import Engine, select

from mailgate.agents import tokens
from mailgate.cli import main as cli
from mailgate.cli import tickets as tickets_cli
from mailgate.config.errors import ConfigError
from mailgate.config.model import Config
from mailgate.db.models import Article, Attachment, AuditEvent, OutboxRow, pgp_secrets
from mailgate.outgoing.sender import Sender
from mailgate.pgp import incoming
from mailgate.pgp.armor import SECURED
from mailgate.pgp.checks import pgp_problems
from mailgate.pgp.keyring import Keyring, Keyrings
from mailgate.pgp.leaks import leaked_secret
from mailgate.pgp.opener import open_message
from mailgate.pgp.outgoing import ack_context
from mailgate.pgp.secrets import secret_for_agent
from mailgate.spool import Envelope
from mailgate.store.articles import blobs
from mailgate.store.outbox import add_outbox
from tests.harness import (
    load,
    message,
    offline,
    outbox,
    running,
    tickets,
    wait_until,
    write_config,
)
from tests.pgp_keys import FPR, KEYS
from tests.servers import SmtpSink

DATA = Path(__file__).resolve().parents[1] / "data"
CORPUS = DATA / "pgp_corpus"
SECRET = "Root password: hunter2-Zebra-42 for the DNS box, please fix."
OTHER = "Second block: the VPN key is Q7-walrus-Ladder-9."
SUPPORT = "support@example.test"
NOTIFY = "\n[agent_mail]\nnotify = true\n"
AGENTS = f"""[[agents]]
name = "alice"
address = "alice@example.test"
full_name = "Alice Example"
queues = ["support", "billing"]
tier = "L2"
role = "admin"
pgp_fingerprint = "{FPR["agent"]}"

[[agents]]
name = "bob"
address = "bob@example.test"
full_name = "Bob Example"
queues = ["sales"]
"""


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def queue_home(homes: Callable[..., Path]) -> Path:
    return homes("queue.sec.asc", "customer.pub.asc", "agent.pub.asc")


@pytest.fixture
def customer(homes: Callable[..., Path]) -> gnupg.GPG:
    """The customer's own gpg, the other end of the wire."""
    return gnupg.GPG(gnupghome=str(homes("customer.sec.asc", "queue.pub.asc")))


@pytest.fixture
def stranger(homes: Callable[..., Path]) -> gnupg.GPG:
    return gnupg.GPG(gnupghome=str(homes("stranger.sec.asc", "queue.pub.asc")))


def pgp_table(home: Path, **more: Any) -> str:
    lines = ["[pgp]", f'gnupg_home = "{home}"', f'key = "{FPR["queue"]}"']
    for k, v in more.items():
        lines.append(f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}")
    return "\n".join(lines) + "\n"


def make_config(tmp_path: Path, home: Path, relay_port: int | None = None, **more: Any) -> Config:
    more.setdefault("sign_outgoing", True)
    path = write_config(
        tmp_path,
        relay_port=relay_port,
        queue_extra={"support": pgp_table(home, **more) + NOTIFY},
        agents_toml=AGENTS,
    )
    return load(path)


def encrypt(gpg: gnupg.GPG, data: str | bytes, to: str, sign: str | None = None, **kw: Any) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    result = gpg.encrypt(raw, to, armor=True, always_trust=True, sign=sign, **kw)
    assert result.ok, result.stderr
    return str(result).strip()


def pgp_mime(armored: str, sender: str = "Carla Customer <customer@example.com>") -> bytes:
    """RFC 3156 multipart/encrypted, as Thunderbird sends it."""
    return (
        f"From: {sender}\r\nTo: {SUPPORT}\r\nSubject: ...\r\n"
        f"Message-ID: <pm-{hashlib.sha1(armored.encode()).hexdigest()[:8]}@example.com>\r\n"
        f"Date: {email.utils.format_datetime(datetime.now(UTC))}\r\n"
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


def deliver(cfg: Config, *raws: bytes, queue: str = "") -> Engine:
    engine, spool, worker = offline(cfg)
    for raw in raws:
        rcpt = f"{queue}@example.test" if queue else SUPPORT
        spool.put(raw, Envelope(source="smtp", rcpt_tos=(rcpt,), queue=queue))
        result = worker.drain()
        assert result.shunted == 0 and result.retried == 0, result
    return engine


def secrets(engine: Engine, ticket_id: int | None = None) -> list[Any]:
    with engine.connect() as conn:
        q = select(pgp_secrets).order_by(pgp_secrets.c.id)
        if ticket_id is not None:
            q = q.where(pgp_secrets.c.ticket_id == ticket_id)
        return list(conn.execute(q).all())


def attachments(engine: Engine, article_id: int) -> list[Attachment]:
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        rows = list(s.scalars(select(Attachment).where(Attachment.article_id == article_id)))
        s.expunge_all()
        return rows


def blob(engine: Engine, sha: str) -> bytes:
    with engine.connect() as conn:
        return conn.execute(select(blobs.c.data).where(blobs.c.sha256 == sha)).scalar()


def audits(engine: Engine, action: str) -> list[AuditEvent]:
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        s.expunge_all()
        return rows


def no_secret_outside(engine: Engine, *texts: str) -> None:
    """Decrypted text is nowhere but in pgp_secrets: not in articles, not in the outbox."""
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        bodies = [a.body_text + a.subject for a in s.scalars(select(Article))]
        raws = [o.raw for o in s.scalars(select(OutboxRow))]
    for text in texts:
        for piece in (text, text[:24], text[-24:]):
            assert not any(piece in b for b in bodies), piece
            assert not any(piece.encode() in r for r in raws), piece


def shown(engine: Engine, ticket_id: int) -> str:
    out = io.StringIO()
    tickets_cli.console.file = out
    try:
        assert tickets_cli.print_ticket(engine, ticket_id) == 0
    finally:
        tickets_cli.console.file = None  # type: ignore[assignment]
    return out.getvalue()


# --------------------------------------------------------------------------- config


def test_pgp_table_is_validated_with_file_key_and_reason(tmp_path: Path, queue_home: Path) -> None:
    cases = {
        'key = "ABCD"': "pgp.key: must be the queue key's full fingerprint",
        'colour = "red"': "pgp.colour: unknown key",
        'passphrase_env = "A"\npassphrase_file = "x"': "give only one of passphrase_file",
        'passphrase_env = "MG_SURELY_UNSET_VARIABLE"': "pgp.passphrase_env: $MG_SURELY_UNSET",
        'passphrase_file = "nope.txt"': "pgp.passphrase_file:",
    }
    for i, (extra, expect) in enumerate(cases.items()):
        root = tmp_path / str(i)
        table = pgp_table(queue_home)
        if extra.startswith("key"):
            table = table.replace(f'key = "{FPR["queue"]}"', extra)
        else:
            table += extra + "\n"
        path = write_config(root, queue_extra={"support": table})
        with pytest.raises(ConfigError) as e:
            load(path)
        problem = "\n".join(e.value.problems)
        assert expect in problem, problem
        assert str(root / "config" / "queues" / "support.toml") in problem
    path = write_config(tmp_path / "home", queue_extra={"support": "[pgp]\nkey = 'AB'\n"})
    with pytest.raises(ConfigError) as e:
        load(path)
    assert "pgp.gnupg_home: required key is missing" in "\n".join(e.value.problems)
    missing = write_config(
        tmp_path / "nohome", queue_extra={"support": pgp_table(Path("/nonexistent/gpg"))}
    )
    with pytest.raises(ConfigError, match="pgp.gnupg_home: /nonexistent/gpg is not a directory"):
        load(missing)


def test_check_keys_finds_a_missing_secret_key(tmp_path: Path, homes: Callable[..., Path]) -> None:
    public_only = homes("queue.pub.asc")
    cfg = load(write_config(tmp_path, queue_extra={"support": pgp_table(public_only)}))
    problems = pgp_problems(cfg)  # gpg's answer; the table itself loaded fine
    assert len(problems) == 1 and "pgp.key: the secret key of" in problems[0]


# --------------------------------------------------------------------------- incoming


def test_inline_block_is_secured_stored_apart_and_the_ack_is_encrypted(
    tmp_path: Path, queue_home: Path, customer: gnupg.GPG, smtp_sink: SmtpSink, keyrings: Keyrings
) -> None:
    cfg = make_config(tmp_path, queue_home, smtp_sink.port, publish_key_hint=True)
    armored = encrypt(customer, SECRET, FPR["queue"], sign=FPR["customer"])
    engine = deliver(cfg, message(body=f"Hello,\nmy login:\n{armored}\nthanks\n"))
    (t,) = tickets(engine)
    inbound, note = t.articles
    assert inbound.body_text == f"Hello,\nmy login:\n{SECURED}\nthanks\n"
    (row,) = secrets(engine)
    assert row.ok and row.text == SECRET and row.kind == "inline" and row.article_id == inbound.id
    assert row.signature["valid"] and row.signature["matches_from"]
    assert row.signature["fingerprint"] == FPR["customer"]
    assert blob(engine, row.ciphertext_sha256).strip() == armored.encode()
    # the signature covered the block only, not the text around it
    assert inbound.verdict["signature"] is None
    assert inbound.verdict["partial_signatures"][0]["valid"]
    assert inbound.verdict["pgp"]["decrypted"] == 1
    assert note.kind == "system" and "1 encrypted part(s)" in note.body_text
    assert SECRET not in note.body_text
    no_secret_outside(engine, SECRET)

    # the ack goes out PGP/MIME encrypted to the customer (signed by the queue)
    assert Sender(cfg, engine, keyrings=keyrings).send_due() == (
        2,
        0,
        0,
    )  # ack + alice's notification
    by_rcpt = {m.rcpt_tos[0]: m for m in smtp_sink.messages}
    ack = email.message_from_bytes(by_rcpt["customer@example.com"].data, policy=default)
    assert ack.get_content_type() == "multipart/encrypted"
    assert ack["Subject"] == "[support #1] Printer is broken"
    assert ack["Message-ID"] and ack["In-Reply-To"] and ack["Auto-Submitted"] == "auto-replied"
    side = Keyring(Path(customer.gnupghome))
    opened = open_message(by_rcpt["customer@example.com"].data, "", side, SUPPORT)
    (part,) = opened.secrets
    assert part.ok and "is now ticket support #1" in part.text
    assert opened.signature and opened.signature.valid
    assert opened.signature.fingerprint == FPR["queue"]
    # the notification to alice is not encrypted (no secret in it) and holds no secret
    notify = by_rcpt["alice@example.test"].data
    assert b"multipart/encrypted" not in notify and SECRET.encode() not in notify
    assert SECURED.encode() in notify


def test_multiple_inline_blocks(tmp_path: Path, queue_home: Path, customer: gnupg.GPG) -> None:
    cfg = make_config(tmp_path, queue_home)
    one = encrypt(customer, SECRET, FPR["queue"])
    two = encrypt(customer, OTHER, FPR["queue"])
    engine = deliver(cfg, message(body=f"first:\n{one}\nsecond:\n{two}\nbye\n"))
    (t,) = tickets(engine)
    assert t.articles[0].body_text == f"first:\n{SECURED}\nsecond:\n{SECURED}\nbye\n"
    rows = secrets(engine)
    assert [(r.seq, r.ok, r.text) for r in rows] == [(1, True, SECRET), (2, True, OTHER)]
    no_secret_outside(engine, SECRET, OTHER)


def test_pgp_mime_with_an_inner_attachment(
    tmp_path: Path, queue_home: Path, customer: gnupg.GPG
) -> None:
    cfg = make_config(tmp_path, queue_home)
    inner = EmailMessage()
    inner.set_content(SECRET + "\n")
    inner.add_attachment(
        b"\x00\x01id_rsa\xff", maintype="application", subtype="octet-stream", filename="id_rsa"
    )
    armored = encrypt(customer, inner.as_bytes(policy=SMTP), FPR["queue"], sign=FPR["customer"])
    engine = deliver(cfg, pgp_mime(armored))
    (t,) = tickets(engine)
    inbound = t.articles[0]
    assert inbound.body_text == SECURED
    assert inbound.verdict["signature"]["valid"] and inbound.verdict["signature"]["matches_from"]
    (row,) = secrets(engine)
    assert row.ok and row.kind == "pgp-mime" and row.text.strip() == SECRET
    (meta,) = row.attachments
    assert meta["filename"] == "id_rsa" and meta["size"] == 9
    files = {a.filename: a for a in attachments(engine, inbound.id)}
    assert files["id_rsa"].agent_only and blob(engine, meta["sha256"]) == b"\x00\x01id_rsa\xff"
    assert not any(a.agent_only for name, a in files.items() if name != "id_rsa")
    no_secret_outside(engine, SECRET)


def test_encrypted_attachment(tmp_path: Path, queue_home: Path, customer: gnupg.GPG) -> None:
    cfg = make_config(tmp_path, queue_home)
    pdf = b"%PDF-1.4 the signed contract \x00\xff"
    enc = customer.encrypt(pdf, FPR["queue"], armor=False, always_trust=True)
    assert enc.ok
    msg = EmailMessage()
    msg["From"] = "Carla Customer <customer@example.com>"
    msg["To"] = SUPPORT
    msg["Subject"] = "contract"
    msg["Message-ID"] = "<att-1@example.com>"
    msg["Date"] = email.utils.format_datetime(datetime.now(UTC))
    msg.set_content("The contract is attached, encrypted.\n")
    msg.add_attachment(
        enc.data, maintype="application", subtype="octet-stream", filename="contract.pdf.gpg"
    )
    engine = deliver(cfg, msg.as_bytes())
    (t,) = tickets(engine)
    inbound = t.articles[0]
    assert inbound.body_text == "The contract is attached, encrypted.\n"
    files = {a.filename: a for a in attachments(engine, inbound.id)}
    assert set(files) == {"contract.pdf.gpg", "contract.pdf"}
    assert not files["contract.pdf.gpg"].agent_only  # ciphertext, as sent
    assert (
        files["contract.pdf"].agent_only and blob(engine, files["contract.pdf"].blob_sha256) == pdf
    )
    (row,) = secrets(engine)
    assert row.ok and row.kind == "attachment" and row.source_name == "contract.pdf.gpg"


@pytest.mark.parametrize("case", ["valid", "tampered", "wrong-signer", "unknown-signer"])
def test_clearsigned_signatures(
    tmp_path: Path,
    homes: Callable[..., Path],
    customer: gnupg.GPG,
    stranger: gnupg.GPG,
    case: str,
) -> None:
    ring = ["queue.sec.asc", "customer.pub.asc"]
    if case == "wrong-signer":
        ring.append("stranger.pub.asc")
    cfg = make_config(tmp_path, homes(*ring))
    signer = stranger if case in ("wrong-signer", "unknown-signer") else customer
    keyid = FPR["stranger"] if signer is stranger else FPR["customer"]
    signed = str(signer.sign("Please close ticket 42.\n", keyid=keyid, clearsign=True))
    if case == "tampered":
        signed = signed.replace("ticket 42", "ticket 43")
    engine = deliver(cfg, message(body=signed))
    (t,) = tickets(engine)
    sig = t.articles[0].verdict["signature"]
    assert secrets(engine) == []
    assert len(t.articles) == 1  # signature only: no system note
    if case == "valid":
        assert sig["valid"] and sig["matches_from"] and sig["fingerprint"] == FPR["customer"]
    elif case == "tampered":
        assert not sig["valid"] and "bad signature" in sig["reason"]
    elif case == "wrong-signer":
        assert sig["valid"] and not sig["matches_from"]
        assert sig["signer_emails"] == ["stranger@example.org"]
    else:
        assert not sig["valid"] and "no public key" in sig["reason"]
    text = shown(engine, t.id)
    expect = {
        "valid": "valid, key " + FPR["customer"],
        "tampered": "NOT VALID (bad signature",
        "wrong-signer": "DOES NOT match From",
        "unknown-signer": "NOT VALID (no public key",
    }[case]
    assert expect in text, text


def test_encrypted_reply_threads_into_its_ticket(
    tmp_path: Path, queue_home: Path, customer: gnupg.GPG
) -> None:
    cfg = make_config(tmp_path, queue_home)
    first = message(body="My server is down.\n", message_id="<first@example.com>")
    engine = deliver(cfg, first)
    ack = next(o for o in outbox(engine) if o.kind == "ack")
    reply = message(
        subject="Re: [support #1] Printer is broken",
        body=f"Here is the password:\n{encrypt(customer, SECRET, FPR['queue'])}\n",
        in_reply_to=ack.message_id,
        references=f"<first@example.com> {ack.message_id}",
    )
    deliver(cfg, reply)
    (t,) = tickets(engine)
    kinds = [a.kind for a in t.articles]
    assert kinds == ["inbound", "inbound", "system"]
    assert t.articles[1].body_text == f"Here is the password:\n{SECURED}\n"
    (row,) = secrets(engine, t.id)
    assert row.ok and row.text == SECRET and row.article_id == t.articles[1].id
    no_secret_outside(engine, SECRET)


@pytest.mark.parametrize("case", ["no-key", "corrupted", "no-mdc"])
def test_undecryptable_parts_keep_the_ciphertext_and_the_reason(
    tmp_path: Path, queue_home: Path, customer: gnupg.GPG, case: str
) -> None:
    cfg = make_config(tmp_path, queue_home)
    customer.import_keys((KEYS / "stranger.pub.asc").read_text())
    if case == "no-key":
        armored, why = encrypt(customer, SECRET, FPR["stranger"]), "no secret key"
    elif case == "corrupted":
        lines = encrypt(customer, SECRET, FPR["queue"]).splitlines()
        lines[3] = lines[3][:10] + "AAAAAAAAAAAAAAAA" + lines[3][26:]
        armored, why = "\n".join(lines), ""
    else:
        armored = encrypt(customer, SECRET, FPR["queue"], extra_args=["--rfc2440"])
        why = "no MDC"
    engine = deliver(cfg, message(body=f"see below\n{armored}\n"))
    (t,) = tickets(engine)
    inbound, note = t.articles
    assert inbound.body_text == f"see below\n{SECURED}\n"
    (row,) = secrets(engine)
    assert not row.ok and row.text == "" and row.reason and why in row.reason
    kept = {a.filename: a for a in attachments(engine, inbound.id)}
    assert kept["encrypted-1.asc"].blob_sha256 == row.ciphertext_sha256
    assert not kept["encrypted-1.asc"].agent_only
    assert blob(engine, row.ciphertext_sha256).strip() == armored.strip().encode()
    assert "NOT decrypted: " + row.reason in note.body_text
    assert "kept as attachment encrypted-1.asc" in note.body_text
    assert inbound.verdict["pgp"]["failed"] == 1
    no_secret_outside(engine, SECRET)


def test_queue_without_pgp_keeps_the_ciphertext_as_it_is(
    tmp_path: Path, queue_home: Path, customer: gnupg.GPG
) -> None:
    cfg = make_config(tmp_path, queue_home)
    armored = encrypt(customer, SECRET, FPR["queue"])
    engine = deliver(cfg, message(to="sales@example.test", body=f"x\n{armored}\n"), queue="sales")
    (t,) = tickets(engine)
    assert t.queue == "sales" and armored in t.articles[0].body_text
    assert "signature" not in t.articles[0].verdict
    assert secrets(engine) == []


def test_pgp_corpus_becomes_tickets_with_ciphertext_and_reasons(
    tmp_path: Path, queue_home: Path
) -> None:
    cfg = make_config(tmp_path, queue_home)
    engine, spool, worker = offline(cfg)
    files = sorted(CORPUS.glob("*.eml"))
    assert len(files) == 15
    for path in files:
        spool.put(path.read_bytes(), Envelope(source="pipe", queue="support"))
    result = worker.drain()
    assert result.stored + result.duplicates == len(files) and result.shunted == 0
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        inbound = list(s.scalars(select(Article).where(Article.kind == "inbound")))
        notes: dict[int, str] = {}
        for n in s.scalars(select(Article).where(Article.kind == "system")):
            notes[n.ticket_id] = notes.get(n.ticket_id, "") + n.body_text
        s.expunge_all()
    assert len(inbound) == len(files)
    rows = secrets(engine)
    by_article: dict[int, list[Any]] = {}
    for r in rows:
        by_article.setdefault(r.article_id, []).append(r)
    encrypted = 0
    for a in inbound:
        assert "-----BEGIN PGP MESSAGE-----" not in a.body_text, a.subject
        parts = by_article.get(a.id, [])
        if parts:
            encrypted += 1
            assert all(not r.ok and r.reason for r in parts), a.subject
            kept = {x.blob_sha256 for x in attachments(engine, a.id)} | {a.raw_sha256}
            assert all(r.ciphertext_sha256 in kept for r in parts), a.subject
            assert "NOT decrypted" in notes.get(a.ticket_id, ""), a.subject
        else:  # signed only, by keys we do not have
            sigs = [a.verdict.get("signature"), *a.verdict.get("partial_signatures", [])]
            assert "signature" in a.verdict and not any(s and s["valid"] for s in sigs), a.subject
    assert encrypted >= 8


def test_replayed_ciphertext_from_someone_else_is_not_decrypted_again(
    tmp_path: Path, queue_home: Path, customer: gnupg.GPG
) -> None:
    cfg = make_config(tmp_path, queue_home)
    armored = encrypt(customer, SECRET, FPR["queue"])
    engine = deliver(
        cfg,
        message(body=f"mine:\n{armored}\n"),
        message(sender="mallory@example.net", name="Mallory", body=f"what is this?\n{armored}\n"),
    )
    first, second = tickets(engine)
    assert second.requester_addr == "mallory@example.net"
    (orig,) = secrets(engine, first.id)
    (replay,) = secrets(engine, second.id)
    assert orig.ok and orig.text == SECRET
    assert not replay.ok and replay.text == "" and replay.reason.startswith("replayed")
    assert "customer@example.com" in replay.reason and "#1" in replay.reason


# --------------------------------------------------------------------------- agents


def test_tickets_show_secrets_only_on_request_and_audited(
    tmp_path: Path, queue_home: Path, customer: gnupg.GPG
) -> None:
    cfg = make_config(tmp_path, queue_home)
    engine = deliver(cfg, message(body=f"x\n{encrypt(customer, SECRET, FPR['queue'])}\n"))

    def show(*flags: str) -> str:
        out = io.StringIO()
        tickets_cli.console.file = out
        try:
            assert cli.main(["-c", str(cfg.path), "tickets", "show", "1", *flags]) == 0
        finally:
            tickets_cli.console.file = None  # type: ignore[assignment]
        return out.getvalue()

    plain = show()
    assert SECRET not in plain and "1 encrypted part(s), 1 decrypted" in plain
    assert audits(engine, "secret-viewed") == []
    revealed = show("--secrets")
    assert SECRET in revealed
    (event,) = audits(engine, "secret-viewed")
    assert event.ticket_id == 1 and event.detail["secrets"] == [secrets(engine)[0].id]
    assert event.actor


def test_secret_for_agent_is_encrypted_to_the_agents_key(
    tmp_path: Path,
    queue_home: Path,
    customer: gnupg.GPG,
    homes: Callable[..., Path],
    keyrings: Keyrings,
) -> None:
    cfg = make_config(tmp_path, queue_home)
    engine = deliver(cfg, message(body=f"x\n{encrypt(customer, SECRET, FPR['queue'])}\n"))
    alice, bob = cfg.agent("alice"), cfg.agent("bob")
    assert alice is not None and bob is not None
    now = datetime.now(UTC)
    with engine.begin() as conn:
        out = secret_for_agent(conn, cfg, 1, alice, now, keyrings, cause="k1")
        assert not isinstance(out, str), out
        assert add_outbox(conn, out, now, now.replace(year=now.year + 1))
        refused = secret_for_agent(conn, cfg, 1, bob, now, keyrings)
    assert isinstance(refused, str) and "no such ticket in your queues" in refused
    assert out.kind == "secret" and out.rcpt_tos == ("alice@example.test",)
    assert SECRET.encode() not in out.raw and b"multipart/encrypted" in out.raw
    side = Keyring(homes("agent.sec.asc", "queue.pub.asc"))
    opened = open_message(out.raw, "", side, SUPPORT)
    (part,) = opened.secrets
    assert part.ok and SECRET in part.text
    assert opened.signature and opened.signature.valid  # sign_outgoing = true
    (sent,) = audits(engine, "secret-sent")
    assert sent.actor == "alice" and sent.detail["encrypted"] is True
    (no,) = audits(engine, "secret-refused")
    assert no.actor == "bob" and "no such ticket in your queues" in no.detail["reason"]
    no_secret_outside(engine, SECRET)


@pytest.mark.parametrize("allow", [False, True])
def test_secret_for_an_agent_without_a_key(
    tmp_path: Path, queue_home: Path, customer: gnupg.GPG, allow: bool, keyrings: Keyrings
) -> None:
    cfg = make_config(tmp_path, queue_home, allow_plaintext_secrets_to_agents=allow)
    engine = deliver(cfg, message(body=f"x\n{encrypt(customer, SECRET, FPR['queue'])}\n"))
    alice = cfg.agent("alice")
    assert alice is not None
    keyless = alice.model_copy(update={"pgp_fingerprint": ""})
    now = datetime.now(UTC)
    with engine.begin() as conn:
        out = secret_for_agent(conn, cfg, 1, keyless, now, keyrings)
    if allow:
        assert not isinstance(out, str) and SECRET.encode() in out.raw
        assert b"multipart/encrypted" not in out.raw
    else:
        assert isinstance(out, str) and "only encrypted" in out
    with engine.begin() as conn:
        stranger_key = alice.model_copy(update={"pgp_fingerprint": FPR["customer"]})
        wrong = secret_for_agent(conn, cfg, 1, stranger_key, now, keyrings)
        assert isinstance(wrong, str) and "no user id for alice@example.test" in wrong
        none = secret_for_agent(conn, cfg, 99, alice, now, keyrings)
        assert isinstance(none, str) and "no such ticket" in none


# --------------------------------------------------------------------------- outgoing


def test_the_daemon_round_trip_encrypts_to_the_customer_and_threads(
    tmp_path: Path, queue_home: Path, customer: gnupg.GPG, smtp_sink: SmtpSink
) -> None:
    cfg = make_config(tmp_path, queue_home, smtp_sink.port)
    with running(cfg) as d:
        armored = encrypt(customer, SECRET, FPR["queue"], sign=FPR["customer"])
        raw = message(body=f"Hi\n{armored}\n", message_id="<rt-1@example.com>")
        d.send(raw)
        wait_until(lambda: len(smtp_sink.messages) >= 2)
        engine = d.engine
        ack_row = next(o for o in outbox(engine) if o.kind == "ack")
        got = next(m for m in smtp_sink.messages if m.rcpt_tos == ["customer@example.com"])
        wire = email.message_from_bytes(got.data, policy=default)
        plain = email.message_from_bytes(ack_row.raw, policy=default)
        assert wire.get_content_type() == "multipart/encrypted"
        for name in ("Message-ID", "In-Reply-To", "References", "Subject", "From", "To"):
            assert wire[name] == plain[name], name
        assert wire["In-Reply-To"] == "<rt-1@example.com>"
        side = Keyring(Path(customer.gnupghome))
        (part,) = open_message(got.data, "", side, SUPPORT).secrets
        expect = plain.get_content().replace("\r\n", "\n").strip()
        assert part.ok and expect in part.text.replace("\r\n", "\n")
        # the customer answers the encrypted ack: it threads by In-Reply-To and the tag
        follow = message(
            subject=f"Re: {wire['Subject']}",
            body=f"> {SECURED}\nmore:\n{encrypt(customer, OTHER, FPR['queue'])}\n",
            in_reply_to=wire["Message-ID"],
            references=f"<rt-1@example.com> {wire['Message-ID']}",
        )
        d.send(follow)
        wait_until(lambda: len(secrets(engine)) == 2)
    (t,) = tickets(engine)
    assert [a.kind for a in t.articles].count("inbound") == 2
    no_secret_outside(engine, SECRET, OTHER)
    for m in smtp_sink.messages:
        assert SECRET.encode() not in m.data and OTHER.encode() not in m.data


def test_no_key_for_a_recipient_sends_in_clear_and_never_to_a_foreign_key(
    tmp_path: Path, queue_home: Path, smtp_sink: SmtpSink, keyrings: Keyrings
) -> None:
    cfg = make_config(tmp_path, queue_home, smtp_sink.port)
    # a sender whose address is not on any key's uid (the customer key is for customer@...)
    engine = deliver(cfg, message(sender="customer@example.com.evil.test", body="hi\n"))
    Sender(cfg, engine, keyrings=keyrings).send_due()
    got = next(m for m in smtp_sink.messages if m.rcpt_tos == ["customer@example.com.evil.test"])
    assert b"multipart/encrypted" not in got.data and b"is now ticket" in got.data


def test_outgoing_mail_with_decrypted_content_is_refused(
    tmp_path: Path, queue_home: Path, customer: gnupg.GPG, smtp_sink: SmtpSink, keyrings: Keyrings
) -> None:
    cfg = make_config(tmp_path, queue_home, smtp_sink.port)
    engine = deliver(cfg, message(body=f"x\n{encrypt(customer, SECRET, FPR['queue'])}\n"))
    Sender(cfg, engine, keyrings=keyrings).send_due()
    smtp_sink.clear()
    now = datetime.now(UTC)
    from mailgate.outgoing.compose import Outgoing, compose

    raw = compose(
        from_addr=SUPPORT,
        from_name="Alice",
        to=(("Carla", "customer@example.com"),),
        subject="[support #1] Re: Printer",
        body=f"Dear Carla,\n> {SECRET}\nwe changed it.\n",  # an agent pasted the secret
        message_id="<answer-1@helpdesk.example.test>",
        date=now,
        hostname="helpdesk.example.test",
    )
    with engine.begin() as conn:
        out = Outgoing("answer", SUPPORT, ("customer@example.com",), "<answer-1@x>", raw, 1)
        add_outbox(conn, out, now, now.replace(year=now.year + 1))
    assert Sender(cfg, engine, keyrings=keyrings).send_due() == (0, 0, 1)
    assert smtp_sink.messages == []
    row = next(o for o in outbox(engine) if o.kind == "answer")
    assert row.status == "failed" and "decrypted PGP content" in row.last_error
    (t,) = tickets(engine)
    assert "decrypted PGP content" in t.articles[-1].body_text
    assert SECRET not in t.articles[-1].body_text


def test_leak_guard_is_pure_and_sees_through_encodings() -> None:
    from mailgate.outgoing.compose import compose

    now = datetime.now(UTC)
    for body in (f"x {SECRET} y", f"caf\u00e9\n> {SECRET}\n"):  # 7bit, quoted-printable
        raw = compose(
            from_addr=SUPPORT,
            from_name="",
            to=(("", "c@example.com"),),
            subject="s",
            body=body,
            message_id="<m@x>",
            date=now,
            hostname="h",
        )
        assert leaked_secret(raw, [SECRET])
        assert not leaked_secret(raw, ["something else entirely, long enough"])
    assert not leaked_secret(b"Subject: x\r\n\r\nok\r\n", ["short"])


# --------------------------------------------------------------------------- ack hint, CLI


def test_ack_context_publishes_the_fingerprint_and_key(tmp_path: Path, queue_home: Path) -> None:
    cfg = make_config(tmp_path, queue_home, publish_key_hint=True)
    support, sales = cfg.queue("support"), cfg.queue("sales")
    assert support is not None and sales is not None
    ctx = ack_context(support)
    assert ctx["pgp_fingerprint"].replace(" ", "") == FPR["queue"]
    assert ctx["pgp_public_key"].startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    empty = {"pgp_fingerprint": "", "pgp_public_key": ""}
    assert ack_context(sales) == empty
    off = make_config(tmp_path / "off", queue_home).queue("support")
    assert off is not None and ack_context(off) == empty


def test_passphrase_protected_queue_key_from_the_environment(
    tmp_path: Path, homes: Callable[..., Path], customer: gnupg.GPG, monkeypatch: Any
) -> None:
    home = homes("queue-protected.sec.asc", "customer.pub.asc")
    customer.import_keys((KEYS / "queue-protected.pub.asc").read_text())
    monkeypatch.setenv("MG_TEST_QUEUE_PASS", "correct horse battery staple")
    table = pgp_table(home, passphrase_env="MG_TEST_QUEUE_PASS").replace(
        FPR["queue"], FPR["queue-protected"]
    )
    cfg = load(write_config(tmp_path, queue_extra={"support": table}, agents_toml=AGENTS))
    engine = deliver(cfg, message(body=f"x\n{encrypt(customer, SECRET, FPR['queue-protected'])}\n"))
    (row,) = secrets(engine)
    assert row.ok and row.text == SECRET


def test_keys_cli_create_import_export_list(
    tmp_path: Path, homes: Callable[..., Path], capsys: Any
) -> None:
    home = homes()  # empty, short
    shutil.rmtree(home)  # `keys create` makes it (mode 700)
    path = write_config(tmp_path, queue_extra={"support": f'[pgp]\ngnupg_home = "{home}"\n'})

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(["-c", str(path), "keys", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("create", "support")
    assert code == 0 and "key = " in out
    fpr = out.split('key = "')[1].split('"')[0]
    assert (home.stat().st_mode & 0o777) == 0o700
    code, _, err = run("create", "support")
    assert code == 1 and "already holds secret key" in err
    # a customer's public key; a secret key without --queue-key is refused
    code, out, _ = run("import", "support", str(KEYS / "customer.pub.asc"))
    assert code == 0 and FPR["customer"] in out and "customer@example.com" in out
    code, _, err = run("import", "support", str(KEYS / "stranger.sec.asc"))
    assert code == 1 and "SECRET key material" in err
    code, _, err = run(
        "import", "support", str(KEYS / "agent.pub.asc"), "--expect-email", "bob@example.test"
    )
    assert code == 1 and "has no user id bob@example.test" in err
    code, out, _ = run("list", "support")
    assert code == 0 and fpr in out and FPR["customer"] in out and FPR["agent"] not in out
    # export needs the key in the config: write it, then the public key comes out
    (tmp_path / "config" / "queues" / "support.toml").write_text(
        (tmp_path / "config" / "queues" / "support.toml").read_text() + f'key = "{fpr}"\n'
    )
    code, out, _ = run("export", "support")
    assert code == 0 and out.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    code, out, _ = run("list", "support")
    assert "<- queue key" in out
    code, _, err = run("list", "nosuchqueue")
    assert code == 1 and "no queue 'nosuchqueue'" in err


def test_messages_without_pgp_never_reach_gpg(
    tmp_path: Path, queue_home: Path, monkeypatch: Any, keyrings: Keyrings
) -> None:
    from mailgate.parse.message import parse

    def no_gpg(*_: object) -> None:
        raise AssertionError("gpg used for a message without PGP")

    monkeypatch.setattr(Keyrings, "get", no_gpg)
    monkeypatch.setattr(incoming, "open_message", no_gpg)
    cfg = make_config(tmp_path, queue_home)
    raw = message(body="plain text, nothing to decrypt\n")
    p = parse(raw)
    same, opened = incoming.open_incoming(cfg, ("support",), p, raw, keyrings)
    assert same is p and opened is None
    engine = deliver(cfg, raw)
    assert len(tickets(engine)) == 1 and secrets(engine) == []


# --------------------------------------------------------------------------- keyring lifecycle


def agent_running(home: Path) -> bool:
    """Is a gpg-agent serving this GnuPG home (its socket lives in the short home)?"""
    found = subprocess.run(
        ["gpgconf", "--homedir", str(home), "--list-dirs", "agent-socket"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(found.stdout.strip()).exists()


def stop_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=True)


def agent_stopped(home: Path) -> bool:
    """Wait for the agent to exit: it removes its socket when it is gone."""
    return wait_until(lambda: not agent_running(home), timeout=10)


def test_the_daemon_stops_the_gpg_agents_of_every_keyring_it_used(
    tmp_path: Path, queue_home: Path, customer: gnupg.GPG, homes: Callable[..., Path]
) -> None:
    """One Keyrings for the queue keyrings and the agents' keyring, closed at shutdown.

    Before, the agent path kept its own keyring cache that nothing stopped: the agent
    keyring's gpg-agent outlived the daemon.
    """
    agent_ring = homes("agent.pub.asc")  # the queue verifies signed commands with it
    alice = gnupg.GPG(gnupghome=str(homes("agent.sec.asc")))
    signed = f'require_signed_commands = true\nagent_keyring = "{agent_ring}"\n'
    path = write_config(
        tmp_path,
        queue_extra={"support": pgp_table(queue_home) + NOTIFY + signed},
        agents_toml=AGENTS,
    )
    cfg = load(path)
    for home in (queue_home, agent_ring):
        stop_agent(home)  # importing the test keys started one
        assert agent_stopped(home)
    with running(cfg) as d:
        d.send(message(body=f"x\n{encrypt(customer, SECRET, FPR['queue'])}\n"))
        wait_until(lambda: len(secrets(d.engine)) == 1)
        reply_to = tokens.reply_address(cfg.secret, "alice", 1, SUPPORT)
        command = str(alice.sign("#priority 60\n", keyid=FPR["agent"], clearsign=True))
        raw = message(sender="alice@example.test", name="Alice", to=reply_to, body=command)
        d.send(raw, rcpts=[reply_to], sender="alice@example.test")
        wait_until(lambda: tickets(d.engine)[0].priority == 60)
        assert agent_running(queue_home) and agent_running(agent_ring)
    assert agent_stopped(queue_home)
    assert agent_stopped(agent_ring)


def test_keyrings_share_a_keyring_per_home_and_passphrase_until_closed(
    homes: Callable[..., Path],
) -> None:
    home = homes("queue.sec.asc")
    stop_agent(home)
    assert agent_stopped(home)
    with Keyrings() as rings:
        ring = rings.get(home)
        assert rings.get(home) is ring
        assert rings.get(home, "rotated passphrase") is not ring  # read anew on every use
        armored = ring.encrypt(SECRET.encode(), [FPR["queue"]])
        assert ring.decrypt(armored.encode()).data == SECRET.encode()
        assert agent_running(home)  # the secret key's operations started it
        rings.close()
        assert agent_stopped(home)
        assert rings.get(home) is not ring  # a closed cache starts afresh
