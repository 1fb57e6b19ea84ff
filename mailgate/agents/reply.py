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

import re
from dataclasses import dataclass

from mailgate.agents.commands.registry import REGISTRY

# the first line of every agent notification; everything from it down is quoted by the reply
REPLY_MARKER = "##- Reply above this line: command lines first, then your answer -##"
_MARKER_KEY = "reply above this line"

_COMMAND_LINE_RE = REGISTRY.line_re()
_TAKES_REST_RE = REGISTRY.line_re(takes_rest=True)  # #note: the rest of the mail is its text

# reply layouts of common mail clients: where quoted text begins
_ATTRIBUTION_RE = re.compile(
    r"^(on\b.*\bwrote:|am\b.*\bschrieb\b.*:|le\b.*\ba écrit\s*:|el\b.*\bescribió:)\s*$", re.I
)
_ATTRIBUTION_START_RE = re.compile(r"^(on|am|le|el)\s", re.I)
_ATTRIBUTION_END_RE = re.compile(r"(wrote|schrieb|a écrit|escribió)\s*:\s*$", re.I)
_ORIGINAL_MESSAGE_RE = re.compile(r"^-{2,}\s*(original message|forwarded message)\s*-{2,}$", re.I)
_OUTLOOK_RULE_RE = re.compile(r"^_{20,}$")
_OUTLOOK_FROM_RE = re.compile(r"^from\s*:", re.I)
_OUTLOOK_HEADER_RE = re.compile(r"^(from|sent|date|to|cc|subject)\s*:", re.I)
_SIGNED_BEGIN = "-----BEGIN PGP SIGNED MESSAGE-----"
_SIGNATURE_BEGIN = "-----BEGIN PGP SIGNATURE-----"
_SIGNATURE_END = "-----END PGP SIGNATURE-----"
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"), None)


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
    stray = () if noted else tuple((n + 1, s.strip()) for n, s in kept if _COMMAND_LINE_RE.match(s))
    return ReplyText(tuple(commands), _answer_text([s for _, s in kept], signature), stray, noted)


def _command_block(lines: list[str]) -> tuple[list[tuple[int, str]], int, bool]:
    """The '#' lines at the top (line number, text), the index after them, and whether a
    #note line ended them."""
    commands: list[tuple[int, str]] = []
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("#"):
            return commands, i, False
        commands.append((i + 1, line))
        if _TAKES_REST_RE.match(line):
            return commands, i + 1, True
    return commands, len(lines), False


def _written_lines(lines: list[str], start: int) -> list[tuple[int, str]]:
    """(index, line) of what the agent wrote below the commands: up to quoted mail or the
    signature, without '>' lines."""
    kept: list[tuple[int, str]] = []
    for n in range(start, len(lines)):
        if _quote_starts(lines, n):
            break
        if not lines[n].lstrip().startswith(">"):
            kept.append((n, lines[n]))
    return kept


def _quote_starts(lines: list[str], n: int) -> bool:
    """Line n begins what the agent did not write: our notification, the signature, a
    quoted or forwarded message."""
    line = lines[n]
    if _MARKER_KEY in line.lower() or line in ("--", "-- "):  # "-- ": its space often lost
        return True
    s = line.strip()
    if _ORIGINAL_MESSAGE_RE.match(s) or _OUTLOOK_RULE_RE.match(s) or _ATTRIBUTION_RE.match(s):
        return True
    if _ATTRIBUTION_START_RE.match(s) and any(
        _ATTRIBUTION_END_RE.search(following) for following in lines[n + 1 : n + 3]
    ):
        return True
    return _outlook_header_block(lines, n)


def _outlook_header_block(lines: list[str], n: int) -> bool:
    """`From: ...` followed by `Sent:`/`Date:` and more header lines: a quoted message."""
    if not _OUTLOOK_FROM_RE.match(lines[n].strip()):
        return False
    following = [s.strip() for s in lines[n + 1 : n + 4] if s.strip()]
    return bool(following) and all(_OUTLOOK_HEADER_RE.match(s) for s in following[:2])


def _answer_text(kept: list[str], signature: str) -> str:
    """The written lines as text, without trailing blank lines or the agent's signature."""
    while kept and not kept[-1].strip():
        kept.pop()
    text = "\n".join(kept)
    sig = "\n".join(s.rstrip() for s in signature.strip().split("\n")) if signature else ""
    if sig and text.rstrip().endswith(sig):
        text = text.rstrip()[: -len(sig)]
    return text.strip("\n").rstrip()
