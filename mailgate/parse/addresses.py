"""Address headers and Message-ID lists: lenient splitting, strict validation."""

from __future__ import annotations

import re

from mailgate.parse.headers import decode_words
from mailgate.parse.limits import MAX_HEADER_CHARS

_ANGLE_ID_RE = re.compile(r"<([^<>]*)>")
_ID_OK_RE = re.compile(r"[^\s<>\x00-\x1f\x7f]{1,995}")
_ADDR_OK_RE = re.compile(
    r'(?:[^\s<>()\[\],;:\\"@\x00-\x1f\x7f]+|"[^"\\\r\n]*")'
    r"(?:@(?:[^\s<>()\[\],;:\\\"@\x00-\x1f\x7f]+|\[[^\[\]\s\\]+\]))?"
)
_ADDR_SPECIAL_RE = re.compile(r'["():;\\]')
_ID_TOKEN_SPLIT_RE = re.compile(r"[\s,]+")


def address_list(values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Lowercased addr-specs (with a domain) from every occurrence of an address header."""
    out: list[str] = []
    budget = MAX_HEADER_CHARS  # bounds the work on a flood of recipients
    for value in values:
        if budget <= 0:
            break
        value = value[:budget]
        budget -= len(value)
        out.extend(addr for _, addr in addresses(value) if "@" in addr)
    return tuple(dict.fromkeys(out))


def addresses(value: str) -> list[tuple[str, str]]:
    """(raw display name, lowercased addr-spec) pairs; invalid entries are skipped."""
    if not value:
        return []
    simple = _ADDR_SPECIAL_RE.search(value) is None
    pieces = _split_simple(value) if simple else _split_complex(value)
    out = []
    for name, addr in pieces:
        addr = addr.strip().lower()
        if ":" in addr and addr.startswith("@"):  # source route
            addr = addr.rsplit(":", 1)[1]
        if addr and len(addr) <= 320 and _ADDR_OK_RE.fullmatch(addr):
            out.append((name.strip(), addr))
    return out


def _split_simple(value: str) -> list[tuple[str, str]]:
    """Split a header without quotes, comments or groups."""
    out = []
    for piece in value.split(","):
        piece = piece.strip()
        if not piece:
            continue
        lt = piece.rfind("<")
        if lt >= 0:
            gt = piece.find(">", lt)
            addr = piece[lt + 1 : gt] if gt > lt else piece[lt + 1 :]
            out.append((piece[:lt], addr))
        else:
            out.append(("", piece))
    return out


def _split_complex(value: str) -> list[tuple[str, str]]:
    """Split an address header with quoted strings, comments, groups and escapes."""
    out: list[tuple[str, str]] = []
    name: list[str] = []
    addr: list[str] = []
    comment: list[str] = []
    plain: list[str] = []  # text outside quotes/comments/angles (a bare addr-spec)
    has_angle = False
    i, n = 0, len(value)

    def finish() -> None:
        """Close the current address."""
        nonlocal has_angle
        if has_angle:
            display = "".join(name).strip() or " ".join(comment).strip()
            out.append((display, "".join(addr)))
        elif "".join(plain).strip():
            out.append((" ".join(comment).strip(), "".join(plain)))
        name.clear(), addr.clear(), comment.clear(), plain.clear()
        has_angle = False

    while i < n:
        c = value[i]
        if c == '"':
            j = i + 1
            chars = []
            while j < n and value[j] != '"':
                if value[j] == "\\" and j + 1 < n:
                    j += 1
                chars.append(value[j])
                j += 1
            name.append("".join(chars))
            plain.append('"' + "".join(chars) + '"')
            i = j + 1
        elif c == "(":
            depth, j = 1, i + 1
            chars = []
            while j < n and depth:
                if value[j] == "\\" and j + 1 < n:
                    j += 1
                elif value[j] == "(":
                    depth += 1
                elif value[j] == ")":
                    depth -= 1
                    if not depth:
                        break
                chars.append(value[j])
                j += 1
            comment.append("".join(chars))
            i = j + 1
        elif c == "<":
            j = value.find(">", i + 1)
            j = n if j < 0 else j
            addr.clear()
            addr.append(value[i + 1 : j])
            has_angle = True
            i = j + 1
        elif c in ",;":
            finish()
            i += 1
        elif c == ":" and not has_angle:  # group "name:" prefix
            name.clear(), comment.clear(), plain.clear()
            i += 1
        else:
            name.append(c)
            plain.append(c)
            i += 1
    finish()
    return out


def clean_display_name(name: str, defects: list[str]) -> str:
    """Decoded, unquoted display name."""
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    name = decode_words(name, defects)
    return " ".join(name.split())


def message_ids(value: str) -> tuple[str, ...]:
    """Message ids in a header value, normalized to "<id>", deduplicated, in order."""
    if not value:
        return ()
    ids: list[str] = []
    if "<" in value:
        for inner in _ANGLE_ID_RE.findall(value):
            if _ID_OK_RE.fullmatch(inner) is None:  # (else it has no blank to take out)
                inner = "".join(inner.split())
                if not inner or _ID_OK_RE.fullmatch(inner) is None:
                    continue
            ids.append(f"<{inner}>")
    if not ids:
        for token in _ID_TOKEN_SPLIT_RE.split(value):
            token = token.strip("<>\"'")
            if "@" in token and _ID_OK_RE.fullmatch(token):
                ids.append(f"<{token}>")
    return tuple(dict.fromkeys(ids))


def return_path(value: str | None) -> str | None:
    """None if absent, "" for the null path "<>", else the lowercased address."""
    if value is None:
        return None
    v = value.strip()
    if "<" in v:
        m = _ANGLE_ID_RE.search(v)
        v = m.group(1) if m else v.replace("<", "")
    v = "".join(v.split())
    if ":" in v:  # source route "@a,@b:user@host"
        v = v.rsplit(":", 1)[1]
    return v.strip("<>").lower()
