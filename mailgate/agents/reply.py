"""Split an agent's reply into its command block and the answer below it. Pure.

An agent's reply reads, top to bottom:

    #pickup                  <- the command block: lines starting with '#', nothing before
    #priority +10
                             <- blank lines inside the block are allowed
    Hello Carla, ...         <- the first other line starts the answer to the customer
    --                       <- signature, quoted text, our notification: never read

docs/agents.md is the reference.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from mailgate.agents import quotes
from mailgate.agents.tokens import TOKEN_LIKE_RE

# the first line of every agent notification; everything from it down is quoted by the reply
REPLY_MARKER = "##- Reply above this line: command lines first, then your answer -##"
_MARKER_KEY = "reply above this line"
_MARKER_BYTES = _MARKER_KEY.encode()


@functools.cache
def _command_lines() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """A command line, and one that takes the rest of the mail (#note): from the registry,
    imported at the first agent mail read, not with this module (the parse processes read
    customers' text with `new_text` and never load the commands or the config models)."""
    from mailgate.agents.commands.registry import REGISTRY

    return REGISTRY.line_re(), REGISTRY.line_re(takes_rest=True)


_TOKEN_ADDRESS_RE = re.compile(
    r"[^\s<>,;:\"'()\[\]]*" + TOKEN_LIKE_RE.pattern + r"[^\s<>,;:\"'()\[\]]*"
)
_SIGNED_BEGIN = "-----BEGIN PGP SIGNED MESSAGE-----"
_SIGNATURE_BEGIN = "-----BEGIN PGP SIGNATURE-----"
_SIGNATURE_END = "-----END PGP SIGNATURE-----"
# zero-width and bidi control characters: removed before command lines are read, so what
# the agent sees is what runs (a zero-width space before "#close" does not hide it, a
# right-to-left override does not reorder it)
_INVISIBLE = dict.fromkeys(
    [
        0x00AD,
        0x061C,
        0x180E,
        0xFEFF,
        *range(0x200B, 0x2010),  # zero-width space/joiners, LRM, RLM
        *range(0x202A, 0x202F),  # embeddings and overrides
        *range(0x2060, 0x2065),  # word joiner, invisible operators
        *range(0x2066, 0x206A),  # isolates
    ],
    None,
)


@dataclass(frozen=True)
class ReplyText:
    """An agent's reply split into its command block and the text after it."""

    command_lines: tuple[tuple[int, str], ...]  # (line number, text), 1-based
    text: str  # answer or note: quotes, quoted notification and signature removed
    stray_commands: tuple[tuple[int, str], ...]  # command lines below other text
    noted: bool  # a #note line ended the block: the text is an internal note


def unwrap_clearsigned(text: str) -> str:
    """The signed text of an inline PGP clearsigned reply (dash-escaping undone)."""
    stripped = text.lstrip()
    if not stripped.startswith(_SIGNED_BEGIN):
        return text
    lines = stripped.split("\n")
    i = 1
    while i < len(lines) and lines[i].strip():  # armor headers ("Hash: SHA256")
        i += 1
    body: list[str] = []
    for j in range(i + 1, len(lines)):
        if lines[j].strip() == _SIGNATURE_BEGIN:
            rest = lines[j + 1 :]
            end = next((k for k, s in enumerate(rest) if s.strip() == _SIGNATURE_END), None)
            after = rest[end + 1 :] if end is not None else []
            return "\n".join(body + after)
        body.append(lines[j][2:] if lines[j].startswith("- ") else lines[j])
    return text  # no signature: not a clearsigned message after all


def split_reply(text: str, signature: str = "") -> ReplyText:
    """Find the command block at the top and the answer below it."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    text = unwrap_clearsigned(text)
    lines = [line.rstrip(" \t\xa0") for line in text.split("\n")]
    commands, end, noted = _command_block(lines)
    kept = _written_lines(lines, end)
    command_line = _command_lines()[0]
    stray = () if noted else tuple((n + 1, s.strip()) for n, s in kept if command_line.match(s))
    return ReplyText(tuple(commands), _answer_text([s for _, s in kept], signature), stray, noted)


def cleaned_note(text: str, signature: str = "") -> str:
    """An agent mail kept as an internal note (refused, or sent without a token): its
    command lines and its text; quotes, our notification, the signature and every reply
    token removed (the raw message stays for admins)."""
    split = split_reply(text, signature)
    parts = ("\n".join(line for _, line in split.command_lines), split.text)
    body = "\n\n".join(part for part in parts if part.strip())
    return _TOKEN_ADDRESS_RE.sub("[reply address removed]", body)


def new_text(text: str) -> str:
    """What a customer wrote in this mail: quoted history, quote headers, the signature and
    "Sent from my ..." cut (the same reading as an agent's answer, without commands)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip(" \t\xa0") for line in text.split("\n")]
    return _answer_text([s for _, s in _written_lines(lines, 0)], "")


def _command_block(lines: list[str]) -> tuple[list[tuple[int, str]], int, bool]:
    """The '#' lines at the top (line number, text), the index after them, and whether a
    #note line ended them."""
    commands: list[tuple[int, str]] = []
    takes_rest = _command_lines()[1]
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("#"):
            return commands, i, False
        commands.append((i + 1, line))
        if takes_rest.match(line):
            return commands, i + 1, True
    return commands, len(lines), False


def _written_lines(lines: list[str], start: int) -> list[tuple[int, str]]:
    """(index, line) of what the agent wrote below the commands, quotes dropped.

    A quote header followed by '>' lines is dropped with them and reading goes on (inline
    and bottom-posted answers keep the author's lines between quotes); a header whose
    quote is not '>'-prefixed (Outlook) ends the text. Our notification's marker (unquoted:
    a quoted one is a quoted line) and the signature delimiter end it too. A forwarded
    message is the author's to keep."""
    whole = "\n".join(lines)
    marked = _has_marker(whole)  # else no line needs lowering
    if ">" not in whole:  # nothing quoted (most new mail): no line needs the tests
        return _unquoted_lines(lines, start, marked)
    kept: list[tuple[int, str]] = []
    quoted = _quoted(lines)
    follows = _quote_follows(lines, quoted)
    n, forward, dropped = start, False, False
    while n < len(lines):
        line = lines[n]
        if quoted[n] or (n and quoted[n - 1] and quotes.is_broken_quote_line(lines, n)):
            n, dropped = n + 1, True
            continue
        # "-- ": its space often lost
        if (marked and _MARKER_KEY in line.lower()) or line in ("--", "-- "):
            break
        shared = quotes.shared_line_split(line) if follows[n + 1] else None
        if shared is not None:
            kept.append((n, shared))
            n, dropped = n + 1, True
            continue
        header = None  # (a line that cannot open one, or only one needing a quote below)
        if line.strip() and (follows[n + 1] or quotes.may_open_header(line)):
            header = quotes.header_at(lines, n)
        if header is not None and header.forward:
            forward = True
        elif header is not None and follows[n + header.lines]:
            n, dropped = n + header.lines, True
            continue
        elif header is not None and header.explicit and (header.separator or not forward):
            break
        if not line.strip() and dropped and (not kept or not kept[-1][1].strip()):
            n += 1
            continue
        kept.append((n, line))
        n, dropped = n + 1, False
    return _trimmed(kept)


def _unquoted_lines(lines: list[str], start: int, marked: bool) -> list[tuple[int, str]]:
    """`_written_lines` of a text without '>': no line is a quote or has one below it, so
    none is dropped, and only the marker, the delimiter or a quote header ends the text."""
    kept: list[tuple[int, str]] = []
    forward = False
    for n in range(start, len(lines)):
        line = lines[n]
        if (marked and _MARKER_KEY in line.lower()) or line in ("--", "-- "):
            break
        if line.strip() and quotes.may_open_header(line):
            header = quotes.header_at(lines, n)
            if header is not None and header.forward:
                forward = True
            elif header is not None and header.explicit and (header.separator or not forward):
                break
        kept.append((n, line))
    return _trimmed(kept)


def _has_marker(text: str) -> bool:
    """Whether a line of `text` may hold the marker (lowered). Only ASCII characters lower
    to its characters (the two others that lower to ASCII give "i" + U+0307 and "k"), so
    they alone decide; lowering a non-ASCII text costs five times as much."""
    if text.isascii():
        return _MARKER_KEY in text.lower()
    return _MARKER_BYTES in text.encode("ascii", "ignore").lower()


def _trimmed(kept: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Without the trailing blank lines and "Sent from my ..." footers."""
    while kept and (not kept[-1][1].strip() or quotes.is_mobile_footer(kept[-1][1])):
        kept.pop()
    return kept


def _quoted(lines: list[str]) -> list[bool]:
    """quotes.is_quoted of each line; a line that starts with neither '>' nor a space is
    not one, and a '>' line needs no lstrip (a call for each line cost more)."""
    return [
        not line.rstrip().endswith("<<<")
        if line[:1] == ">"
        else (line[:1].isspace() and quotes.is_quoted(line))
        for line in lines
    ]


def _quote_follows(lines: list[str], quoted: list[bool]) -> list[bool]:
    """For each n (and len(lines)): is the first non-blank line from n on a '>' line?"""
    follows = [False] * (len(lines) + 1)
    for n in range(len(lines) - 1, -1, -1):
        follows[n] = quoted[n] if lines[n].strip() else follows[n + 1]
    return follows


def _answer_text(kept: list[str], signature: str) -> str:
    """The written lines as text, without trailing blank lines or the agent's signature."""
    while kept and not kept[-1].strip():
        kept.pop()
    text = "\n".join(kept)
    sig = "\n".join(s.rstrip() for s in signature.strip().split("\n")) if signature else ""
    if sig and text.rstrip().endswith(sig):
        text = text.rstrip()[: -len(sig)]
    return text.strip("\n").rstrip()
