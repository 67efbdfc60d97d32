"""The one error every parser raises, carrying where in the file it gave up."""

from __future__ import annotations

__all__ = ["ParseError"]


class ParseError(ValueError):
    """Input that cannot be read as the format it claims to be.

    ``segment`` is the 1-based segment (or record/line) number and ``offset`` the character
    offset in the decoded text, so the quarantine entry points a person straight at the fault.
    """

    def __init__(self, message: str, *, segment: int | None = None,
                 offset: int | None = None) -> None:
        where = []
        if segment is not None:
            where.append(f"segment {segment}")
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(message + (f" ({', '.join(where)})" if where else ""))
        self.reason = message
        self.segment = segment
        self.offset = offset

    def context(self) -> dict[str, object]:
        return {"segment": self.segment, "offset": self.offset, "reason": self.reason}
