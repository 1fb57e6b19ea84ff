"""How listings print: rich tables that never cut a cell, or JSON with `--json`.

On a terminal a table takes the terminal's width and wraps (folds) long cells, addresses
and reasons included, instead of cutting them; in a pipe or a file it takes the width its
content needs. `--json` prints the same rows as a JSON array of objects, every value whole.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console
from rich.table import Column, Table

console = Console(highlight=False, soft_wrap=True)
UNLIMITED = 100_000  # columns: a table in a pipe is as wide as its content


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the rows as a JSON array")


def table(*headers: str | Column, **kwargs: Any) -> Table:
    """A Table whose cells wrap and fold rather than end in an ellipsis."""
    columns = [h if isinstance(h, Column) else Column(h, overflow="fold") for h in headers]
    return Table(*columns, **kwargs)


def print_table(t: Table, out: Console | None = None) -> None:
    out = out or console
    if not out.is_terminal:  # a pipe or a file: as wide as the content, never cut
        out = Console(file=out.file, width=UNLIMITED, highlight=False, color_system=None)
    out.print(t)


def print_json(rows: Iterable[Mapping[str, Any] | Any]) -> None:
    data = [dataclasses.asdict(r) if dataclasses.is_dataclass(r) else dict(r) for r in rows]
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def bad_choice(option: str, value: str, valid: Iterable[str]) -> int:
    """An unknown option value: the usage error (exit 2), naming the valid ones."""
    names = ", ".join(sorted(valid)) or "(none configured)"
    print(
        f"mailgate: error: {option}: unknown value {value!r} (choose from {names})", file=sys.stderr
    )
    return 2
