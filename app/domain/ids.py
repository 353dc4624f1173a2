"""Record ids as people and links spell them."""

from __future__ import annotations

# Record ids are PostgreSQL integers: a larger number names nothing, and could not even be bound.
MAX_RECORD_ID = 2**31 - 1


def record_id(text: str) -> int | None:
    """`12` → 12; None when `text` cannot be a record's id (not digits, 0, or out of range)."""
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_RECORD_ID else None
