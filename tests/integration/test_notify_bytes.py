"""The agents' notifications of a drain, byte for byte, as main made them before issue 16's
second pass on the notifications' CPU.

The test corpus (tests/data/corpus: HTML mails, attachments, non-ASCII subjects and names,
follow-ups) is drained on a fixed clock, three seconds a message, with two agents notified
of every customer mail of the queue, as the shipped config does. Every outbox row (kind,
Message-ID, recipients, status, the held row's reason, the SHA-256 of its bytes) and every
send_log line must be what `tests/data/notify_outbox.json` recorded: made by running this
module (`python -m tests.integration.test_notify_bytes`) on main at bf76802. A change that
means to change what a notification says records the file again and says why.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from tests.integration.test_ack_bytes import DATA, drained_outbox, same_as_recorded

RECORDED = DATA / "notify_outbox.json"
AGENTS = """[[agents]]
name = "alice"
address = "alice@example.test"
full_name = "Alice Example"
description = "Senior engineer"
signature = "Alice, Example Support"
queues = ["support", "billing"]
tier = "L2"
role = "admin"

[[agents]]
name = "bob"
address = "bob@example.test"
full_name = "Bøb Exämple"
description = "Support engineer"
signature = "Bob, Example Support"
queues = ["support", "sales"]
tier = "L1"
role = "agent"
"""
NOTIFIED = {"support": "[agent_mail]\nnotify = true\n"}


def notified_outbox(root: Path) -> dict[str, list[list[object]]]:
    """The outbox rows and send_log lines of the corpus drained with two agents notified."""
    return drained_outbox(root, agents_toml=AGENTS, queue_extra=NOTIFIED)


def test_every_notification_is_what_it_was(tmp_path):
    # a batch queues its notifications after its mails' acknowledgements (store/batch.py,
    # `Notices`): their outbox ids come later than they did, their rows and bytes do not
    got = same_as_recorded(notified_outbox(tmp_path), RECORDED, in_order=False)
    kinds = {r[0] for r in got["outbox"]}
    assert {"notify-new_ticket", "notify-customer_reply"} <= kinds
    recipients = {r[2] for r in got["outbox"] if r[0].startswith("notify-")}
    assert recipients == {'["alice@example.test"]', '["bob@example.test"]'}


if __name__ == "__main__":  # record the file (on the code whose bytes are the reference)
    out = notified_outbox(Path(tempfile.mkdtemp(prefix="mg-notify-bytes-")))
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else RECORDED
    target.write_text(json.dumps(out, indent=0) + "\n")
    print(
        f"{len(out['outbox'])} outbox rows, {len(out['send_log'])} send_log lines", file=sys.stderr
    )
