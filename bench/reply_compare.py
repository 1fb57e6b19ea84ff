"""Reply parsers compared on the three fixture sets: mailgate vs the maintained libraries.

    .venv/bin/python bench/reply_compare.py

Installs the peers into a venv of its own (bench/.venv-peers; never product
dependencies), feeds each case's reply text to every parser, and prints clean / leak /
lost per set (tests/reply_fixtures.py scores). mailgate is measured twice: the reply
text fed straight to the splitter, and as the answer to a notification quoted under it
the way Gmail and German Outlook quote (tests/reply_clients.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailgate.agents.reply import REPLY_MARKER, split_reply  # noqa: E402
from tests import reply_clients as clients  # noqa: E402
from tests.reply_fixtures import SETS, load_cases, score, tally  # noqa: E402

PEERS = Path(__file__).parent / ".venv-peers"
PACKAGES = ("talon", "email-reply-parser", "quotequail", "mail-parser-reply")

# runs inside the peers' venv: reads [text, ...] on stdin, prints {peer: [answer|None, ...]}
_PEER_RUNNER = r"""
import json, sys
texts = json.load(sys.stdin)
out = {}
def run(name, fn):
    try:
        out[name] = [fn(t) for t in texts]
    except Exception as e:  # a peer that does not install or import: reported, not fatal
        out[name] = repr(e)
def talon_fn():
    from talon import quotations
    return lambda t: quotations.extract_from_plain(t)
def erp_fn():
    from email_reply_parser import EmailReplyParser
    return lambda t: EmailReplyParser.parse_reply(t)
def qq_fn():
    import quotequail
    def f(t):
        parts = quotequail.quote(t)  # [(True, the author's text), (False, the quote)]
        return "\n".join(s for own, s in parts if own)
    return f
def mpr_fn():
    from mailparser_reply import EmailReplyParser
    langs = ["en", "de", "fr", "es", "it", "nl", "pl", "sv", "da", "no", "fi", "ja", "zh", "ru"]
    p = EmailReplyParser(languages=langs)
    return lambda t: p.parse_reply(text=t)
for name, make in (("talon", talon_fn), ("email-reply-parser", erp_fn),
                   ("quotequail", qq_fn), ("mail-parser-reply", mpr_fn)):
    try:
        fn = make()
    except Exception as e:
        out[name] = repr(e)
        continue
    run(name, fn)
print(json.dumps(out))
"""


def peers_python(packages: tuple[str, ...] = PACKAGES) -> Path:
    """The peers' venv (bench/.venv-peers) with `packages` installed."""
    py = PEERS / "bin" / "python"
    if not py.exists():
        venv.create(PEERS, with_pip=True)
    for pkg in packages:  # each on its own: one that fails to build leaves the others
        subprocess.run([str(py), "-m", "pip", "install", "-q", pkg], check=False)
    return py


NOTIFICATION = f"{REPLY_MARKER}\nTicket #12: Printer is broken\n\nHello,\nmy printer is broken.\n"


def run_peers(packages: tuple[str, ...], runner: str, payload: object) -> dict:
    """Run `runner` in the peers' venv with `payload` as JSON on stdin; its JSON answer."""
    got = subprocess.run(
        [str(peers_python(packages)), "-c", runner],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return json.loads(got.stdout)
    except json.JSONDecodeError:
        print("peers failed:", got.stderr[-2000:])
        return {}


def main() -> None:
    cases = load_cases()
    answers: dict[str, list[str] | str] = {
        "mailgate": [split_reply(c.text).text for c in cases],
        "mailgate, answer in Gmail": [
            split_reply(clients.gmail(c.text, NOTIFICATION)).text for c in cases
        ],
        "mailgate, answer in Outlook (de)": [
            split_reply(clients.outlook(c.text, NOTIFICATION, "de")).text for c in cases
        ],
    }
    answers.update(run_peers(PACKAGES, _PEER_RUNNER, [c.text for c in cases]))
    header = f"| parser | {' | '.join(SETS)} | all |"
    print(header)
    print("|" + "---|" * (len(SETS) + 2))
    for name, out in answers.items():
        if isinstance(out, str):
            print(f"| {name} | not run: {out[:80]} |")
            continue
        t = tally([(c, score(c, a or "")) for c, a in zip(cases, out, strict=True)])
        cells = []
        for s in (*SETS, "all"):
            n = sum(t[s].values())
            cells.append(
                f"{t[s]['clean'] / n:.0%} / {t[s]['leak'] / n:.0%} / {t[s]['lost'] / n:.0%}"
            )
        print(f"| {name} | {' | '.join(cells)} |")
    print("\ncells: clean / leak / lost, share of the set's cases")


if __name__ == "__main__":
    main()
