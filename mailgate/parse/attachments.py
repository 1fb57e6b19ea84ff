"""One attachment (or inline part) of a parsed message, with its decoded payload."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from mailgate.parse.filenames import attachment_filename


@dataclass(frozen=True)
class Attachment:
    """One attachment (or inline part) with its decoded payload."""

    filename: str
    content_type: str
    data: bytes
    sha256: str
    content_id: str
    inline: bool

    @classmethod
    def create(
        cls, name: str, index: int, content_type: str, data: bytes, content_id: str, inline: bool
    ) -> Attachment:
        """Attachment number `index` (from 1): file name cleaned, payload hashed."""
        return cls(
            filename=attachment_filename(name, index, content_type),
            content_type=content_type,
            data=data,
            sha256=hashlib.sha256(data).hexdigest(),
            content_id=content_id,
            inline=inline,
        )
