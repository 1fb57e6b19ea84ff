"""`check-config --connect`: log in to every configured mailbox folder and report."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mailgate.config.load import Config, ConfigError
from mailgate.pollers.imap.connection import connect, describe_error, logout
from mailgate.pollers.imap_settings import ImapSettings, parse_imap


@dataclass(frozen=True)
class MailboxCheck:
    queue: str
    mailbox: str
    ok: bool
    detail: str


def _check_folder(queue: str, settings: ImapSettings, folder: str) -> MailboxCheck:
    mailbox = f"{settings.account()}/{folder}"
    try:
        client = connect(settings)
    except Exception as e:
        return MailboxCheck(queue, mailbox, False, describe_error(e, settings))
    try:
        if not client.folder_exists(folder):
            return MailboxCheck(queue, mailbox, False, f"folder {folder!r} does not exist")
        if settings.action == "move" and not client.folder_exists(settings.move_to):
            return MailboxCheck(
                queue, mailbox, False, f"move_to folder {settings.move_to!r} does not exist"
            )
        info = client.select_folder(folder, readonly=True)
        caps = [c for c in ("IDLE", "MOVE", "UIDPLUS") if client.has_capability(c)]
        detail = (
            f"ok: {int(info.get(b'EXISTS', 0))} message(s), UIDVALIDITY "
            f"{int(info[b'UIDVALIDITY'])}, {'+'.join(caps) or 'no IDLE (polling)'}"
        )
        return MailboxCheck(queue, mailbox, True, detail)
    except Exception as e:
        return MailboxCheck(queue, mailbox, False, describe_error(e, settings))
    finally:
        logout(client)


def check_mailboxes(config: Config, *, max_workers: int = 8) -> list[MailboxCheck]:
    """Log in to every configured mailbox folder; report ok or exactly what failed."""
    jobs: list[tuple[str, ImapSettings, str]] = []
    out: list[MailboxCheck] = []
    for q in config.queues:
        try:
            settings = parse_imap(q)
        except ConfigError as e:
            out.append(MailboxCheck(q.name, "(config)", False, "; ".join(e.problems)))
            continue
        if settings is not None:
            jobs.extend((q.name, settings, f) for f in settings.folders)
    if jobs:
        with ThreadPoolExecutor(max_workers=min(max_workers, len(jobs))) as pool:
            out.extend(pool.map(lambda j: _check_folder(*j), jobs))
    return out
