"""Spoofed agent commands run nothing (docs/architecture.md, "Commands only from
authenticated agents"), over the real listener and relay.

Each case mails an attack at a fresh ticket and then counts what was executed on it:
commands in the audit log, answers sent, and any change of status, priority, assignee or
tags. A positive control (a genuine agent mail) shows that the counting would see it.
The table is printed (`pytest -s`) and every attack must count 0.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, make_msgid
from pathlib import Path

import gnupg
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailgate.agents import tokens
from mailgate.db.models import Article, AuditEvent, agent_mails
from mailgate.pgp import keys
from tests.harness import load, message, running, tickets, wait_until, write_config
from tests.integration.test_agents import NOTIFY, Desk, agents_config
from tests.servers import SmtpSink, require

ATTACK = "#close\n#priority 99\n#tag +pwned\n#assign bob\n\nYou have been pwned.\n"


@dataclass(frozen=True)
class Case:
    name: str
    # mail the attack at the ticket; returns what had legitimately run before it (a replay)
    send: Callable[[Desk, int], object]
    control: bool = False


def _records(desk: Desk) -> int:
    with Session(desk.d.engine) as s:
        return int(
            s.scalar(select(func.count(Article.id))) + s.scalar(select(func.count(AuditEvent.id)))
        )


def _executed(desk: Desk, tid: int) -> int:
    """Commands run and answers sent on the ticket, plus 1 per field an attack could change."""
    with Session(desk.d.engine) as s:
        audited = s.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.ticket_id == tid, AuditEvent.action.in_(("command", "answered"))
            )
        )
    t = desk.ticket(tid)
    changed = [
        t.status not in ("new", "open"),
        t.priority != 50,
        t.assignee is not None,
        bool(desk.tags(tid)),
        bool([a for a in t.articles if a.kind == "outbound"]),
    ]
    return int(audited or 0) + sum(changed)


def _send(
    desk: Desk,
    *,
    sender: str,
    to: str,
    body: str = ATTACK,
    name: str = "Alice",
    date: datetime | None = None,
    message_id: str | None = None,
    rcpt: str = "",
) -> bytes:
    raw = message(
        sender=sender,
        name=name,
        to=to,
        subject="Re: notification",
        body=body,
        date=date,
        message_id=message_id,
    )
    desk.d.send(raw, rcpts=[rcpt or to], sender=sender)
    return raw


def alice_to(desk: Desk, tid: int, **kw) -> bytes:
    return _send(desk, sender="alice@example.test", to=desk.address("alice", tid), **kw)


def _variant(addr: str, how: str) -> str:
    local, domain = addr.split("@")
    base, token = local.split("+")
    t, k = token.split(".")
    return {
        "upper": f"{base}+{t}.K{k[1:].upper()}@{domain}",
        "upper-T": f"{base}+T{t[1:]}.{k}@{domain}",
        "percent": f"{base}+{t}.{k[:-1]}%{ord(k[-1]):02x}@{domain}",
        "plus-encoded": f"{base}%2B{t}.{k}@{domain}",
        "leading-zero": f"{base}+t0{t[1:]}.{k}@{domain}",
    }[how]


def _replay(desk: Desk, tid: int) -> int:
    """The genuine mail runs; the same bytes again must add nothing."""
    mid = make_msgid(domain="example.test")
    raw = alice_to(desk, tid, body="#priority 60\n", message_id=mid)
    wait_until(lambda: desk.ticket(tid).priority == 60)
    before = _executed(desk, tid)
    desk.d.send(raw, rcpts=[desk.address("alice", tid)], sender="alice@example.test")
    return before


CASES = [
    Case(
        "control: genuine agent mail",
        lambda desk, tid: alice_to(desk, tid, body="#priority 60\n#tag +ok\n"),
        control=True,
    ),
    Case(
        "From agent, no token",
        lambda desk, tid: _send(desk, sender="alice@example.test", to="support@example.test"),
    ),
    Case(
        "From agent, no token, ticket tag in subject",
        lambda desk, tid: desk.d.send(
            message(
                sender="alice@example.test",
                subject=f"Re: [support #{tid}] Printer is broken",
                body=ATTACK,
            ),
            sender="alice@example.test",
        ),
    ),
    Case(
        "token for another ticket",
        lambda desk, tid: _send(
            desk,
            sender="alice@example.test",
            to=f"support+t{tid}.k{tokens.token_mac(desk.cfg.secret, 'alice', tid + 1000)}"
            "@example.test",
        ),
    ),
    Case(
        "token for another agent (bob's, From alice)",
        lambda desk, tid: _send(desk, sender="alice@example.test", to=desk.address("bob", tid)),
    ),
    Case(
        "token for another agent (alice's, From bob)",
        lambda desk, tid: _send(
            desk, sender="bob@example.test", name="Bob", to=desk.address("alice", tid)
        ),
    ),
    Case(
        "command address (t0) used on a ticket",
        lambda desk, tid: _send(desk, sender="alice@example.test", to=desk.address("alice", 0)),
    ),
    Case("replayed message (same Message-ID)", _replay),
    Case(
        "stale Date (73 h)",
        lambda desk, tid: alice_to(desk, tid, date=datetime.now(UTC) - timedelta(hours=73)),
    ),
    Case(
        "future Date (+2 h)",
        lambda desk, tid: alice_to(desk, tid, date=datetime.now(UTC) + timedelta(hours=2)),
    ),
    Case(
        "commands in quoted text ('>')",
        lambda desk, tid: alice_to(desk, tid, body="\n".join("> " + s for s in ATTACK.split("\n"))),
    ),
    Case(
        "commands below 'On ... wrote:'",
        lambda desk, tid: alice_to(
            desk, tid, body="\nOn Mon, 1 Jan 2024, Example Support wrote:\n" + ATTACK
        ),
    ),
    Case(
        "commands after the signature",
        lambda desk, tid: alice_to(desk, tid, body="-- \n" + ATTACK),
    ),
    Case(
        'display name "alice@example.test" <mallory@evil.example>',
        lambda desk, tid: _send(
            desk,
            sender="mallory@evil.example",
            name="alice@example.test",
            to=desk.address("alice", tid),
        ),
    ),
    Case(
        'token only in a display name: To: "support+t1.k...@" <support@>',
        lambda desk, tid: _send(
            desk,
            sender="alice@example.test",
            to=f'"{desk.address("alice", tid)}" <support@example.test>',
            rcpt="support@example.test",
        ),
    ),
    Case(
        "tampered token (one hex digit)",
        lambda desk, tid: _send(
            desk,
            sender="alice@example.test",
            to=(a := desk.address("alice", tid)).replace(
                a[a.index(".k") + 2], "0" if a[a.index(".k") + 2] != "0" else "1", 1
            ),
        ),
    ),
    *(
        Case(
            f"token in another case/encoding ({how})",
            lambda desk, tid, how=how: _send(
                desk,
                sender="alice@example.test",
                to=_variant(desk.address("alice", tid), how),
                # the listener refuses an unknown mailbox at RCPT: the header carries it
                rcpt="support@example.test" if how == "plus-encoded" else "",
            ),
        )
        for how in ("upper", "upper-T", "percent", "plus-encoded", "leading-zero")
    ),
]


@pytest.fixture
def desk(tmp_path, smtp_sink: SmtpSink):
    cfg = agents_config(tmp_path, smtp_sink)
    with running(cfg) as d:
        yield Desk(d, smtp_sink, cfg)


def test_spoofed_commands_execute_nothing(desk: Desk):
    results: list[tuple[str, int, str]] = []
    for case in CASES:
        t, _ = desk.new_ticket(subject=case.name)
        records = _records(desk)
        baseline = case.send(desk, t.id)
        # every outcome leaves a record: an article, a note, or a replay in the audit log
        wait_until(lambda records=records: _records(desk) > records)
        baseline = baseline if isinstance(baseline, int) else 0
        if baseline:
            wait_until(lambda tid=t.id: _path_taken(desk, tid) == "ignored (replay)")
        executed = _executed(desk, t.id) - baseline
        path = _path_taken(desk, t.id)
        results.append((case.name, executed, path))
    width = max(len(n) for n, _, _ in results)
    print(f"\n{'case'.ljust(width)}  executed  handled as")
    for name, executed, path in results:
        print(f"{name.ljust(width)}  {executed:>8}  {path}")
    attacks = [(n, e) for (n, e, _), c in zip(results, CASES, strict=True) if not c.control]
    control = [e for (_, e, _), c in zip(results, CASES, strict=True) if c.control]
    print(f"attacks: {len(attacks)}, executed in total: {sum(e for _, e in attacks)}")
    assert control and all(e > 0 for e in control)
    assert [(n, e) for n, e in attacks if e] == []


def _path_taken(desk: Desk, tid: int) -> str:
    kinds = [a.kind for a in desk.ticket(tid).articles]
    with Session(desk.d.engine) as s:
        actions = set(s.scalars(select(AuditEvent.action).where(AuditEvent.ticket_id == tid)))
    if "agent-mail-replayed" in actions:
        return "ignored (replay)"
    if "agent-mail-refused" in actions:
        return "refused, kept as a note"
    if "command" in actions:
        return "commands run"
    if kinds.count("inbound") > 1:
        return "customer path (follow-up)"
    if [t for t in tickets(desk.d.engine) if t.id > tid]:
        return "customer path (new ticket)"
    with desk.d.engine.connect() as conn:
        last = conn.execute(
            select(agent_mails.c.outcome, agent_mails.c.ticket_id).order_by(agent_mails.c.id.desc())
        ).first()
    if last is not None and last.ticket_id is None:
        return f"{last.outcome} on the command address (no ticket)"
    return "customer path"


# --------------------------------------------------------------------------- signed commands

KEYS = Path(__file__).resolve().parent.parent / "data" / "keys"
FPR = {
    line.split()[0]: line.split()[2]
    for line in (KEYS / "FINGERPRINTS.txt").read_text().splitlines()
    if line.strip()
}
SIGNED_AGENTS_TOML = f"""
[[agents]]
name = "alice"
address = "alice@example.test"
full_name = "Alice Example"
queues = ["support"]
role = "admin"
pgp_fingerprint = "{FPR["agent"]}"

[[agents]]
name = "bob"
address = "bob@example.test"
queues = ["sales"]
"""


@pytest.fixture
def gpg_homes() -> Iterator[Callable[..., Path]]:
    require("gpg")
    made: list[Path] = []

    def make(*key_files: str) -> Path:
        home = Path(tempfile.mkdtemp(prefix="mg-", dir="/tmp"))  # short: gpg-agent's socket
        home.chmod(0o700)
        (home / "gpg-agent.conf").write_text("allow-loopback-pinentry\n")
        made.append(home)
        for name in key_files:
            keys.import_key(home, KEYS / name)
        return home

    yield make
    for home in made:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
        shutil.rmtree(home, ignore_errors=True)


def _signed_part(gpg: gnupg.GPG, signer: str, body: str) -> tuple[bytes, bytes]:
    part = (
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + body.replace("\n", "\r\n")
    ).encode()
    sig = gpg.sign(part, keyid=FPR[signer], detach=True, clearsign=False)
    assert sig.data.startswith(b"-----BEGIN PGP SIGNATURE-----"), sig.stderr
    return part, sig.data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _pgp_mime(sender: str, to: str, part: bytes, sig: bytes, mid: str | None = None) -> bytes:
    head = (
        f"From: Alice <{sender}>\r\nTo: {to}\r\nSubject: Re: signed\r\n"
        f"Date: {format_datetime(datetime.now(UTC))}\r\n"
        f"Message-ID: {mid or make_msgid(domain='example.test')}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/signed; micalg=pgp-sha512; protocol="application/pgp-signature";'
        ' boundary="SIG-b"\r\n\r\nThis is an OpenPGP/MIME signed message\r\n--SIG-b\r\n'
    ).encode()
    tail = b"\r\n--SIG-b\r\nContent-Type: application/pgp-signature\r\n\r\n" + sig
    return head + part + tail + b"\r\n--SIG-b--\r\n"


def test_signed_commands_queue_runs_only_the_agents_whole_body_signature(
    tmp_path, smtp_sink: SmtpSink, gpg_homes: Callable[..., Path]
):
    ring = gpg_homes("agent.pub.asc", "stranger.pub.asc")  # what the queue trusts to verify
    alice = gnupg.GPG(gnupghome=str(gpg_homes("agent.sec.asc")))
    stranger = gnupg.GPG(gnupghome=str(gpg_homes("stranger.sec.asc")))
    extra = f'require_signed_commands = true\nagent_keyring = "{ring}"\n'
    cfg = load(
        write_config(
            tmp_path,
            relay_port=smtp_sink.port,
            agents_toml=SIGNED_AGENTS_TOML,
            queue_extra={"support": NOTIFY + extra},
        )
    )

    def clearsign(gpg: gnupg.GPG, signer: str, text: str) -> str:
        return str(gpg.sign(text, keyid=FPR[signer], clearsign=True))

    results: list[tuple[str, int, bool]] = []  # (case, executed, should execute)
    with running(cfg) as d:
        desk = Desk(d, smtp_sink, cfg)

        def run(name: str, send: Callable[[int], object], control: bool = False) -> None:
            t, _ = desk.new_ticket(subject=name)
            records = _records(desk)
            refused = len(desk.audit("agent-mail-refused"))
            baseline = send(t.id)
            baseline = baseline if isinstance(baseline, int) else 0
            wait_until(lambda: _records(desk) > records)
            if baseline:  # a replay: wait for its refusal, after the genuine mail ran
                wait_until(lambda: len(desk.audit("agent-mail-refused")) > refused)
            results.append((name, _executed(desk, t.id) - baseline, control))

        def to(tid: int) -> str:
            return desk.address("alice", tid)

        run("unsigned", lambda tid: alice_to(desk, tid))
        run(
            "clearsigned by the agent (control)",
            lambda tid: alice_to(desk, tid, body=clearsign(alice, "agent", "#priority 60\n")),
            control=True,
        )
        run(
            "PGP/MIME signed by the agent (control)",
            lambda tid: desk.d.send(
                _pgp_mime(
                    "alice@example.test", to(tid), *_signed_part(alice, "agent", "#pickup\n")
                ),
                rcpts=[to(tid)],
                sender="alice@example.test",
            ),
            control=True,
        )
        run(
            "signed by another key",
            lambda tid: alice_to(desk, tid, body=clearsign(stranger, "stranger", ATTACK)),
        )
        run(
            "signed, then a command changed",
            lambda tid: alice_to(
                desk,
                tid,
                body=clearsign(alice, "agent", "#priority 60\n").replace(
                    "#priority 60", "#priority 99"
                ),
            ),
        )
        run(
            "unsigned command above a signed block",
            lambda tid: alice_to(desk, tid, body="#close\n" + clearsign(alice, "agent", "Hi\n")),
        )

        def replay(tid: int) -> int:
            part, sig = _signed_part(alice, "agent", "#priority +5\n")
            desk.d.send(_pgp_mime("alice@example.test", to(tid), part, sig), rcpts=[to(tid)])
            wait_until(lambda: desk.ticket(tid).priority == 55)
            before = _executed(desk, tid)
            # the same signed body under a new Message-ID and Date
            desk.d.send(_pgp_mime("alice@example.test", to(tid), part, sig), rcpts=[to(tid)])
            return before

        run("signed body replayed with a new Message-ID", replay)

    print(f"\n{'signed-commands case'.ljust(44)}  executed")
    for name, executed, _ in results:
        print(f"{name.ljust(44)}  {executed:>8}")
    assert all(e > 0 for _, e, control in results if control)
    assert [(n, e) for n, e, control in results if not control and e] == []
    refusals = [e.detail["errors"][0] for e in desk.audit("agent-mail-refused")]
    assert any("requires commands signed" in r for r in refusals)
    assert any("not by your registered key" in r for r in refusals)
    assert any("not valid" in r for r in refusals)
    assert any("already processed" in r for r in refusals)
