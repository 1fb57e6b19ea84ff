"""`check-config --connect`: log in to every configured mailbox folder and report."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mailgate.config.imap import ImapSettings
from mailgate.config.model import Config
from mailgate.oauth2.client import TokenClient
from mailgate.oauth2.clients import imap_tokens
from mailgate.pollers.imap.connection import connect, describe_error, logout


@dataclass(frozen=True)
class MailboxCheck:
    queue: str
    mailbox: str
    ok: bool
    detail: str


def _check_folder(
    queue: str, settings: ImapSettings, folder: str, tokens: TokenClient | None
) -> MailboxCheck:
    mailbox = f"{settings.account()}/{folder}"
    try:
        client = connect(settings, tokens)
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
        if tokens is not None:
            detail += f"; {tokens.status()}"
        return MailboxCheck(queue, mailbox, True, detail)
    except Exception as e:
        return MailboxCheck(queue, mailbox, False, describe_error(e, settings))
    finally:
        logout(client)


def check_mailboxes(config: Config, *, max_workers: int = 8) -> list[MailboxCheck]:
    """Log in to every configured mailbox folder; report ok or exactly what failed."""
    jobs: list[tuple[str, ImapSettings, str, TokenClient | None]] = [
        (q.name, q.imap, f, imap_tokens(config, q))
        for q in config.queues
        if q.imap is not None
        for f in q.imap.folders
    ]
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(max_workers, len(jobs))) as pool:
        return list(pool.map(lambda j: _check_folder(*j), jobs))
