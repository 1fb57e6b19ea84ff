"""`mailgate process`: the spool once and the due outbox, then exit (the daemon does this
continuously)."""

from __future__ import annotations

import argparse
import os
import sys

from mailgate.cli.startup import checked_config, ensure_secret, log_warnings, setup_logging


def add_arguments(p: argparse.ArgumentParser) -> None:
    """No options of its own."""


def main(args: argparse.Namespace) -> int:
    cfg = checked_config(args.config)
    setup_logging(args.log_level or cfg.main.log_level)
    ensure_secret(cfg)  # agent mail it sends carries reply tokens
    from mailgate.outgoing.sender import Sender
    from mailgate.pgp.keyring import Keyrings
    from mailgate.pipeline.steps import Pipeline
    from mailgate.pipeline.worker import Worker
    from mailgate.spool import SpoolLocked
    from mailgate.startup import StartupError, open_stores

    try:
        db, spool = open_stores(cfg)
    except (StartupError, SpoolLocked) as e:  # one line, no traceback, like `mailgate run`
        print(f"mailgate: cannot start: {e}", file=sys.stderr)
        return e.exit_code if isinstance(e, StartupError) else os.EX_TEMPFAIL
    log_warnings(cfg)  # once started: a failed start stays one line
    with Keyrings() as keyrings:  # closing stops the gpg-agents the keyrings started
        r = Worker(cfg, db, spool, Pipeline(cfg, keyrings=keyrings)).drain()
        sent, deferred, failed = Sender(cfg, db, keyrings=keyrings).send_due(limit=10_000)
    print(
        f"stored {r.stored}, duplicates {r.duplicates}, retried {r.retried}, "
        f"shunted {r.shunted}; sent {sent}, deferred {deferred}, failed {failed}"
    )
    return 0
