"""The one attachment file-name cleaner (`safe_filename`), and the parse stage's fallback names.

Every attachment name that is stored or shown goes through `safe_filename`: the parse stage
through `attachment_filename`, the decrypted parts of an OpenPGP message directly.
"""

from __future__ import annotations

import re
import unicodedata

MAX_FILENAME = 200  # characters; a longer name is cut, keeping its extension
_MAX_EXTENSION = 16  # a longer dotted tail is not an extension worth keeping when cutting
_SEPARATORS_RE = re.compile(r"[\\/]")
# C0 and C1 controls, zero-width characters, bidi marks, embeddings, overrides, isolates, BOM.
_DROP_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_WINDOWS_FORBIDDEN_RE = re.compile(r'[<>:"|?*]')
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
_EXTENSIONS = {
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "text/csv": ".csv",
    "text/xml": ".xml",
    "text/markdown": ".md",
    "text/rfc822-headers": ".txt",
    "text/vcard": ".vcf",
    "text/x-vcard": ".vcf",
    "text/enriched": ".txt",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/pjpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
    "image/tiff": ".tif",
    "image/svg+xml": ".svg",
    "image/heic": ".heic",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "audio/wav": ".wav",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/gzip": ".gz",
    "application/x-gzip": ".gz",
    "application/x-bzip2": ".bz2",
    "application/x-tar": ".tar",
    "application/x-7z-compressed": ".7z",
    "application/json": ".json",
    "application/xml": ".xml",
    "application/ics": ".ics",
    "application/rtf": ".rtf",
    "application/msword": ".doc",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
    "application/pgp-encrypted": ".pgp",
    "application/pgp-signature": ".asc",
    "application/pgp-keys": ".asc",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "application/pkcs7-mime": ".p7m",
    "application/x-pkcs7-mime": ".p7m",
    "application/octet-stream": ".bin",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/delivery-status": ".txt",
    "message/global-delivery-status": ".txt",
    "message/disposition-notification": ".txt",
    "message/feedback-report": ".txt",
}


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """A basename safe to store and to show, or `fallback` when nothing usable is left.

    No directories or traversal, no control, zero-width or bidi characters, none of
    ``<>:"|?*``, no leading dot, no trailing dot or space, no Windows device name, NFC, at
    most `MAX_FILENAME` characters with the extension kept. A bare extension (".pdf", also a
    dot-file such as ".hidden") gets the stem of `fallback` ("attachment" if it has none).
    """
    parts = [p for p in _SEPARATORS_RE.split(name or "") if p.strip(" .")]
    name = parts[-1] if parts else ""
    name = unicodedata.normalize("NFC", _DROP_RE.sub("", name))
    name = _WINDOWS_FORBIDDEN_RE.sub("_", name)
    name = " ".join(name.split()).rstrip(" .")
    if name.startswith("."):
        rest = name.lstrip(" .")
        name = f"{_stem(fallback)}.{rest}" if rest and "." not in rest else rest
    if name.split(".", 1)[0].rstrip().upper() in _WINDOWS_RESERVED:
        name = "_" + name
    return _bounded(name) or fallback


def attachment_filename(name: str, index: int, content_type: str) -> str:
    """The name of attachment number `index`; "attachment-N.ext" (by content type) if none."""
    return safe_filename(name, f"attachment-{index}{_EXTENSIONS.get(content_type, '.bin')}")


def _stem(fallback: str) -> str:
    """The fallback name without its extension."""
    return fallback.split(".", 1)[0] or "attachment"


def _bounded(name: str) -> str:
    """`name` cut to MAX_FILENAME characters, keeping a short extension."""
    if len(name) <= MAX_FILENAME:
        return name
    stem, dot, ext = name.rpartition(".")
    if dot and 0 < len(ext) <= _MAX_EXTENSION and stem:
        return stem[: MAX_FILENAME - len(ext) - 1].rstrip(" .") + "." + ext
    return name[:MAX_FILENAME].rstrip(" .")
