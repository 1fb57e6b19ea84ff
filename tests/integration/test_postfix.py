"""docs/postfix.md as written, against a real Postfix on loopback: LMTP and the pipe.

The Postfix lines come from contrib/postfix/ themselves, with only the domain, port and
paths put in. Each transport takes 200 messages (every tenth to two queue addresses),
then mailgate is stopped for a while: Postfix defers, keeps the mail, and delivers it when
mailgate is back. Nothing is lost, duplicated or bounced.
"""

from __future__ import annotations

import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailgate.db.models import Article
from tests import harness
from tests.postfix_server import Postfix
from tests.servers import _ensure_system_user, free_port, require

REPO = Path(__file__).resolve().parents[2]
CONTRIB = REPO / "contrib" / "postfix"
FIRST, LATER = 200, 20


def contrib(name: str, config: Path, port: int) -> str:
    """A contrib/postfix file with this test's domain, port, paths and user."""
    text = (CONTRIB / name).read_text()
    for default, ours in (
        ("helpdesk.example.com", "example.test"),
        ("127.0.0.1:2525", f"127.0.0.1:{port}"),
        ("/opt/mailgate/.venv/bin/mailgate", mailgate_command()),
        ("/etc/mailgate/mailgate.toml", str(config)),
    ):
        text = text.replace(default, ours)
    return text


def mailgate_command() -> str:
    """How the `mailgate` user starts mailgate: this venv's entry point where that user may
    run its interpreter, else the system's python3 on this source tree (ingest needs the
    standard library only). Here the venv's interpreter often lives under /root."""
    probe = ["runuser", "-u", "mailgate", "--", sys.executable, "-c", ""]
    if subprocess.run(probe, capture_output=True).returncode == 0:
        return str(Path(sys.prefix) / "bin" / "mailgate")
    return f"/usr/bin/env PYTHONPATH={REPO} /usr/bin/python3 -m mailgate"


@pytest.fixture
def root() -> Iterator[Path]:
    """A directory the `mailgate` user can read (pytest's tmp_path is root's alone)."""
    require("postfix")
    _ensure_system_user("mailgate")
    d = Path(tempfile.mkdtemp(prefix="mg-postfix-test.", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def submit(postfix: Postfix, first: int, count: int) -> None:
    """`count` messages to Postfix's smtpd; every tenth to support@ and billing@ at once."""
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=30) as s:
        for n in range(first, first + count):
            rcpts = ["support@example.test"]
            if n % 10 == 0:
                rcpts.append("billing@example.test")
            raw = harness.message(
                sender=f"customer{n}@customer.example",
                to=", ".join(rcpts),
                subject=f"question {n}",
                message_id=f"<pf-{n}@customer.example>",
            )
            s.sendmail(f"customer{n}@customer.example", rcpts, raw)


def articles(engine) -> tuple[int, int]:
    with engine.connect() as c:
        total = c.execute(select(func.count(Article.id))).scalar_one()
        distinct = c.execute(select(func.count(func.distinct(Article.message_id)))).scalar_one()
    return total, distinct


def delivered(postfix: Postfix, engine, n: int) -> None:
    harness.wait_until(lambda: articles(engine)[0] >= n, 180, f"{n} articles")
    harness.wait_until(postfix.queue_empty, 60, "postfix's queue to empty")
    assert articles(engine) == (n, n)  # none lost, none twice
    assert len(harness.tickets(engine)) == n  # one ticket per message, two addresses or one


def first_batch(postfix: Postfix, engine) -> None:
    """The first FIRST messages through Postfix into tickets; prints the rate (a figure)."""
    t0 = time.monotonic()
    submit(postfix, 0, FIRST)
    delivered(postfix, engine, FIRST)
    took = time.monotonic() - t0
    print(f"\n{FIRST} messages via postfix: {took:.1f}s, {FIRST / took:.1f} msg/s")


def deferred(postfix: Postfix, first: int, count: int) -> None:
    """Submit `count` messages that Postfix must defer and keep."""
    submit(postfix, first, count)
    harness.wait_until(lambda: postfix.statuses().get("deferred", 0) >= count, 60, "deferrals")
    assert not postfix.queue_empty()


def back_again(postfix: Postfix, path: Path, what: str) -> None:
    """mailgate running again: Postfix delivers everything it kept, bounces nothing."""
    d = harness.RunningDaemon(harness.load(path)).start()
    postfix.flush()
    delivered(postfix, d.engine, FIRST + LATER)
    d.stop()
    print(f"\npostfix {what}: {postfix.statuses()}")
    assert "bounced" not in postfix.statuses()


def test_postfix_lmtp_as_documented(root: Path) -> None:
    port = free_port()
    path = harness.write_config(root, listen_port=port, mode="lmtp")
    postfix = Postfix(root / "postfix", main_extra=contrib("main.cf-lmtp", path, port)).start()
    try:
        d = harness.RunningDaemon(harness.load(path)).start()
        first_batch(postfix, d.engine)
        d.stop()  # mailgate down: Postfix cannot connect, defers and keeps the mail
        deferred(postfix, FIRST, LATER)
        back_again(postfix, path, "lmtp")
    finally:
        postfix.stop()


def test_postfix_pipe_as_documented(root: Path) -> None:
    port = free_port()
    path = harness.write_config(root, listen_port=port)
    var = root / "var"
    postfix = Postfix(
        root / "postfix",
        main_extra=contrib("main.cf-pipe", path, port),
        master_extra=contrib("master.cf-pipe", path, port),
    )
    postfix.start()
    try:
        d = harness.RunningDaemon(harness.load(path)).start()
        subprocess.run(["chown", "-R", "mailgate:", str(var / "spool")], check=True)
        first_batch(postfix, d.engine)
        d.stop()  # the daemon down: the pipe still spools, the mail waits there
        submit(postfix, FIRST, LATER // 2)
        harness.wait_until(postfix.queue_empty, 60, "the pipe to spool with the daemon down")
        # the spool unwritable (a full disk, a wrong owner): ingest exits 75, Postfix defers
        subprocess.run(["chown", "root:", str(var / "spool" / "tmp")], check=True)
        (var / "spool" / "tmp").chmod(0o755)
        deferred(postfix, FIRST + LATER // 2, LATER // 2)
        assert "spool write failed" in postfix.log  # ingest's reason, in Postfix's log line
        subprocess.run(["chown", "-R", "mailgate:", str(var / "spool")], check=True)
        back_again(postfix, path, "pipe")
    finally:
        postfix.stop()
