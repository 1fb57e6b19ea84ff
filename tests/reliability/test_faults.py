"""Faults end cleanly: a failed spool write leaves no files, start-up failures are one line
and an exit code, a replaced SQLite file stops the worker and loses nothing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.harness import load, message, running, tickets, wait_until, write_config
from tests.reliability.daemon_proc import mailgate

ROOT = Path(__file__).resolve().parents[2]


def test_a_failed_spool_write_leaves_no_temp_files(tmp_path: Path):
    # a real "file too large" from the kernel (RLIMIT_FSIZE), as a full disk would fail
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from mailgate.spool import Envelope, Spool
        spool = Spool({str(tmp_path / "spool")!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            spool.put(b"Subject: x\\r\\n\\r\\n" + b"x" * 100_000, Envelope(source="pipe"))
        except OSError as e:
            print("failed:", e.strerror)
        else:
            print("stored")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert out.stdout.decode().startswith("failed: File too large"), out
    for sub in ("tmp", "incoming"):
        assert list((tmp_path / "spool" / sub).iterdir()) == []


@pytest.mark.parametrize("cut_at", ["fdatasync", "rename"])
def test_a_put_killed_midway_leaves_nothing_visible_and_nothing_acknowledged(
    tmp_path: Path, cut_at: str
):
    """kill -9 of a writer inside put(): before its file is durable, or durable but not yet
    renamed into incoming/. Nothing is listed, claimed or acknowledged; the start clears tmp/."""
    root = tmp_path / "spool"
    script = textwrap.dedent(
        f"""
        import os, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from mailgate.spool import Envelope, Spool
        spool = Spool({str(root)!r})
        real = os.{cut_at}

        def held(*args):  # the file written, not yet on disk / on disk, not yet renamed
            print("held", flush=True)
            time.sleep(60)
            return real(*args)

        os.{cut_at} = held
        spool.put(b"Subject: x\\r\\n\\r\\n" + b"x" * 100_000, Envelope(source="pipe"))
        print("acknowledged", flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"held\n"
        [half] = list((root / "tmp").iterdir())  # being written: never listed from tmp/
    finally:
        proc.kill()
    out = proc.communicate(timeout=30)[0]
    assert b"acknowledged" not in out and proc.returncode == -9
    assert half.name.endswith(".msg") and list((root / "incoming").iterdir()) == []
    from mailgate.spool import Spool

    spool = Spool(root)
    assert spool.pending() == 0 and spool.claim(10) == []
    spool.recover()
    assert [list((root / d).iterdir()) for d in ("tmp", "incoming", "shunt")] == [[], [], []]


def _blocked(tmp_path: Path) -> Path:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    return blocker


@pytest.mark.parametrize(
    ("what", "main_extra", "code", "says"),
    [
        ("spool", 'spool_dir = "{blocker}/spool"', 78, "spool"),
        ("database", 'database_url = "sqlite:///{blocker}/db/mailgate.sqlite"', 78, "database"),
        ("data dir", 'data_dir = "{blocker}/var"', 78, "data directory"),
        ("db server", 'database_url = "postgresql+psycopg://u@127.0.0.1:1/x"', 75, "database"),
    ],
)
@pytest.mark.parametrize("command", ["run", "process"])
def test_start_up_failures_are_one_line_and_an_exit_code(
    tmp_path, what, main_extra, code, says, command
):
    blocker = _blocked(tmp_path)
    path = write_config(tmp_path, main_extra=main_extra.format(blocker=blocker))
    text = path.read_text()
    if "data_dir" in main_extra:  # the harness sets one already: this one replaces it
        text = text.replace('data_dir = "../var"\n', "", 1)
    path.write_text(text)
    r = mailgate(path, command, timeout=60)
    err = r.stderr.decode()
    assert r.returncode == code, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("mailgate: cannot start: " + says), lines


def test_a_busy_listener_port_is_one_line_and_exit_75(tmp_path: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        path = write_config(tmp_path, listen_port=busy.getsockname()[1])
        r = mailgate(path, "run", timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 75, err
    assert err.strip().splitlines() == [err.strip()] and "cannot start: listener" in err, err


def test_a_replaced_sqlite_file_stops_commits_and_loses_nothing(tmp_path: Path):
    cfg = load(write_config(tmp_path))
    db_file = Path(cfg.database_url.removeprefix("sqlite:///"))
    with running(cfg) as d:
        d.send(message(subject="before"))
        wait_until(lambda: tickets(d.engine))
        moved = db_file.with_name("moved-away.sqlite")
        os.rename(db_file, moved)  # the old file lives on, under another name
        d.send(message(subject="after"))  # acknowledged: 250 from the listener
        worker = d.daemon._worker
        wait_until(lambda: worker.halted, what="the worker noticing the replaced file")
        assert "was removed" in worker.halted and str(db_file) in worker.halted
        assert d.daemon.spool.pending() == 1  # kept, not committed into the moved file
        assert [t.title for t in tickets(d.engine)] == ["before"]
    # back in place (or a restored backup): the next start commits what the spool kept
    os.rename(moved, db_file)
    with running(cfg) as d:
        wait_until(lambda: len(tickets(d.engine)) == 2)
        assert sorted(t.title for t in tickets(d.engine)) == ["after", "before"]
