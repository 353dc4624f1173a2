"""Tolerant command parsing: @-mentions, full-width forms, no slash, traditional characters."""

from __future__ import annotations

import re
import unicodedata

# Traditional forms of the characters our commands use (typed on Hong Kong/Taiwan keyboards).
_TRADITIONAL = str.maketrans({
    "積": "积", "請": "请", "幫": "帮", "綁": "绑", "駁": "驳", "辦": "办", "動": "动",
    "幹": "干", "準": "准", "評": "评", "報": "报", "類": "类", "們": "们", "門": "门",
    "號": "号", "審": "审", "單": "单", "發": "发", "務": "务", "員": "员",
})
_LEADING_MENTIONS = re.compile(r"^(?:@\S+\s+)+")
_TRAILING_PUNCT = re.compile(r"[\s。.!！?？~～…,，;；]+$")


def normalise(text: str) -> str:
    """Fold width and traditional forms, drop control characters other than line breaks and
    tabs (the database refuses NUL), leading @name tokens and trailing punctuation."""
    folded = unicodedata.normalize("NFKC", text).translate(_TRADITIONAL)
    folded = "".join(ch for ch in folded
                     if ch in "\n\t" or unicodedata.category(ch) != "Cc").strip()
    folded = _LEADING_MENTIONS.sub("", folded + " ").strip()
    return _TRAILING_PUNCT.sub("", folded)


def split_command(text: str) -> tuple[str, list[str]]:
    """`/请假 3 事假 出差` → ("请假", ["3", "事假", "出差"]); the slash is optional."""
    words = normalise(text).split()
    if not words:
        return "", []
    head = words[0].lstrip("/")
    return head, words[1:]
