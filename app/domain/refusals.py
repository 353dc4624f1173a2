"""Refusals: a request the rules turn down, with a message for the user and what kind it is."""

from __future__ import annotations

from enum import StrEnum


class Refusal(StrEnum):
    """What kind of refusal, so that an interface can answer with the matching status."""

    invalid = "invalid"  # the request itself is wrong (a value, a missing reason)
    not_found = "not_found"  # it names something that is not there (or not visible to them)
    forbidden = "forbidden"  # it is not this person's to do
    conflict = "conflict"  # not now: the thing is already done, or in a state that forbids it
    unsupported = "unsupported"  # a file of a kind or content we do not take


class Refused(ValueError):
    """A refusal whose message is for the user, in Chinese; `kind` says what kind it is."""

    def __init__(self, message: str, *, kind: Refusal = Refusal.invalid) -> None:
        super().__init__(message)
        self.kind = kind
