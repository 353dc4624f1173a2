"""The simulator's outbox: what the bot posted to groups and people, for the page to show."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from bot.types import Notification, Outcome, Reply


@dataclass(frozen=True)
class Post:
    """Something the bot said in the simulator: to a group, or privately to a person."""

    at: str
    chat_id: str | None
    user_id: str | None
    reply: dict[str, Any]


class SimulatorFeed:
    """The simulator's outbox: what the bot posted, newest last, kept in memory."""

    def __init__(self, size: int = 500) -> None:
        self._posts: deque[Post] = deque(maxlen=size)
        # Positions count every post ever added, so a reader stays in step once old ones drop.
        self._added = 0
        self._lock = threading.Lock()

    def add(self, *, reply: Reply, chat_id: str | None = None, user_id: str | None = None) -> None:
        """Record one post."""
        with self._lock:
            self._posts.append(Post(datetime.now(UTC).isoformat(), chat_id, user_id,
                                    asdict(reply)))
            self._added += 1

    def since(self, index: int) -> tuple[int, list[Post]]:
        """Posts after position `index`, and the position to ask from next time."""
        with self._lock:
            posts, added = list(self._posts), self._added
        first = added - len(posts)
        return added, posts[max(0, index - first):]

    def send(self, note: Notification) -> None:
        """Record one notification (the outbox worker's sender for the simulator)."""
        self.add(reply=note.reply, chat_id=note.chat_id, user_id=note.user_id)

    def record(self, outcome: Outcome) -> None:
        """Record the notifications (the reply itself goes back in the HTTP response)."""
        for note in outcome.notifications:
            self.add(reply=note.reply, chat_id=note.chat_id, user_id=note.user_id)
