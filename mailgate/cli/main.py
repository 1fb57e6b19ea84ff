"""mailgate's command line: dispatch only (the parsers are in cli/parser.py).

`mailgate ingest` runs once per message the MTA pipes in, so its usual argument lists are
read without argparse (cli/ingest.py: `fast_arguments`); anything else, `--help` and every
mistake included, goes through argparse and gets its usage and errors.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from mailgate.cli import ingest

    fast = ingest.fast_arguments(argv)
    if fast is not None:
        return ingest.main(fast)
    from mailgate.cli import parser
    from mailgate.cli.commands import COMMANDS

    command = parser.named_command(argv)
    args = parser.build_parser(command if command in COMMANDS else None).parse_args(argv)
    return int(parser.module_of(args.command).main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
