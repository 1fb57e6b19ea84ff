"""Repetitive issues: tickets of the month whose titles and first mails say nearly the same
thing, grouped (MinHash signatures from datasketch, LSH banding, each link checked
against the threshold). Pure.

Two tickets are alike when the Jaccard similarity of their word sets (title and the
start of the first mail, lower-cased, digits and common words taken out) is at least
`threshold`; a cluster is the alike-chains of at least `min_size` tickets.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from datasketch import MinHash, MinHashLSH

from mailgate.report.rows import TicketRow

NUM_PERM = 64
_PARAMS = {"num_perm": NUM_PERM, "seed": 1}
CHUNK = 4096
BODY_CHARS = 300
EXAMPLES = 5
_WORD = re.compile(r"[^\W\d_]{3,}")
STOPWORDS = frozenset(
    """the and for you your our with this that have has was are not but can from they them
    will would could please hello thanks thank regards dear there here what when which also
    just been into about any all get got out how why who its""".split()  # noqa: SIM905
)


def words(t: TicketRow) -> frozenset[str]:
    text = f"{t.title} {t.body[:BODY_CHARS]}".lower()
    text = re.sub(r"^(?:re|aw|fwd?|wg)\s*:\s*", "", text)
    return frozenset(w for w in _WORD.findall(text) if w not in STOPWORDS)


class _Sets:
    """Union-find over ticket positions."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def _signatures(sets: Sequence[frozenset[str]]) -> np.ndarray:
    """Each set's MinHash signature (one row per set).

    A set's MinHash is the element-wise minimum of its words' hash values, so datasketch
    hashes each distinct word once and the sets take the minimum over their words' rows:
    the signatures MinHash.update would give, at a fraction of the cost per ticket.
    """
    vocab = sorted(set().union(*sets))
    index = {w: i for i, w in enumerate(vocab)}
    per_word = MinHash.bulk([[w.encode("utf-8", "surrogatepass")] for w in vocab], **_PARAMS)
    # hash values are below 2**32 (datasketch's max_hash): uint32 halves the memory
    table = np.vstack([m.hashvalues for m in per_word]).astype(np.uint32)
    out = []
    for lo in range(0, len(sets), CHUNK):  # bounded memory: CHUNK sets at a time
        part = sets[lo : lo + CHUNK]
        order = np.fromiter((index[w] for s in part for w in s), dtype=np.int64)
        starts = np.cumsum([0, *(len(s) for s in part[:-1])])
        out.append(np.minimum.reduceat(table[order], starts, axis=0))
    return np.vstack(out)


def _link(sig: np.ndarray, threshold: float) -> _Sets:
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)  # picks the bands for us
    bands, width = lsh.b, lsh.r
    found = _Sets(len(sig))
    for b in range(bands):
        part = np.ascontiguousarray(sig[:, b * width : (b + 1) * width])
        keys = part.view(np.dtype((np.void, part.dtype.itemsize * width))).ravel()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        heads = first[inverse.ravel()]
        members = np.nonzero(heads != np.arange(len(sig)))[0]
        # each candidate's estimated Jaccard similarity to its bucket's first ticket
        alike = (sig[members] == sig[heads[members]]).mean(axis=1) >= threshold
        for i, h in zip(members[alike].tolist(), heads[members[alike]].tolist(), strict=True):
            found.union(i, h)
    return found


def repetitive_issues(
    tickets: Sequence[TicketRow], *, threshold: float, min_size: int, top: int
) -> list[dict[str, Any]]:
    """The largest clusters: count, a label (the most common title), example ticket ids."""
    docs = [(t, w) for t in tickets if len(w := words(t)) >= 2]
    if len(docs) < min_size:
        return []
    found = _link(_signatures([w for _, w in docs]), threshold)
    groups: dict[int, list[TicketRow]] = {}
    for i, (t, _) in enumerate(docs):
        groups.setdefault(found.find(i), []).append(t)
    clusters = [g for g in groups.values() if len(g) >= min_size]
    clusters.sort(key=lambda g: (-len(g), min(t.id for t in g)))
    out = []
    for g in clusters[:top]:
        titles = Counter(t.title.strip() for t in g)
        label = sorted(titles.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        shared = Counter(w for t in g for w in words(t)).most_common(5)
        out.append(
            {
                "label": label,
                "count": len(g),
                "words": [w for w, _ in shared],
                "queues": sorted({t.queue for t in g}),
                "examples": sorted(t.id for t in g)[:EXAMPLES],
            }
        )
    return out
