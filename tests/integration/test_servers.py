"""Prove the real-server fixtures of tests/servers.py work: IMAP, PostgreSQL, GnuPG, SMTP."""

from __future__ import annotations

import email.policy
import os
import smtplib
import socket
import threading
import time
import uuid
from collections.abc import Callable
from email.message import EmailMessage

import gnupg
import pytest
import sqlalchemy as sa
from imapclient import IMAPClient

from tests.servers import Dovecot, GnuPGHome, Postgres, SmtpSink, _pids_mentioning, pid_alive


def make_mail(subject: str, to: str = "support@example.test") -> bytes:
    """Build a small RFC 5322 message."""
    msg = EmailMessage()
    msg["From"] = "Customer <customer@example.org>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@example.org>"
    msg.set_content("Hello helpdesk, ünïcödé\n")
    return msg.as_bytes(policy=email.policy.SMTP)


# --- Dovecot -----------------------------------------------------------------------------


def test_dovecot_login_append_select(dovecot: Dovecot, imap_user: str) -> None:
    """LOGIN, APPEND (with APPENDUID), SELECT and FETCH on the session server."""
    uid = dovecot.append(imap_user, make_mail("first"))
    assert uid == 1
    client = dovecot.login(imap_user)
    try:
        assert b"IDLE" in client.capabilities()
        info = client.select_folder("INBOX")
        assert info[b"EXISTS"] == 1
        body = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
        assert b"Subject: first" in body
        assert {f[2] for f in client.list_folders()} >= {"INBOX", "Archive", "Spam"}
    finally:
        client.logout()


def test_dovecot_users_are_isolated_and_passwords_checked(dovecot: Dovecot) -> None:
    """A new user sees an empty INBOX; a wrong password is refused at once."""
    user = dovecot.add_user(f"iso{uuid.uuid4().hex[:8]}@example.test", "other-secret")
    client = dovecot.login(user)
    assert client.select_folder("INBOX")[b"EXISTS"] == 0
    client.logout()
    started = time.monotonic()
    for _ in range(2):
        with pytest.raises(IMAPClient.Error):
            dovecot.login(user, "secret")
    # dovecot 2.3.19 flushes failures every 0.5 s; no growing per-IP auth penalty
    assert time.monotonic() - started < 2.5


def test_dovecot_idle_sees_append_from_second_connection(dovecot: Dovecot, imap_user: str) -> None:
    """IDLE on one connection reports EXISTS after another connection APPENDs."""
    idler = dovecot.login(imap_user)
    try:
        idler.select_folder("INBOX")
        idler.idle()
        appender = threading.Thread(
            target=dovecot.append, args=(imap_user, make_mail("while idling"))
        )
        appender.start()
        seen: list[tuple[object, ...]] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(r[1] == b"EXISTS" for r in seen):
            seen += idler.idle_check(timeout=1)
        idler.idle_done()
        appender.join()
        assert (1, b"EXISTS") in seen, seen
    finally:
        idler.logout()


def test_dovecot_imaps_with_cafile(dovecot: Dovecot, imap_user: str) -> None:
    """IMAPS verifies against the generated cafile (hostname localhost)."""
    assert dovecot.imaps_port and dovecot.cafile
    client = dovecot.login(imap_user, ssl=True)
    try:
        assert client._imap.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    finally:
        client.logout()


def test_dovecot_restart_keeps_mail_and_port(dovecot_factory: Callable[..., Dovecot]) -> None:
    """restart() reuses the port and the maildirs; kill() then restart() too; stop() cleans."""
    server = dovecot_factory(users=["a@example.test"])
    user = "a@example.test"
    server.append(user, make_mail("before restart"))
    port, old_pid = server.port, server.pid
    assert old_pid and pid_alive(old_pid)
    connected = server.login(user)
    connected.select_folder("INBOX")

    server.restart()
    assert server.port == port and server.pid != old_pid
    assert not pid_alive(old_pid)
    with pytest.raises((IMAPClient.Error, OSError)):
        connected.noop()  # the old session is gone: clients must reconnect
    client = server.login(user)
    assert client.select_folder("INBOX")[b"EXISTS"] == 1
    client.logout()

    killed_pid = server.pid
    assert killed_pid
    server.kill()
    assert not pid_alive(killed_pid) and not server.running
    with pytest.raises(OSError):
        socket.create_connection((server.host, port), timeout=1).close()
    server.restart()  # the maildirs survive a crash
    assert server.port == port
    server.append(user, make_mail("after crash"))
    client = server.login(user)
    assert client.select_folder("INBOX")[b"EXISTS"] == 2
    client.logout()

    last_pid, directory = server.pid, server.dir
    assert last_pid
    server.stop()
    assert not pid_alive(last_pid)
    assert not os.path.exists(directory)


# --- PostgreSQL --------------------------------------------------------------------------


def test_postgres_sqlalchemy_connection(postgres: Postgres) -> None:
    """The default database accepts a SQLAlchemy (psycopg 3) connection."""
    assert postgres.url == f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/mailgate"
    engine = sa.create_engine(postgres.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select current_database()")).scalar() == "mailgate"
            assert conn.execute(sa.text("show fsync")).scalar() == "off"
    finally:
        engine.dispose()


def test_postgres_create_database(postgres: Postgres) -> None:
    """create_database() returns a usable URL for a separate, empty database."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = postgres.create_database(name)
    assert url == postgres.url_for(name)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("create table t (id serial primary key, s text not null)"))
            conn.execute(sa.text("insert into t (s) values ('grüße')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("select s from t")).scalar() == "grüße"
    finally:
        engine.dispose()
    postgres.drop_database(name)


def test_pg_url_is_fresh(pg_url: str) -> None:
    """pg_url gives an empty per-test database."""
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == []
    finally:
        engine.dispose()


# --- GnuPG -------------------------------------------------------------------------------

KEY_PARAMS = """\
Key-Type: EDDSA
Key-Curve: ed25519
Key-Usage: sign
Subkey-Type: ECDH
Subkey-Curve: cv25519
Subkey-Usage: encrypt
Name-Real: Mailgate Support
Name-Email: support@example.test
Expire-Date: 0
%no-protection
%commit
"""


def test_gnupg_home_imports_generated_key(gnupg_home: GnuPGHome) -> None:
    """An ECC key generated in another home imports, is trusted, and encrypts/decrypts."""
    with GnuPGHome() as maker:
        maker.gpg("--gen-key", input=KEY_PARAMS)
        (fpr,) = maker.fingerprints(secret=True)
        armored = (
            maker.gpg("--armor", "--export", fpr).stdout
            + maker.gpg("--armor", "--export-secret-keys", fpr).stdout
        )
        maker_home = maker.path
    assert not _agents_for(maker_home)

    assert gnupg_home.fingerprints() == []
    assert gnupg_home.import_keys(armored) == [fpr]
    assert gnupg_home.fingerprints(secret=True) == [fpr]

    gpg = gnupg.GPG(gnupghome=gnupg_home.path)
    enc = gpg.encrypt("ticket #42 secret", fpr, armor=True)  # no always_trust: trust was set
    assert enc.ok, enc.status
    dec = gpg.decrypt(str(enc))
    assert dec.ok and str(dec) == "ticket #42 secret"

    home = gnupg_home.path
    assert _agents_for(home)
    gnupg_home.stop()
    assert not _agents_for(home)


def _agents_for(home: str) -> list[int]:
    """Live processes whose command line mentions home."""
    return _pids_mentioning(home)


# --- SMTP sink ---------------------------------------------------------------------------


def test_smtp_sink_captures_smtplib_message(smtp_sink: SmtpSink) -> None:
    """send_message lands in the sink with envelope and exact bytes."""
    raw = make_mail("captured", to="customer@example.org")
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5) as client:
        client.sendmail("support@example.test", ["customer@example.org", "cc@example.org"], raw)
    (got,) = smtp_sink.wait_for(1)
    assert got.mail_from == "support@example.test"
    assert got.rcpt_tos == ["customer@example.org", "cc@example.org"]
    assert got.data == raw
    assert got.message["Subject"] == "captured"


def test_smtp_sink_smtputf8(smtp_sink: SmtpSink) -> None:
    """SMTPUTF8 is advertised and an internationalised address is accepted."""
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5) as client:
        client.ehlo()
        assert client.has_extn("smtputf8")
        client.sendmail(
            "støtte@example.test",
            ["kunde@exämple.org"],
            "Subject: hej\r\n\r\nblåbær\r\n".encode(),
            mail_options=["SMTPUTF8"],
        )
    (got,) = smtp_sink.wait_for(1)
    assert got.smtp_utf8 and got.mail_from == "støtte@example.test"
    assert got.rcpt_tos == ["kunde@exämple.org"]


def test_smtp_sink_rcpt_452_then_retry_accepted(smtp_sink: SmtpSink) -> None:
    """An injected 452 at RCPT refuses one transaction; the retry is accepted."""
    smtp_sink.fail("rcpt", 452)
    raw = make_mail("retry me")
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("support@example.test", ["customer@example.org"], raw)
        assert refused.value.recipients["customer@example.org"][0] == 452
        assert smtp_sink.messages == []
        assert client.sendmail("support@example.test", ["customer@example.org"], raw) == {}
    assert len(smtp_sink.wait_for(1)) == 1
    assert smtp_sink.fired == [("rcpt", 452)]


def test_smtp_sink_error_queue_one_per_transaction() -> None:
    """The (stage, code) queue is consumed in order, one entry per transaction."""
    faults = [("rcpt", 452), ("data", 451), ("mail", 421), ("data", 550)]
    expected = [
        smtplib.SMTPRecipientsRefused,
        smtplib.SMTPDataError,
        smtplib.SMTPSenderRefused,
        smtplib.SMTPDataError,
    ]
    with SmtpSink(errors=faults) as sink:
        for exc in expected:
            with (
                pytest.raises(exc),
                smtplib.SMTP(sink.host, sink.port, timeout=5) as client,
            ):
                client.sendmail("a@example.test", ["b@example.test"], make_mail("q"))
        assert sink.fired == faults and sink.pending_faults == []
        assert sink.messages == []
        with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
            client.sendmail("a@example.test", ["b@example.test"], make_mail("ok"))
        assert len(sink.wait_for(1)) == 1


def test_smtp_sink_lmtp_two_recipients() -> None:
    """LMTP mode answers once per recipient after DATA."""
    rcpts = ["support@example.test", "billing@example.test"]
    with SmtpSink(lmtp=True) as sink, smtplib.LMTP(sink.host, sink.port, timeout=5) as client:
        assert client.sendmail("customer@example.org", rcpts, make_mail("lmtp")) == {}
        # smtplib.LMTP reads only the first per-recipient reply; read the others by hand
        extra = [client.getreply() for _ in rcpts[1:]]
        assert [code for code, _ in extra] == [250]
        (got,) = sink.wait_for(1)
        assert got.rcpt_tos == rcpts


def test_smtp_sink_down_modes(smtp_sink: SmtpSink) -> None:
    """set_down(True) greets with 421; refuse=True closes the port; set_down(False) heals."""
    smtp_sink.set_down(True)
    with pytest.raises(smtplib.SMTPConnectError) as err:
        smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5)
    assert err.value.smtp_code == 421

    smtp_sink.set_down(True, refuse=True)
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5)

    smtp_sink.set_down(False)
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5) as client:
        client.sendmail("a@example.test", ["b@example.test"], make_mail("back up"))
    assert len(smtp_sink.wait_for(1)) == 1
