"""Live reload under a running daemon: queue files edited while mail keeps flowing.

The daemon watches its config directory (mailgate/reload.py). Each edit below is written
to disk, never announced: the test waits for the daemon to take it (or to refuse it) and
then checks which config is in force and which IMAP mailboxes a real Dovecot is polled at.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests import harness
from tests.integration.test_imap import PASSWORD, folder_ids
from tests.integration.test_imap import message as imap_message
from tests.servers import Dovecot


def _imap(d: Dovecot, user: str, extra: str = "") -> str:
    return (
        f'\n[imap]\nhost = "{d.host}"\nport = {d.port}\ntls = "none"\nuser = "{user}"\n'
        f'password_file = "../password"\nmove_to = "Archive"\ntimeout_seconds = 10\n'
        # while idling, look again every 2 s: a new-mail notice Dovecot did not send in
        # IDLE (seen here about once in five runs, cause not found) costs 2 s, not the
        # test's 30 s wait (the poller's behaviour on a missed notice, not reload's, which
        # this test is about)
        f"poll_interval_seconds = 2\n{extra}"
    )


def _queues_of(engine) -> list[str]:
    return [t.queue for t in harness.tickets(engine)]


def test_queue_file_edits_under_a_running_daemon(
    tmp_path: Path, dovecot_factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server: Dovecot = dovecot_factory()
    path = harness.write_config(
        tmp_path, queue_extra={"support": _imap(server, "support@example.test")}
    )
    (path.parent / "password").write_text(PASSWORD)
    queues = path.parent / "queues"
    billing, sales, support = (queues / f"{n}.toml" for n in ("billing", "sales", "support"))
    sales_good = sales.read_text()
    sent = 0

    def smtp(to: str = "sales@example.test") -> None:
        nonlocal sent
        sent += 1
        d.send(harness.message(to=to, subject=f"smtp {sent}"), rcpts=[to])

    def imap(user: str, n: int) -> None:
        nonlocal sent
        sent += 1
        server.append(user, imap_message(n, to=user, tag=user.split("@")[0]))

    def all_in() -> None:
        harness.wait_until(lambda: harness.article_count(d.engine) == sent, 30, f"{sent} articles")

    def mailboxes() -> list[str]:
        assert d.daemon._pollers is not None
        return d.daemon._pollers.keys

    account = f"@{server.host}:{server.port}/INBOX"
    with harness.running(harness.load(path)) as d:
        harness.wait_until(lambda: mailboxes() == [f"support/support@example.test{account}"])
        imap("support@example.test", 1)
        smtp()
        all_in()

        # 1. valid edit, mailbox added: billing gets an [imap] table
        billing.write_text(billing.read_text() + _imap(server, "billing@example.test"))
        harness.wait_until(lambda: len(mailboxes()) == 2, 20, "the billing poller")
        assert d.daemon.config.queue("billing").imap is not None  # type: ignore[union-attr]
        imap("billing@example.test", 2)
        smtp()
        all_in()
        assert _queues_of(d.engine).count("billing") == 1

        # 2. invalid edit: refused once, with file, key and reason; the last good config stays
        before = d.daemon.config
        sales.write_text(sales_good.replace('addresses = ["sales@example.test"]', "addresses = 7"))
        problem = "sales.toml: addresses: must be a list"
        harness.wait_until(lambda: problem in caplog.text, 20, "the rejection")
        changes = caplog.text.count("config change:")
        sales.write_text(sales.read_text())  # the same bad content again: a second event
        harness.wait_until(lambda: caplog.text.count("config change:") > changes, 20, "event")
        assert caplog.text.count(problem) == 1
        assert d.daemon.config is before
        smtp()  # the running config still serves sales@
        imap("billing@example.test", 3)
        all_in()

        # 3. valid again, with a new address: in force at once
        sales.write_text(
            sales_good.replace(
                '["sales@example.test"]', '["sales@example.test", "vertrieb@example.test"]'
            )
        )
        harness.wait_until(lambda: d.daemon.config is not before, 20, "the fixed config")
        assert d.daemon.config.queue("sales").addresses == (  # type: ignore[union-attr]
            "sales@example.test",
            "vertrieb@example.test",
        )
        smtp("vertrieb@example.test")
        all_in()
        assert _queues_of(d.engine)[-1] == "sales"

        # 4. mailbox changed: billing moves its mail elsewhere -> its poller restarts
        c = server.login("billing@example.test")
        c.create_folder("Done")
        c.logout()
        old = d.daemon._pollers.pollers[f"billing/billing@example.test{account}"]  # type: ignore[union-attr]
        billing.write_text(billing.read_text().replace('move_to = "Archive"', 'move_to = "Done"'))
        harness.wait_until(
            lambda: (
                d.daemon._pollers.pollers.get(f"billing/billing@example.test{account}")  # type: ignore[union-attr]
                not in (None, old)
            ),
            20,
            "the restarted billing poller",
        )
        assert old.halt.is_set()
        imap("billing@example.test", 4)
        all_in()
        harness.wait_until(lambda: folder_ids(server, "billing@example.test", "Done"), 10, "moved")

        # 5. mailbox removed: support's poller stops; its new mail stays on the server
        support.write_text(support.read_text().split("\n[imap]\n")[0] + "\n")
        harness.wait_until(lambda: len(mailboxes()) == 1, 20, "support's poller to stop")
        assert d.daemon.config.queue("support").imap is None  # type: ignore[union-attr]
        server.append(
            "support@example.test", imap_message(5, to="support@example.test", tag="late")
        )
        imap(
            "billing@example.test", 6
        )  # billing still polled: once it is in, support had its chance
        smtp()
        all_in()
        assert "<late-5@customer.example>" in folder_ids(server, "support@example.test", "INBOX")
    assert harness.article_count(d.engine) == sent == 10
    assert caplog.text.count("config reload rejected") == 1


def test_a_toml_syntax_error_is_logged_once_with_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    path = harness.write_config(tmp_path)
    sales = path.parent / "queues" / "sales.toml"
    good = sales.read_text()
    with harness.running(harness.load(path)) as d:
        before = d.daemon.config
        sales.write_text(good.replace('name = "sales"', 'name = "sales'))  # unterminated
        harness.wait_until(lambda: "not valid TOML" in caplog.text, 20, "the rejection")
        (line,) = [r.getMessage() for r in caplog.records if "not valid TOML" in r.getMessage()]
        assert f"{sales}: not valid TOML" in line and "(at line 1," in line
        assert d.daemon.config is before
        d.send(harness.message(to="sales@example.test"), rcpts=["sales@example.test"])
        harness.wait_until(lambda: harness.article_count(d.engine) == 1, 20, "the mail")
        sales.write_text(good)
        harness.wait_until(lambda: d.daemon.config is not before, 20, "the good config back")
