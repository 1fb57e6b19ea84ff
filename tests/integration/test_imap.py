"""The IMAP poller against a real Dovecot: intake, IDLE, move vs \\Seen, UIDVALIDITY, errors.

Every test runs a private Dovecot (dovecot_factory), a real SQLite database and a real spool.
No IMAP mocks. Timings are printed, never asserted (beyond generous "it finished" bounds).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from mailgate.config import load as config_mod
from mailgate.config.errors import ConfigError
from mailgate.config.imap import ImapSettings
from mailgate.config.model import Config
from mailgate.config.secrets import SecretError
from mailgate.db import engine as db
from mailgate.db.models import ImapCheckpoint
from mailgate.pollers.imap.check import MailboxCheck, check_mailboxes
from mailgate.pollers.imap.poller import Poller
from mailgate.pollers.imap.run import make_pollers, serve
from mailgate.spool import Envelope, Spool
from tests.harness import wait_until
from tests.oauth2_provider import enable_oauth2
from tests.servers import Dovecot, free_port
from tests.spool_layout import split

PASSWORD = "secret"
MID_RE = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]+>)", re.M | re.I)


# -- helpers (the reliability tests use them too) ----------------------------------------
def message(n: int, *, to: str = "support@example.test", size: int = 0, tag: str = "m") -> bytes:
    """A small RFC 5322 message with a unique Message-ID <tag-n@customer.example>."""
    body = f"Hello helpdesk, message {n}.\r\n"
    if size:
        line = ("x" * 76 + "\r\n").encode()
        body += (line * (size // len(line) + 1)).decode()[:size]
    return (
        f"From: Customer {n} <customer{n}@customer.example>\r\n"
        f"To: {to}\r\n"
        f"Subject: question {n}\r\n"
        f"Message-ID: <{tag}-{n}@customer.example>\r\n"
        "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}"
    ).encode()


def spool_message_ids(spool: Spool) -> Counter[str]:
    """How many times each Message-ID sits in the spool (incoming + claimed)."""
    out: Counter[str] = Counter()
    for sub in ("incoming", "claimed"):
        for p in (spool.root / sub).glob("*.msg"):
            m = MID_RE.search(split(p)[1][:4096])
            out[m.group(1).decode() if m else f"(none:{p.name})"] += 1
    return out


def spool_envelopes(spool: Spool) -> list[Envelope]:
    return [split(p)[0] for p in sorted((spool.root / "incoming").glob("*.msg"))]


def folder_ids(d: Dovecot, user: str, folder: str) -> dict[str, tuple[bytes, ...]]:
    """Message-ID -> flags of every message in a folder (read-only look)."""
    c = d.login(user)
    try:
        c.select_folder(folder, readonly=True)
        uids = c.search(["ALL"])
        out = {}
        if uids:
            for data in c.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]).values():
                m = MID_RE.search(data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"])
                out[m.group(1).decode() if m else "?"] = tuple(data[b"FLAGS"])
        return out
    finally:
        c.logout()


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


def write_config(root: Path, queues: dict[str, dict[str, Any] | None]) -> Config:
    """mailgate.toml + queues/NAME.toml (address NAME@example.test, [imap] as given); load it."""
    cfg = root / "config"
    (cfg / "queues").mkdir(parents=True, exist_ok=True)
    (cfg / "mailgate.toml").write_text(f'[mailgate]\ndata_dir = "{root / "var"}"\n')
    for name, imap in queues.items():
        lines = [f'name = "{name}"', f'addresses = ["{name}@example.test"]']
        if imap is not None:
            lines.append("[imap]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in imap.items()]
        (cfg / "queues" / f"{name}.toml").write_text("\n".join(lines) + "\n")
    (cfg / "password").write_text(PASSWORD + "\n")
    return config_mod.load(cfg / "mailgate.toml")


def imap_table(d: Dovecot, user: str, **extra: Any) -> dict[str, Any]:
    """An [imap] table for a user of the test Dovecot (plain IMAP on loopback)."""
    base: dict[str, Any] = {
        "host": d.host,
        "port": d.port,
        "tls": "none",
        "user": user,
        "password_file": "../password",  # relative to the queue file: config/password
        "move_to": "Archive",
        "timeout_seconds": 10,
    }
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def fast_kwargs() -> dict[str, Any]:
    """Poller knobs for tests: quick reconnects, quick slow-retries."""
    return {
        "backoff_initial": 0.05,
        "backoff_max": 0.5,
        "auth_retry_seconds": 1.0,
        "folder_retry_seconds": 1.0,
        "idle_check_seconds": 0.2,
    }


class LoopThread:
    """An asyncio loop in a background thread, so a test can drive the daemon side."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def start(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def event(self) -> asyncio.Event:
        async def make() -> asyncio.Event:
            return asyncio.Event()

        return self.start(make()).result()

    def set(self, ev: asyncio.Event) -> None:
        self.loop.call_soon_threadsafe(ev.set)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = db.connect("sqlite:///" + str(tmp_path / "db.sqlite"))
    yield eng
    eng.dispose()


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool")


@pytest.fixture
def server(dovecot_factory: Callable[..., Dovecot]) -> Dovecot:
    """A private Dovecot with support@, billing@, sales@ and agent@ (password "secret")."""
    return dovecot_factory()


def checkpoints(engine: Engine) -> dict[str, tuple[int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(ImapCheckpoint.mailbox, ImapCheckpoint.uidvalidity, ImapCheckpoint.last_uid)
        ).all()
    return {r[0]: (r[1], r[2]) for r in rows}


# -- settings (no server) ----------------------------------------------------------------
def test_imap_problems_of_every_queue_are_listed(tmp_path: Path) -> None:
    # config.load types [imap] once: a bad table never reaches a poller
    with pytest.raises(ConfigError) as e:
        write_config(
            tmp_path,
            {
                "support": {"host": "mail.example.com", "tls": "none", "user": "s"},
                "billing": {"host": "127.0.0.1", "user": "b", "password_file": "../password"},
                "sales": {"host": "imap.example.com", "user": "x", "password_env": "X", "bogus": 1},
            },
        )
    qdir = tmp_path / "config" / "queues"
    assert e.value.problems == [
        f"{qdir / 'sales.toml'}: imap.bogus: unknown key",
        f'{qdir / "support.toml"}: imap: tls = "none" is allowed only for a loopback host, '
        'not \'mail.example.com\': use "implicit" or "starttls"',
    ]


def _queue_problems(tmp_path: Path, imap: dict[str, Any]) -> list[str]:
    try:
        write_config(tmp_path, {"support": imap})
    except ConfigError as e:
        return e.problems
    return []


def test_imap_table_validation_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MG_NOPE", raising=False)
    src = tmp_path / "config" / "queues" / "support.toml"
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"host": "mail.example.com", "tls": "none", "user": "s", "password_env": "X"},
            'imap: tls = "none" is allowed only for a loopback host',
        ),
        ({"host": "127.0.0.1", "user": "s"}, "imap: no credentials"),
        (
            {"host": "127.0.0.1", "user": "s", "password_env": "X", "after": "move"},
            'imap: after = "move" needs move_to',
        ),
        ({"host": "h", "user": "s", "password_env": "X", "bogus": 1}, "imap.bogus: unknown key"),
        ({"user": "s", "password_env": "X"}, "imap.host: required key is missing"),
        (
            {"host": "h", "user": "s", "password_env": "X", "tls": "ssl"},
            "imap.tls: must be 'implicit'",
        ),
        ({"host": "h", "user": "s", "password_file": "nope"}, "imap.password_file: "),
        ({"host": "h", "user": "s", "password_env": "MG_NOPE"}, "imap.password_env: $MG_NOPE"),
        (
            {"host": "h", "user": "s", "password_env": "X", "folders": ["A", "A"]},
            "imap.folders: a folder is listed twice",
        ),
        (
            {"host": "h", "user": "s", "password_env": "X", "oauth2_token_file": "t"},
            "imap: give either password_env or oauth2_token_file",
        ),
    ]
    monkeypatch.setenv("X", "pw")
    for imap, expected in cases:
        problems = _queue_problems(tmp_path, imap)
        assert len(problems) == 1, (imap, problems)
        assert problems[0].startswith(f"{src}: "), problems
        assert expected in problems[0], (expected, problems)


def test_config_with_imap_loads_and_defaults(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path, {"support": {"host": "127.0.0.1", "user": "s", "password_file": "../password"}}
    )
    s = cfg.queues[0].imap
    assert s is not None
    assert (s.tls, s.effective_port, s.folders, s.action) == ("implicit", 993, ["INBOX"], "seen")
    assert (s.poll_interval_seconds, s.timeout_seconds) == (60.0, 30.0)
    assert s.password() == PASSWORD  # read relative to the queue file's directory
    s2 = ImapSettings(host="h", user="u", password_env="X", tls="starttls", move_to="Done")
    assert (s2.effective_port, s2.action) == (143, "move")


def test_two_queues_may_not_watch_the_same_folder(tmp_path: Path) -> None:
    imap = {"host": "127.0.0.1", "user": "s", "password_file": "../password"}
    with pytest.raises(ConfigError) as err:
        make_pollers(
            write_config(tmp_path, {"support": imap, "billing": imap}),
            Spool(tmp_path / "spool"),
            db.make_engine("sqlite://"),
            asyncio.Event(),
        )
    assert len(err.value.problems) == 1
    assert "imap.folders[0]: s@127.0.0.1:993/INBOX is already watched by queue" in str(err.value)


def test_oauth2_token_from_file_and_command(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok-from-file\n")
    s = ImapSettings(host="h", user="u", oauth2_token_file="token", base=tmp_path)
    assert s.uses_oauth2 and s.oauth2_token() == "tok-from-file" and s.login_user == "u"
    s = ImapSettings(
        host="h",
        user="u",
        oauth2_user="u@example.test",
        oauth2_token_command=["sh", "-c", "echo tok-from-command"],
        base=tmp_path,
    )
    assert s.oauth2_token() == "tok-from-command" and s.login_user == "u@example.test"
    s = ImapSettings(host="h", user="u", oauth2_token_command="sh -c 'echo no >&2; exit 3'")
    with pytest.raises(SecretError, match="exited with status 3: no"):
        s.oauth2_token()


# -- intake ------------------------------------------------------------------------------
def test_append_to_three_queues_reaches_spool_with_idle(
    tmp_path: Path, server: Dovecot, engine: Engine, spool: Spool, loop_thread: LoopThread
) -> None:
    """support@, billing@ and sales@ each get mail; it lands in the spool with its queue."""
    names = ("support", "billing", "sales")
    cfg = write_config(tmp_path, {n: imap_table(server, f"{n}@example.test") for n in names})
    for n in names:  # mail waiting before the daemon starts
        server.append(f"{n}@example.test", message(0, to=f"{n}@example.test", tag=n))
    stop = loop_thread.event()
    pollers = make_pollers(cfg, spool, engine, stop)
    fut = loop_thread.start(serve(pollers, stop))
    try:
        wait_until(lambda: spool.pending() == 3, 30, "the 3 waiting messages")
        for p in pollers:
            assert p.idling.wait(10), f"{p} never entered IDLE"
        latencies = []
        for i in range(1, 6):
            for n in names:
                t0 = time.monotonic()
                before = spool.pending()
                server.append(f"{n}@example.test", message(i, to=f"{n}@example.test", tag=n))
                wait_until(lambda b=before: spool.pending() > b, 10, "IDLE pickup")
                latencies.append(time.monotonic() - t0)
        latencies.sort()
        print(
            f"\nIDLE pickup (APPEND returned -> spool file): n={len(latencies)} "
            f"p50={latencies[len(latencies) // 2] * 1000:.0f} ms max={latencies[-1] * 1000:.0f} ms"
        )
    finally:
        loop_thread.set(stop)
        fut.result(timeout=15)
    ids = spool_message_ids(spool)
    assert sorted(ids) == sorted(f"<{n}-{i}@customer.example>" for n in names for i in range(6))
    assert set(ids.values()) == {1}
    by_queue = Counter(e.queue for e in spool_envelopes(spool))
    assert by_queue == {n: 6 for n in names}
    for env in spool_envelopes(spool):
        assert (
            env.source
            == f"imap:{env.queue}/{env.queue}@example.test@{server.host}:{server.port}/INBOX"
        )
        assert env.rcpt_tos == (f"{env.queue}@example.test",)
    for n in names:
        assert folder_ids(server, f"{n}@example.test", "INBOX") == {}
        assert len(folder_ids(server, f"{n}@example.test", "Archive")) == 6
    cps = checkpoints(engine)
    assert {k.split("/")[0]: v[1] for k, v in cps.items()} == {n: 6 for n in names}


def _one_poller(
    tmp_path: Path, server: Dovecot, spool: Spool, engine: Engine, **imap: Any
) -> Poller:
    cfg = write_config(tmp_path, {"support": imap_table(server, "support@example.test", **imap)})
    (p,) = make_pollers(cfg, spool, engine, asyncio.Event(), **fast_kwargs())
    return p


def test_after_move_empties_the_folder(
    tmp_path: Path, server: Dovecot, engine: Engine, spool: Spool
) -> None:
    p = _one_poller(tmp_path, server, spool, engine, move_to="Archive")
    for i in range(3):
        server.append("support@example.test", message(i))
    assert p.poll_once() == 3
    assert folder_ids(server, "support@example.test", "INBOX") == {}
    archived = folder_ids(server, "support@example.test", "Archive")
    assert sorted(archived) == [f"<m-{i}@customer.example>" for i in range(3)]
    assert all(b"\\Seen" not in f for f in archived.values())  # BODY.PEEK: we do not read it
    assert p.poll_once() == 0
    server.append("support@example.test", message(3))
    assert p.poll_once() == 1
    assert sum(spool_message_ids(spool).values()) == 4


def test_after_seen_flags_and_keeps_and_never_retakes(
    tmp_path: Path, server: Dovecot, engine: Engine, spool: Spool
) -> None:
    p = _one_poller(tmp_path, server, spool, engine, after="seen", move_to=None)
    server.append("support@example.test", message(0))
    server.append("support@example.test", message(1), flags=[b"\\Seen"])  # read by a human
    server.append("support@example.test", message(2), flags=[b"\\Deleted"])  # being deleted
    assert p.poll_once() == 2  # seen-by-someone counts (checkpoint, not flags); deleted does not
    kept = folder_ids(server, "support@example.test", "INBOX")
    assert b"\\Seen" in kept["<m-0@customer.example>"]
    assert b"\\Seen" in kept["<m-1@customer.example>"]
    # a human marks one unread again: the checkpoint, not the flag, decides
    c = server.login("support@example.test")
    c.select_folder("INBOX")
    c.remove_flags(c.search(["ALL"]), [b"\\Seen"])
    c.logout()
    assert p.poll_once() == 0
    server.append("support@example.test", message(3))
    assert p.poll_once() == 1
    assert sorted(spool_message_ids(spool)) == [f"<m-{i}@customer.example>" for i in (0, 1, 3)]


def test_uidvalidity_change_rescans_from_uid_1(
    tmp_path: Path, server: Dovecot, engine: Engine, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    """Folder deleted and re-created (new UIDVALIDITY) with the same messages plus new ones."""
    user = "support@example.test"
    c = server.login(user)
    c.create_folder("Tickets")
    c.logout()
    p = _one_poller(
        tmp_path, server, spool, engine, folders=["Tickets"], after="seen", move_to=None
    )
    for i in range(5):
        server.append(user, message(i), folder="Tickets")
    assert p.poll_once() == 5
    ((key, (uv1, last1)),) = checkpoints(engine).items()
    assert last1 == 5
    c = server.login(user)
    c.delete_folder("Tickets")
    c.create_folder("Tickets")
    c.logout()
    for i in range(8):  # the same five again, then three new ones (UIDs restart at 1)
        server.append(user, message(i), folder="Tickets")
    with caplog.at_level(logging.WARNING, logger="mailgate.pollers.imap.poller"):
        assert p.poll_once() == 8
    assert "UIDVALIDITY changed" in caplog.text and "re-scanning from UID 1" in caplog.text
    (uv2, last2) = checkpoints(engine)[key]
    assert uv2 != uv1 and last2 == 8
    ids = spool_message_ids(spool)
    assert sorted(ids) == sorted(f"<m-{i}@customer.example>" for i in range(8))  # none skipped
    # the first five are in the spool twice; the worker's Message-ID / raw-hash dedupe drops them
    assert [ids[f"<m-{i}@customer.example>"] for i in range(8)] == [2] * 5 + [1] * 3


def test_polling_fallback_without_idle_or_move(
    tmp_path: Path,
    dovecot_factory: Callable[..., Dovecot],
    engine: Engine,
    spool: Spool,
    loop_thread: LoopThread,
) -> None:
    """A server that offers neither IDLE nor MOVE: poll every poll_interval, COPY+EXPUNGE."""
    d = dovecot_factory()
    with open(d.conf_path, "a") as f:
        f.write("\nimap_capability = IMAP4rev1 LITERAL+ UIDPLUS\n")
    d.restart()
    cfg = write_config(
        tmp_path,
        {"support": imap_table(d, "support@example.test", poll_interval_seconds=0.3)},
    )
    (p,) = make_pollers(cfg, spool, engine, loop_thread.event(), **fast_kwargs())
    fut = loop_thread.start(p.run())
    try:
        wait_until(lambda: p.connections == 1, 30, "connection")
        t0 = time.monotonic()
        d.append("support@example.test", message(1))
        wait_until(lambda: spool.pending() == 1, 10, "poll pickup")
        print(f"\npolling pickup (interval 0.3 s): {(time.monotonic() - t0) * 1000:.0f} ms")
    finally:
        loop_thread.set(p.stop)
        fut.result(timeout=10)
    assert folder_ids(d, "support@example.test", "INBOX") == {}
    assert list(folder_ids(d, "support@example.test", "Archive")) == ["<m-1@customer.example>"]


def test_large_backlog_is_taken_in_bounded_batches(
    tmp_path: Path, server: Dovecot, engine: Engine, spool: Spool
) -> None:
    """120 messages, ten of 200 KB; batch 25 and at most 1 MB per FETCH."""
    user = "support@example.test"
    c = server.login(user)
    for i in range(120):
        c.append("INBOX", message(i, size=200_000 if i % 12 == 0 else 0))
    c.logout()
    p = _one_poller(tmp_path, server, spool, engine, batch_size=25, batch_max_bytes=1_000_000)
    assert p.poll_once() == 120
    ids = spool_message_ids(spool)
    assert len(ids) == 120 and set(ids.values()) == {1}
    big = [p for p in (spool.root / "incoming").glob("*.msg") if p.stat().st_size > 200_000]
    assert len(big) == 10


# -- TLS ---------------------------------------------------------------------------------
def test_implicit_tls_and_starttls_with_ca_file(
    tmp_path: Path, dovecot_factory: Callable[..., Dovecot], engine: Engine, spool: Spool
) -> None:
    d = dovecot_factory(ssl=True)
    assert d.cafile and d.imaps_port
    cfg = write_config(
        tmp_path,
        {
            "support": imap_table(
                d,
                "support@example.test",
                host="localhost",
                port=d.imaps_port,
                tls="implicit",
                ca_file=d.cafile,
            ),
            "billing": imap_table(
                d, "billing@example.test", host="localhost", tls="starttls", ca_file=d.cafile
            ),
        },
    )
    d.append("support@example.test", message(1))
    d.append("billing@example.test", message(2))
    pollers = make_pollers(cfg, spool, engine, asyncio.Event())
    assert [p.poll_once() for p in pollers] == [1, 1]
    checks = check_mailboxes(cfg)
    assert [c.ok for c in checks] == [True, True], checks


# -- errors ------------------------------------------------------------------------------
def _closed_port() -> int:
    return free_port()  # nothing listens there


def test_check_mailboxes_says_exactly_what_failed(
    tmp_path: Path, dovecot_factory: Callable[..., Dovecot], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = dovecot_factory()  # plain IMAP only (ssl = no): it does not offer STARTTLS
    tls_d = dovecot_factory(ssl=True)
    monkeypatch.setenv("MG_TEST_PW", PASSWORD)
    user = "support@example.test"
    queues: dict[str, dict[str, Any] | None] = {
        "good": imap_table(d, user),
        "wrongpw": imap_table(d, "billing@example.test", password_file=None, password_env="WRONG"),
        "down": imap_table(d, user, port=_closed_port()),
        "nodns": imap_table(d, user, host="imap.nonexistent.invalid", tls="implicit"),
        "nostarttls": imap_table(d, "sales@example.test", tls="starttls"),
        "badcert": imap_table(tls_d, user, host="localhost", port=tls_d.imaps_port, tls="implicit"),
        "plainport": imap_table(d, user, host="localhost", tls="implicit"),
        "nofolder": imap_table(d, "agent@example.test", folders=["INBOX", "Nope"]),
        "nomoveto": imap_table(d, "agent@example.test", folders=["Spam"], move_to="Gone"),
        "noimap": None,
    }
    monkeypatch.setenv("WRONG", "not-the-password")
    cfg = write_config(tmp_path, queues)
    t0 = time.monotonic()
    checks = check_mailboxes(cfg)
    print(f"\ncheck_mailboxes: {len(checks)} checks in {time.monotonic() - t0:.2f}s")
    for c in checks:
        print(f"  {c.queue:10} {c.mailbox:45} {'OK ' if c.ok else 'ERR'} {c.detail}")
    by = {(c.queue, c.mailbox.rsplit("/", 1)[1]): c for c in checks}
    assert all(isinstance(c, MailboxCheck) for c in checks)
    assert "noimap" not in {c.queue for c in checks}

    def detail(q: str, folder: str = "INBOX") -> str:
        c = by[(q, folder)]
        assert not c.ok or q == "good", c
        return c.detail

    assert by[("good", "INBOX")].ok and by[("good", "INBOX")].detail.startswith("ok: ")
    assert "IDLE" in by[("good", "INBOX")].detail
    assert detail("wrongpw") == (
        f"imap login to billing@example.test@{d.host}:{d.port} failed: "
        "[AUTHENTICATIONFAILED] Authentication failed."
    )
    assert "refused" in detail("down")
    assert detail("nodns").startswith("DNS lookup of 'imap.nonexistent.invalid' failed")
    assert "does not offer STARTTLS" in detail("nostarttls")
    assert detail("badcert").startswith("TLS certificate of localhost:")
    assert "TLS with localhost:" in detail("plainport")
    assert by[("nofolder", "INBOX")].ok
    assert detail("nofolder", "Nope") == "folder 'Nope' does not exist"
    assert detail("nomoveto", "Spam") == "move_to folder 'Gone' does not exist"


def test_timeout_is_reported(tmp_path: Path) -> None:
    """A server that accepts and never greets: the socket timeout fires."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    try:
        imap = {
            "host": "127.0.0.1",
            "port": srv.getsockname()[1],
            "tls": "none",
            "user": "x",
            "password_file": "../password",
            "timeout_seconds": 0.5,
        }
        (check,) = check_mailboxes(write_config(tmp_path, {"support": imap}))
    finally:
        srv.close()
    assert not check.ok and "(timeout)" in check.detail, check


def test_bad_mailboxes_do_not_stop_a_good_one(
    tmp_path: Path,
    server: Dovecot,
    engine: Engine,
    spool: Spool,
    loop_thread: LoopThread,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Wrong password and a closed port, in the same run as a working mailbox."""
    (tmp_path / "config").mkdir(parents=True, exist_ok=True)
    (tmp_path / "config" / "nope").write_text("wrong\n")
    cfg = write_config(
        tmp_path,
        {
            "support": imap_table(server, "support@example.test"),
            "billing": imap_table(server, "billing@example.test", password_file="../nope"),
            "sales": imap_table(server, "sales@example.test", port=_closed_port()),
        },
    )
    stop = loop_thread.event()
    pollers = make_pollers(cfg, spool, engine, stop, **fast_kwargs())
    caplog.set_level(logging.INFO, logger="mailgate.pollers.imap.poller")
    t0 = time.monotonic()
    futs = [loop_thread.start(p.run()) for p in pollers]
    try:
        for i in range(3):
            server.append("support@example.test", message(i))
            server.append("billing@example.test", message(i, tag="b"))
            wait_until(lambda i=i: spool.pending() == i + 1, 10, "support mail")

        def retried() -> bool:  # a few retries each; the delays below need six refusals
            said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            auth = sum(m.startswith("queue billing: ") for m in said)
            return auth >= 2 and sum(m.startswith("queue sales: ") for m in said) >= 6

        wait_until(retried, 20, "the bad mailboxes to retry")
    finally:
        loop_thread.set(stop)
        for f in futs:
            f.result(timeout=10)
    elapsed = time.monotonic() - t0
    assert sorted(spool_message_ids(spool)) == [f"<m-{i}@customer.example>" for i in range(3)]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    auth = [m for m in errors if m.startswith("queue billing: ")]
    assert auth and auth[0] == (
        f"queue billing: imap login to billing@example.test@{server.host}:{server.port} failed: "
        "[AUTHENTICATIONFAILED] Authentication failed.; retrying in 1.0s"
    )
    refused = [m for m in errors if m.startswith("queue sales: ")]
    assert refused and "refused (server down or wrong port?); retrying in" in refused[0]
    # slow retries, not a hot loop: auth every 1 s (test setting); refused backs off
    # exponentially with jitter up to its cap (0.5 s here, 5 min by default)
    assert 2 <= len(auth) <= elapsed / 1.0 + 2, (elapsed, auth)
    delays = [float(re.findall(r"retrying in ([0-9.]+)s", m)[0]) for m in refused]
    print(f"\nconnection refused: {len(delays)} retries, delays {delays}")
    assert len(delays) >= 5 and max(delays) <= 0.5
    # (printed with one decimal) first 0.025-0.05 s, then grown to the cap: jitter in [cap/2, cap]
    assert delays[0] <= 0.1 and min(delays[5:]) >= 0.2
    billing = {p.queue.name: p for p in pollers}["billing"]
    assert billing.taken == 0 and billing.last_error.startswith("imap login to billing@")


# -- stop --------------------------------------------------------------------------------
def test_stop_mid_idle_ends_cleanly_and_logs_out(
    tmp_path: Path, server: Dovecot, engine: Engine, spool: Spool, loop_thread: LoopThread
) -> None:
    cfg = write_config(
        tmp_path,
        {n: imap_table(server, f"{n}@example.test") for n in ("support", "billing", "sales")},
    )
    stop = loop_thread.event()
    pollers = make_pollers(cfg, spool, engine, stop)  # default knobs: IDLE checks every 0.5 s

    fut = loop_thread.start(serve(pollers, stop))
    for p in pollers:
        assert p.idling.wait(30), f"{p} never entered IDLE"
    assert all(p.connections == 1 for p in pollers)
    t0 = time.monotonic()
    loop_thread.set(stop)
    fut.result(timeout=10)
    took = time.monotonic() - t0
    print(f"\nstop during IDLE: 3 pollers ended in {took * 1000:.0f} ms")
    assert took < 5
    users = [f"{n}@example.test" for n in ("support", "billing", "sales")]
    wait_until(
        lambda: all(f"imap({u})" in server.log() for u in users), 5, "Dovecot to log the ends"
    )
    for u in users:  # a LOGOUT, not a dropped connection
        ends = [line for line in server.log().splitlines() if f"imap({u})" in line]
        assert len(ends) == 1 and ": Logged out " in ends[0], ends
    assert all(t.name.startswith("imap:") is False for t in threading.enumerate()), [
        t.name for t in threading.enumerate()
    ]


# -- end to end: IMAP -> spool -> worker -> tickets --------------------------------------
def _imap_toml(d: Dovecot, user: str) -> str:
    return (
        f'[imap]\nhost = "{d.host}"\nport = {d.port}\ntls = "none"\nuser = "{user}"\n'
        'password_file = "../password"\nmove_to = "Archive"\n'
    )


def test_end_to_end_imap_mail_becomes_tickets(tmp_path: Path, server: Dovecot) -> None:
    """The daemon (app.Daemon) polls three mailboxes; the worker makes one ticket per mail.

    One customer mail sent to both billing@ and support@ sits in both mailboxes: it is
    spooled twice and becomes ONE ticket (the worker's dedupe), visible in both queues.
    """
    from tests import harness

    names = ("support", "billing", "sales")
    path = harness.write_config(
        tmp_path, queue_extra={n: _imap_toml(server, f"{n}@example.test") for n in names}
    )
    (path.parent / "password").write_text(PASSWORD)
    cfg = harness.load(path)
    for n in names:
        server.append(f"{n}@example.test", message(1, to=f"{n}@example.test", tag=n))
    both = message(9, to="billing@example.test, support@example.test", tag="both")
    server.append("billing@example.test", both)
    server.append("support@example.test", both)
    with harness.running(cfg) as d:
        harness.wait_until(lambda: harness.article_count(d.engine) == 4, 20)
        latencies = []
        for i in range(2, 7):
            n = names[i % 3]
            t0 = time.monotonic()
            server.append(f"{n}@example.test", message(i, to=f"{n}@example.test", tag=n))
            harness.wait_until(
                lambda i=i: harness.article_count(d.engine) == 4 + i - 1, 20, interval=0.01
            )
            latencies.append(time.monotonic() - t0)
        ts = harness.tickets(d.engine)
    latencies.sort()
    print(
        f"\nAPPEND -> ticket through the daemon: n={len(latencies)} "
        f"p50={latencies[len(latencies) // 2] * 1000:.0f} ms max={latencies[-1] * 1000:.0f} ms"
    )
    assert len(ts) == 9 and sum(len(t.articles) for t in ts) == 9
    shared = [t for t in ts if t.articles[0].message_id == "<both-9@customer.example>"]
    assert len(shared) == 1
    assert sorted(q.queue for q in shared[0].queues) == ["billing", "support"]
    assert Spool(cfg.spool_dir).pending() == 0
    for n in names:
        assert folder_ids(server, f"{n}@example.test", "INBOX") == {}


def test_uidvalidity_rescan_adds_no_duplicate_articles(
    tmp_path: Path, server: Dovecot, engine: Engine, spool: Spool
) -> None:
    """After a re-scan the spool holds the old messages again; the worker stores them once."""
    from mailgate.pgp.keyring import Keyrings
    from mailgate.pipeline.steps import Pipeline
    from mailgate.pipeline.worker import Worker
    from tests import harness

    user = "support@example.test"
    path = harness.write_config(tmp_path)
    text = path.parent / "queues" / "support.toml"
    text.write_text(
        text.read_text()
        + _imap_toml(server, user).replace('move_to = "Archive"', 'after = "seen"')
        + 'folders = ["Tickets"]\n'
    )
    (path.parent / "password").write_text(PASSWORD)
    cfg = harness.load(path)
    c = server.login(user)
    c.create_folder("Tickets")
    c.logout()
    (p,) = make_pollers(cfg, spool, engine, asyncio.Event())
    worker = Worker(cfg, engine, spool, Pipeline(cfg, keyrings=Keyrings()))
    for i in range(4):
        server.append(user, message(i), folder="Tickets")
    assert p.poll_once() == 4
    assert worker.drain().stored == 4
    c = server.login(user)
    c.delete_folder("Tickets")
    c.create_folder("Tickets")
    c.logout()
    for i in range(6):
        server.append(user, message(i), folder="Tickets")
    assert p.poll_once() == 6
    r = worker.drain()
    assert (r.stored, r.duplicates) == (2, 4)
    assert harness.article_count(engine) == 6


# -- OAuth2 (XOAUTH2) against Dovecot's oauth2 passdb and a local introspection endpoint --
GOOD_TOKEN = "tok-good-0123"


@pytest.fixture
def oauth_dovecot(dovecot_factory: Callable[..., Dovecot]) -> Iterator[Dovecot]:
    """A Dovecot that accepts XOAUTH2 tokens, checked against a local RFC 7662 endpoint."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Introspect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            ok = f"token={GOOD_TOKEN}&" in body + "&"
            answer = {"active": True, "username": "support@example.test"} if ok else {}
            data = json.dumps(answer or {"active": False}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    http = HTTPServer(("127.0.0.1", 0), Introspect)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    d = dovecot_factory()
    enable_oauth2(d, f"http://127.0.0.1:{http.server_port}/introspect")
    yield d
    http.shutdown()


def test_xoauth2_login_with_token_file_and_command(
    tmp_path: Path, oauth_dovecot: Dovecot, engine: Engine, spool: Spool
) -> None:
    d = oauth_dovecot
    user = "support@example.test"
    cfg_dir = tmp_path / "config"
    cfg_dir.mkdir()
    (cfg_dir / "token").write_text(GOOD_TOKEN + "\n")
    (cfg_dir / "bad-token").write_text("expired\n")
    cmd = f"sh -c 'cat {cfg_dir / 'token'}'"
    oauth = {"password_file": None, "move_to": "Archive"}
    cfg = write_config(
        tmp_path,
        {
            "support": imap_table(d, user, **oauth, oauth2_token_file="../token"),
            "billing": imap_table(
                d, "billing@example.test", **oauth, oauth2_user=user, oauth2_token_command=cmd
            ),
            "sales": imap_table(d, "sales@example.test", **oauth, oauth2_token_file="../bad-token"),
        },
    )
    checks = {c.queue: c for c in check_mailboxes(cfg)}
    assert checks["support"].ok and checks["billing"].ok, checks
    assert checks["sales"].detail == (
        f"imap XOAUTH2 login to sales@example.test@{d.host}:{d.port} failed: "
        "[AUTHENTICATIONFAILED] Authentication failed."
    )
    d.append(user, message(1))
    support = next(
        p for p in make_pollers(cfg, spool, engine, asyncio.Event()) if p.queue.name == "support"
    )
    assert support.poll_once() == 1
    assert "method=XOAUTH2" in d.log()


def test_new_mail_reported_inside_a_command_answer_is_not_missed(
    tmp_path: Path, server: Dovecot, engine: Engine, spool: Spool
) -> None:
    """EXISTS that arrives in the answer to our own command (not during IDLE) must not
    leave the poller idling until the next IDLE renewal: it drains again at once."""
    from mailgate.pollers.imap.connection import connect

    p = _one_poller(tmp_path, server, spool, engine, idle_renew_seconds=60)
    client = connect(p.settings)
    try:
        p.intake.open(client)
        p.intake.drain(client)
        server.append("support@example.test", message(1))

        def exists_in_an_answer() -> bool:  # Dovecot notices the APPEND within 0.5 s
            client.search(["ALL"])  # its answer carries the EXISTS; imaplib keeps it aside
            return "EXISTS" in client._imap.untagged_responses

        wait_until(exists_in_an_answer, 10, "EXISTS inside a SEARCH answer", interval=0.1)
        t0 = time.monotonic()
        p._idle_wait(client)
        took = time.monotonic() - t0
        assert took < 0.2, took  # returned without IDLE, not after the 60 s renewal
        p.intake.drain(client)
    finally:
        client.logout()
    assert list(spool_message_ids(spool)) == ["<m-1@customer.example>"]
