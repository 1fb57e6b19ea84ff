"""`mailgate run`: the daemon."""

from __future__ import annotations

import argparse
import os
import sys

from mailgate.cli.startup import checked_config, ensure_secret, setup_logging


def add_arguments(p: argparse.ArgumentParser) -> None:
    """No options of its own."""


def main(args: argparse.Namespace) -> int:
    cfg = checked_config(args.config)
    setup_logging(args.log_level or cfg.main.log_level)
    ensure_secret(cfg)
    from mailgate import app
    from mailgate.spool import SpoolLocked
    from mailgate.startup import StartupError

    try:
        app.run(cfg)
    except SpoolLocked as e:
        print(f"mailgate: {e}", file=sys.stderr)
        return os.EX_TEMPFAIL
    except StartupError as e:  # one line, no traceback: the exit code says what kind
        print(f"mailgate: cannot start: {e}", file=sys.stderr)
        return e.exit_code
    return os.EX_OK
