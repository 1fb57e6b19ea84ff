"""HTML to text: mailgate's converter (parse/html_text.py) against inscriptis and
selectolax, measured on the corpus.

    .venv/bin/python bench/html_text_compare.py

The peers are installed into bench/.venv-peers (never product dependencies). Two
measures:

- agreement with the sender's own plain text: for every multipart/alternative message of
  tests/data/corpus with both a text/plain and a text/html part, the word F1 of the HTML
  rendering against the plain part (words lower-cased, as multisets);
- HTML-only agent replies (tests/reply_clients.HTML_REPLIES: Gmail, Outlook desktop and
  web, Apple Mail, Thunderbird): is the answer the splitter reads from the rendering
  exactly the agent's text;

and the time to convert every HTML part of the corpus (best of 3 runs).
"""

from __future__ import annotations

import email
import re
import sys
import time
from collections import Counter
from email.policy import default
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.reply_compare import run_peers  # noqa: E402
from mailgate.agents.reply import split_reply  # noqa: E402
from mailgate.parse.html_text import html_to_text  # noqa: E402
from tests import reply_clients as clients  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "corpus"
ANSWER = "Hello Carla,\n\nplease switch it off and on again.\n\nBest regards,\nBob"
_WORD = re.compile(r"\w+")

_PEER_RUNNER = r"""
import json, sys, time
htmls = json.load(sys.stdin)
out = {}
def timed(fn):
    best, texts = None, None
    for _ in range(3):
        t = time.perf_counter()
        texts = [fn(h) for h in htmls]
        d = time.perf_counter() - t
        best = d if best is None else min(best, d)
    return {"texts": texts, "seconds": best}
try:
    from inscriptis import get_text
    out["inscriptis"] = timed(lambda h: get_text(h))
except Exception as e:
    out["inscriptis"] = repr(e)
try:
    from selectolax.lexbor import LexborHTMLParser as HTMLParser
    def sx(h):
        tree = HTMLParser(h)
        for node in tree.css("script, style, head"):
            node.decompose()
        root = tree.body or tree.root
        return root.text(separator="\n", strip=True) if root else ""
    out["selectolax"] = timed(sx)
except Exception as e:
    out["selectolax"] = repr(e)
print(json.dumps(out))
"""


def _parts(msg: email.message.EmailMessage) -> tuple[str, str]:
    plain = html = ""
    for part in msg.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        try:
            if part.get_content_type() == "text/plain" and not plain:
                plain = str(part.get_content())
            elif part.get_content_type() == "text/html" and not html:
                html = str(part.get_content())
        except (LookupError, ValueError, AssertionError):
            continue
    return plain, html


def corpus() -> tuple[list[str], list[tuple[int, str]]]:
    """Every HTML part, and (index, plain text) for the messages that have both."""
    htmls: list[str] = []
    pairs: list[tuple[int, str]] = []
    for path in sorted(CORPUS.rglob("*")):
        if not path.is_file() or path.suffix in (".md", ".tsv") or path.stat().st_size > 1_000_000:
            continue
        msg = email.message_from_bytes(path.read_bytes(), policy=default)
        plain, html = _parts(msg)  # type: ignore[arg-type]
        if html:
            if plain.strip():
                pairs.append((len(htmls), plain))
            htmls.append(html)
    return htmls, pairs


def f1(reference: str, got: str) -> float:
    want, have = Counter(_WORD.findall(reference.lower())), Counter(_WORD.findall(got.lower()))
    common = sum((want & have).values())
    if not common:
        return 0.0
    precision, recall = common / sum(have.values()), common / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def main() -> None:
    htmls, pairs = corpus()
    replies = list(clients.HTML_REPLIES.values())
    results: dict[str, dict | str] = {}
    best = None
    for _ in range(3):
        t = time.perf_counter()
        texts = [html_to_text(h) for h in htmls + replies]
        d = time.perf_counter() - t
        best = d if best is None else min(best, d)
    results["mailgate html_text"] = {"texts": texts, "seconds": best}
    results.update(run_peers(("inscriptis", "selectolax"), _PEER_RUNNER, htmls + replies))
    print(f"{len(htmls)} HTML parts in the corpus, {len(pairs)} with the sender's plain text")
    print(
        "| converter | word F1 vs the plain part (mean) | HTML replies read right | ms, all parts |"
    )
    print("|---|---|---|---|")
    for name, r in results.items():
        if isinstance(r, str):
            print(f"| {name} | not run: {r[:60]} | | |")
            continue
        texts = r["texts"]
        mean = sum(f1(plain, texts[i]) for i, plain in pairs) / max(1, len(pairs))
        right = sum(split_reply(t).text == ANSWER for t in texts[len(htmls) :])
        print(f"| {name} | {mean:.3f} | {right}/{len(replies)} | {r['seconds'] * 1000:.0f} |")


if __name__ == "__main__":
    main()
