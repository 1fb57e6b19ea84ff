"""`mailgate ingest` as an MTA pipe, and the admin commands around it, as real processes.

The exit code is the whole contract with the MTA: 0 only after the message is durable in
the spool, 75 (EX_TEMPFAIL: the MTA keeps the mail and retries) when anything on our side
is wrong, 65 (EX_DATAERR) for input that can never be mail. Then `mailgate process`,
`mailgate tickets` and `mailgate shunt` are run the way an admin would run them.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.db import engine as db
from mailgate.db.models import Ticket
from tests.harness import load, message, tickets, write_config
from tests.reliability.daemon_proc import mailgate
from tests.spool_layout import split

JUNK = bytes(range(256)) * 10


def _spooled(spool: Path, sub: str = "incoming") -> list[Path]:
    d = spool / sub
    return sorted(d.glob("*.msg")) if d.is_dir() else []


def _all_files(spool: Path) -> list[str]:
    return sorted(str(p.relative_to(spool)) for p in spool.rglob("*") if p.is_file())


def _ok(r) -> str:  # type: ignore[no-untyped-def]
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, f"exit {r.returncode}\n{out}\n{r.stderr.decode(errors='replace')}"
    return out


def test_ingest_spools_then_process_makes_a_ticket(tmp_path: Path):
    path = write_config(tmp_path)
    cfg = load(path)
    raw = message(sender="pipe@customers.example", subject="Came in through the pipe")
    r = mailgate(
        path,
        "ingest",
        "--sender",
        "pipe@customers.example",
        "--recipient",
        "support@example.test",
        stdin=raw,
    )
    _ok(r)
    files = _spooled(cfg.spool_dir)
    envelope, spooled = split(files[0])
    assert len(files) == 1 and spooled == raw  # one file: the envelope's line, then the bytes
    env = json.loads(envelope.to_json())
    assert env["source"] == "pipe" and env["mail_from"] == "pipe@customers.example"
    assert env["rcpt_tos"] == ["support@example.test"]

    out = _ok(mailgate(path, "process"))
    assert "stored 1," in out and "shunted 0" in out and "sent 1," in out, out
    assert _spooled(cfg.spool_dir) == [] and _spooled(cfg.spool_dir, "claimed") == []
    engine = db.make_engine(cfg.database_url)
    [t] = tickets(engine)
    assert t.queue == "support" and t.requester_addr == "pipe@customers.example"
    # no relay configured: the acknowledgement lands in the outbox maildir
    assert len(list((cfg.outbox_maildir / "new").iterdir())) == 1

    listing = _ok(mailgate(path, "tickets", "list"))
    assert "Came in through the pipe" in listing and "pipe@customers.example" in listing
    assert f"\n│ {t.id} " in listing, listing
    shown = _ok(mailgate(path, "tickets", "show", str(t.id)))
    assert f"#{t.id} Came in through the pipe" in shown
    assert "my printer is broken." in shown
    assert "outbox ack to pipe@customers.example: sent" in shown
    r = mailgate(path, "tickets", "show", "999")
    assert r.returncode == 1 and "no ticket #999" in r.stdout.decode()


def test_ingest_queue_option_and_header_routing(tmp_path: Path):
    path = write_config(tmp_path)
    cfg = load(path)
    to_support = message(sender="money@customers.example", subject="invoice", to="support@x.test")
    _ok(mailgate(path, "ingest", "--queue", "billing", stdin=to_support))
    # no --queue and no envelope: the pipe falls back to the To header
    to_sales = message(sender="buyer@customers.example", subject="quote", to="sales@example.test")
    _ok(mailgate(path, "ingest", stdin=to_sales))
    out = _ok(mailgate(path, "process"))
    assert "stored 2," in out, out
    with Session(db.make_engine(cfg.database_url)) as s:
        got = {t.title: (t.queue, {q.queue for q in t.queues}) for t in s.scalars(select(Ticket))}
    assert got == {"invoice": ("billing", {"billing"}), "quote": ("sales", {"sales"})}
    billing = _ok(mailgate(path, "tickets", "list", "--queue", "billing"))
    assert "invoice" in billing and "quote" not in billing


def test_ingest_exit_codes_and_nothing_written_on_failure(tmp_path: Path):
    path = write_config(tmp_path)
    cfg = load(path)
    _ok(mailgate(path, "ingest", stdin=message(subject="first")))
    before = _all_files(cfg.spool_dir)
    assert len(before) == 1  # NAME.msg

    codes = {}
    r = mailgate(path, "ingest", stdin=b"")
    codes["empty"] = (r.returncode, r.stderr.decode())
    r = mailgate(path, "ingest", stdin=b"\r\n\r\n  \n")
    codes["blank"] = (r.returncode, r.stderr.decode())
    r = mailgate(path, "ingest", stdin=b"X" * (cfg.listener.max_message_bytes + 1))
    codes["too big"] = (r.returncode, r.stderr.decode())
    r = mailgate(path, "ingest", "--queue", "nosuchqueue", stdin=message())
    codes["unknown queue"] = (r.returncode, r.stderr.decode())

    queue_file = path.parent / "queues" / "support.toml"
    good = queue_file.read_text()
    queue_file.write_text(good + "\n[autoresponse_typo]\nenabled = true\n")
    r = mailgate(path, "ingest", stdin=message())
    codes["broken config"] = (r.returncode, r.stderr.decode())
    queue_file.write_text(good)

    print("\ningest exit codes:", {k: v[0] for k, v in codes.items()})
    assert codes["empty"][0] == 65 and "empty" in codes["empty"][1]
    assert codes["blank"][0] == 65
    assert codes["too big"][0] == 65 and "larger than" in codes["too big"][1]
    assert codes["unknown queue"][0] == 75 and "nosuchqueue" in codes["unknown queue"][1]
    rc, err = codes["broken config"]
    assert rc == 75, err
    assert str(queue_file) in err and "autoresponse_typo" in err and "unknown key" in err, err
    assert _all_files(cfg.spool_dir) == before, "a failed ingest wrote into the spool"


def test_ingest_spool_not_writable_is_tempfail(tmp_path: Path):
    # root ignores permission bits, so block the spool by making its path a regular file
    path = write_config(tmp_path, main_extra='spool_dir = "../spool-is-a-file"')
    blocker = tmp_path / "spool-is-a-file"
    blocker.write_bytes(b"not a directory\n")
    r = mailgate(path, "ingest", stdin=message())
    err = r.stderr.decode()
    print(f"\nspool path is a file: exit {r.returncode}: {err.strip()}")
    assert r.returncode == 75, err
    assert "spool write failed" in err
    assert blocker.read_bytes() == b"not a directory\n"


def test_shunt_list_show_retry_discard(tmp_path: Path):
    path = write_config(tmp_path)
    cfg = load(path)
    # the pipe takes any bytes (the MTA would otherwise bounce them); the worker shunts them
    _ok(mailgate(path, "ingest", stdin=JUNK))
    out = _ok(mailgate(path, "process"))
    assert "stored 0," in out and "shunted 1;" in out, out
    [entry] = _spooled(cfg.spool_dir, "shunt")
    name = entry.stem

    listing = _ok(mailgate(path, "shunt", "list"))
    assert name in listing and "parse" in listing and "no header block" in listing, listing
    shown = _ok(mailgate(path, "shunt", "show", name))
    assert "failed at parse" in shown and "no header block" in shown, shown
    assert f"first bytes of the message ({len(JUNK)} bytes)" in shown

    out = _ok(mailgate(path, "shunt", "retry", name))
    assert "1 message(s) back in the spool" in out
    assert [p.stem for p in _spooled(cfg.spool_dir)] == [name]
    assert _spooled(cfg.spool_dir, "shunt") == []
    out = _ok(mailgate(path, "process"))
    assert "shunted 1;" in out, out
    # (the history kept across a retry, no stray files: test_poison.py)
    assert "failed at parse" in _ok(mailgate(path, "shunt", "show", name))
    assert split(entry)[1] == JUNK  # the bytes are never changed

    out = _ok(mailgate(path, "shunt", "discard", name))
    assert f"discarded {name}" in out
    assert _spooled(cfg.spool_dir, "shunt") == []
    assert name not in _ok(mailgate(path, "shunt", "list"))
    for action in ("show", "retry", "discard"):
        r = mailgate(path, "shunt", action, name)
        assert r.returncode == 1 and "no shunted message" in r.stderr.decode(), action
    assert tickets(db.make_engine(cfg.database_url)) == []


def test_shunt_list_names_survive_a_pipe(tmp_path: Path):
    """`mailgate shunt list | ...` (no terminal, no $COLUMNS) must print whole entry names.

    The name is what `shunt show/retry/discard` take; rich draws tables 80 columns wide
    when stdout is not a terminal and cuts the name to '0179...-2…'.
    """
    path = write_config(tmp_path)
    cfg = load(path)
    _ok(mailgate(path, "ingest", stdin=JUNK))
    _ok(mailgate(path, "process"))
    [entry] = _spooled(cfg.spool_dir, "shunt")
    listing = _ok(mailgate(path, "shunt", "list", columns=None))
    assert entry.stem in listing, f"entry name {entry.stem} cut in `shunt list`:\n{listing}"
