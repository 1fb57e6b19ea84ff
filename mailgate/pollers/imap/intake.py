"""Taking one selected folder's new messages into the spool, in UID order.

The order per message is fixed (see poller.py): fetch, spool write, then \\Seen or MOVE,
then the checkpoint. `halt` is checked between messages: a fetched message not yet
written stays on the server untouched.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

from imapclient import IMAPClient

from mailgate.config.imap import ImapSettings
from mailgate.pollers.imap.checkpoint import Checkpoint, CheckpointStore
from mailgate.pollers.imap.connection import FolderMissing, forget_untagged
from mailgate.runtime import chunks
from mailgate.spool import Envelope, Spool

log = logging.getLogger(__name__)

SEEN = b"\\Seen"
DELETED = b"\\Deleted"


def _group_by_bytes(uids: list[int], sizes: dict[int, int], limit: int) -> Iterator[list[int]]:
    group: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if group and total + size > limit:
            yield group
            group, total = [], 0
        group.append(uid)
        total += size
    if group:
        yield group


class FolderIntake:
    """One folder of one queue's mailbox: what is new since the checkpoint goes to the spool."""

    def __init__(
        self,
        queue: str,
        settings: ImapSettings,
        folder: str,
        spool: Spool,
        checkpoints: CheckpointStore,
        envelope: Envelope,
        halt: threading.Event,
        on_spooled: Callable[[], None] | None,
    ):
        self.queue = queue
        self.settings = settings
        self.folder = folder
        self.where = f"{settings.account()}/{folder}"  # for log lines that name the queue
        self.spool = spool
        self.checkpoints = checkpoints
        self.envelope = envelope
        self.halt = halt
        self.on_spooled = on_spooled  # called from the poller thread after spool writes
        self.taken = 0  # messages put into the spool (for tests and stats)
        self._last_uid = 0
        self._uidvalidity = 0

    def open(self, client: IMAPClient) -> None:
        s = self.settings
        if not client.folder_exists(self.folder):
            raise FolderMissing(f"imap {self.where}: folder {self.folder!r} does not exist")
        if s.action == "move" and not client.folder_exists(s.move_to):
            raise FolderMissing(
                f"imap {self.where}: move_to folder {s.move_to!r} does not exist on {s.account()}"
            )
        info = client.select_folder(self.folder)
        uidvalidity = int(info[b"UIDVALIDITY"])
        cp = self.checkpoints.load()
        if cp is None:
            log.info("queue %s: %s: first run, taking every message", self.queue, self.where)
            cp = Checkpoint(uidvalidity, 0)
            self.checkpoints.save(cp)
        elif cp.uidvalidity != uidvalidity:
            log.warning(
                "queue %s: %s: UIDVALIDITY changed %d -> %d (folder recreated?): re-scanning "
                "from UID 1; the worker drops what it already has",
                self.queue,
                self.where,
                cp.uidvalidity,
                uidvalidity,
            )
            cp = Checkpoint(uidvalidity, 0)
            self.checkpoints.save(cp)
        self._uidvalidity, self._last_uid = cp.uidvalidity, cp.last_uid

    def _search_new(self, client: IMAPClient) -> list[int]:
        # `n:*` always matches the highest UID, even when it is below n: filter
        found = client.search(["UID", f"{self._last_uid + 1}:*", "UNDELETED"])
        return sorted(u for u in found if u > self._last_uid)

    # -- taking messages -----------------------------------------------------------------
    def drain(self, client: IMAPClient) -> None:
        """Take messages until a search finds nothing new (mail may arrive meanwhile)."""
        while not self.halt.is_set():
            forget_untagged(client)
            uids = self._search_new(client)
            if not uids:
                return
            for chunk in chunks(uids, self.settings.batch_size):
                if self.halt.is_set():
                    return
                self._take_chunk(client, chunk)

    def _take_chunk(self, client: IMAPClient, uids: list[int]) -> None:
        sizes = {
            uid: int(d.get(b"RFC822.SIZE", 0))
            for uid, d in client.fetch(uids, ["RFC822.SIZE"]).items()
        }
        present = [u for u in uids if u in sizes]  # others were expunged meanwhile
        for group in _group_by_bytes(present, sizes, self.settings.batch_max_bytes):
            if self.halt.is_set():
                return
            self._take_group(client, group)
        if not self.halt.is_set():
            self._advance(uids[-1])

    def _take_group(self, client: IMAPClient, uids: list[int]) -> None:
        data = client.fetch(uids, ["BODY.PEEK[]"])
        taken: list[int] = []
        done_upto = self._last_uid
        try:
            for uid in uids:
                if self.halt.is_set():
                    break  # fetched but not spooled: it stays on the server untouched
                item = data.pop(uid, None)
                raw = None if item is None else item.get(b"BODY[]")
                if raw is not None:
                    self.spool.put(bytes(raw), self.envelope)
                    taken.append(uid)
                    self.taken += 1
                done_upto = uid
        finally:
            # whatever the spool has gets its flag/move, even when stopping or failing;
            # if that fails, no checkpoint: the next session fetches (and dedupes) again
            if taken:
                if self.on_spooled:
                    self.on_spooled()
                self._acknowledge(client, taken)
                log.info(
                    "queue %s: %s: took %d message(s), UID %d..%d",
                    self.queue,
                    self.where,
                    len(taken),
                    taken[0],
                    taken[-1],
                )
            self._advance(done_upto)

    def _acknowledge(self, client: IMAPClient, uids: list[int]) -> None:
        if self.settings.action == "seen":
            client.add_flags(uids, [SEEN], silent=True)
            return
        target = self.settings.move_to
        if client.has_capability("MOVE"):
            client.move(uids, target)
            return
        client.copy(uids, target)
        client.add_flags(uids, [DELETED], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            client.expunge()

    def _advance(self, uid: int) -> None:
        if uid > self._last_uid:
            self._last_uid = uid
            self.checkpoints.save(Checkpoint(self._uidvalidity, uid))
