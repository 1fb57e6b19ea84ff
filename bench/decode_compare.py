"""Compare what mailgate decodes (subject, sender, body text, attachment list) with stdlib
`policy.default` and mail-parser over the whole corpus, and print every difference.

Usage: python3 bench/decode_compare.py [--all] [DIR ...]
Default dirs: tests/data/corpus and /work/shared/corpus (files deduplicated by sha256).
A field counts as "ours differs" only when both references agree with each other and not
with us, or when one reference failed and the other disagrees with us; --all also lists
fields where the two references disagree with each other. Texts are compared with runs of
whitespace collapsed; attachment lists as the count of parts. No assertions.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import logging
import sys
from collections import Counter
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailgate.parse.html_text import html_to_text  # noqa: E402
from mailgate.parse.limits import ParseRejected  # noqa: E402
from mailgate.parse.message import parse  # noqa: E402

DEFAULT_DIRS = [ROOT / "tests" / "data" / "corpus", Path("/work/shared/corpus")]
FIELDS = ("subject", "sender", "text", "attachments")
Fields = dict[str, str]


def norm(s: object) -> str:
    return " ".join(str(s or "").split())


def ours(raw: bytes) -> Fields:
    p = parse(raw)
    rendered = bool(p.html) and p.text == html_to_text(p.html)
    return {
        "subject": norm(p.subject),
        "sender": p.from_addr.lower(),
        "text": norm(p.text),
        "rendered": "yes" if rendered else "",
        "attachments": str(len(p.attachments)),
    }


def stdlib(raw: bytes) -> Fields:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    frm = msg["from"]
    addrs = getattr(frm, "addresses", ()) if frm is not None else ()
    body = msg.get_body(("plain", "html"))
    text = body.get_content() if body is not None else ""
    if body is not None and body.get_content_type() == "text/html":
        text = ""  # mailgate renders HTML itself: compare only the plain text
    return {
        "subject": norm(msg["subject"]),
        "sender": addrs[0].addr_spec.lower() if addrs else "",
        "text": norm(text),
        "attachments": str(len(list(msg.iter_attachments()))),
    }


def mailparser_(raw: bytes) -> Fields:
    import mailparser

    mp = mailparser.parse_from_bytes(raw)
    frm = mp.from_
    return {
        "subject": norm(mp.subject),
        "sender": (frm[0][1] if frm else "").lower(),
        "text": norm(mp.text_plain[0] if mp.text_plain else ""),
        "attachments": str(len(mp.attachments)),
    }


def run(fn: Callable[[bytes], Fields], raw: bytes) -> Fields | str:
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return fn(raw)
    except ParseRejected as exc:
        return f"rejected: {exc}"
    except Exception as exc:  # noqa: BLE001 - a reference parser failing is a figure too
        return f"failed: {type(exc).__name__}"


def files(dirs: list[Path]) -> list[tuple[str, bytes]]:
    seen: set[str] = set()
    out = []
    for d in dirs:
        for p in sorted(d.rglob("*.eml")):
            raw = p.read_bytes()
            digest = hashlib.sha256(raw).hexdigest()
            if digest not in seen:
                seen.add(digest)
                out.append((str(p.relative_to(d)), raw))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="*", type=Path)
    ap.add_argument("--all", action="store_true", help="also list reference disagreements")
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)
    sys.setrecursionlimit(10000)
    corpus = files([d for d in (args.dirs or DEFAULT_DIRS) if d.is_dir()])
    counts: Counter[str] = Counter()
    for name, raw in corpus:
        a, b, c = run(ours, raw), run(stdlib, raw), run(mailparser_, raw)
        for ref, res in (("stdlib", b), ("mail-parser", c)):
            if isinstance(res, str):
                counts[f"{ref} {res.split(':')[0]}"] += 1
        if isinstance(a, str):
            counts[f"ours {a.split(':')[0]}"] += 1
            continue
        for f in FIELDS:
            refs = [r[f] for r in (b, c) if not isinstance(r, str)]
            if f == "text" and a["rendered"] and not any(refs):
                refs = []  # only we render HTML into text: nothing to compare
            if not refs or a[f] in refs and len(set(refs)) == 1:
                counts[f"{f}: same"] += 1
                continue
            if len(set(refs)) == 1:
                counts[f"{f}: ours differs"] += 1
                print(f"DIFF {f:11} {name}\n  ours   {a[f][:90]!r}\n  theirs {refs[0][:90]!r}")
            else:
                counts[f"{f}: references disagree"] += 1
                if args.all:
                    shown = " | ".join(r[:60] for r in refs)
                    print(f"REFS {f:11} {name}\n  ours   {a[f][:90]!r}\n  theirs {shown!r}")
    print(f"\n{len(corpus)} distinct files")
    for key in sorted(counts):
        print(f"  {key:32} {counts[key]}")


if __name__ == "__main__":
    main()
