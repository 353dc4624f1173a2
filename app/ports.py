"""What the core needs from the outside, as protocols; the composition root supplies them."""

from __future__ import annotations

from typing import Protocol


class LoginRejected(Exception):
    """A platform refused a login code (unknown, used or expired); the message is for logs."""


class LoginCodeResolver(Protocol):
    """Turns a platform's one-time login code (免登 / OAuth) into that platform's userid."""

    def userid_for_code(self, code: str) -> str:
        """The userid the code was issued to; LoginRejected if the platform refuses it."""
        ...
