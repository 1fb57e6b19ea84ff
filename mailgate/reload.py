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


def _snapshot(dirs: tuple[Path, ...]) -> dict[Path, tuple[int, int]]:
    """Each config file's (mtime, size): what a rescan compares, for changes no event told."""
    seen: dict[Path, tuple[int, int]] = {}
    for d in dirs:
        for path in d.glob("*.toml"):
            try:
                st = path.stat()
            except OSError:  # removed between the listing and the stat
                continue
            seen[path] = (st.st_mtime_ns, st.st_size)
    return seen


async def watch(
    current: Callable[[], Config],
    reload: Callable[[], object],
    stop: asyncio.Event,
    *,
    debounce_ms: int = 300,
    rescan_ms: int = 2_000,
) -> None:
    """Call `reload()` after each settled burst of changes until `stop` is set."""
    from watchfiles import awatch

    while not stop.is_set():
        dirs = watched_dirs(current())
        log.info("watching %s for config changes", ", ".join(map(str, dirs)))
        seen = _snapshot(dirs)
        # every rescan_ms without events the files are compared with `seen`: an edit made
        # before the watch was set up (just after start) or one the OS did not report is
        # still found, a few seconds late
        async for changes in awatch(
            *dirs,
            stop_event=stop,
            watch_filter=_is_config_file,
            debounce=debounce_ms,
            recursive=False,
            rust_timeout=rescan_ms,
            yield_on_timeout=True,
        ):
            now = _snapshot(dirs)
            if changes:
                log.info("config change: %s", ", ".join(sorted({p for _, p in changes})))
            elif now != seen:
                edited = sorted(
                    str(p) for p in now.keys() | seen.keys() if now.get(p) != seen.get(p)
                )
                log.info("config change (found by a rescan): %s", ", ".join(edited))
            else:
                continue
            seen = now
            reload()
            if watched_dirs(current()) != dirs:
                break  # queues_dir or agents_file moved: watch the new places
