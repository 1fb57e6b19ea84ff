"""Live reload: the configuration's directories watched with watchfiles.

A change to a `*.toml` file there (an edit, a new or removed queue file) calls the
daemon's reload, the same one SIGHUP calls: the whole new configuration is loaded and
validated, then switched in one step; an invalid one is logged (once per distinct set of
problems) and the last good one stays in force.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from mailgate.config.model import Config

log = logging.getLogger(__name__)


def watched_dirs(config: Config) -> tuple[Path, ...]:
    """The directory of mailgate.toml, and the queue and agents directories if elsewhere."""
    base = config.path.parent
    dirs = {base}
    dirs.update(q.source.parent for q in config.queues)
    dirs.add((base / config.main.queues_dir).resolve())
    dirs.add((base / config.main.agents_file).resolve().parent)
    return tuple(sorted(d for d in dirs if d.is_dir()))


def _is_config_file(_change: object, path: str) -> bool:
    return path.endswith(".toml")


async def watch(
    current: Callable[[], Config],
    reload: Callable[[], object],
    stop: asyncio.Event,
    *,
    debounce_ms: int = 300,
) -> None:
    """Call `reload()` after each settled burst of changes until `stop` is set."""
    from watchfiles import awatch

    while not stop.is_set():
        dirs = watched_dirs(current())
        log.info("watching %s for config changes", ", ".join(map(str, dirs)))
        async for changes in awatch(
            *dirs,
            stop_event=stop,
            watch_filter=_is_config_file,
            debounce=debounce_ms,
            recursive=False,
        ):
            log.info("config change: %s", ", ".join(sorted({p for _, p in changes})))
            reload()
            if watched_dirs(current()) != dirs:
                break  # queues_dir or agents_file moved: watch the new places
