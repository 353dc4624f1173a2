"""The chat benchmark's protocol floor: the real server whose dispatcher does no work at all.

`uvicorn benchmarks.chat_floor:app` is `app.main:app` (same settings, routes, signature check,
handler pool, DingTalk client and deliverer) with one change: every robot message is answered,
without touching the database, by a canned outcome of the same shape and size as a real
`/我的积分` answer (a reply through the session webhook and, when `BENCH_FLOOR_NOTE` is set, a
private note through the OpenAPI). What it sustains is the most the command can reach with this
stack (uvicorn, FastAPI, httpx) on this machine, since the platform's wire traffic cannot be
skipped.
"""

from __future__ import annotations

import os

from app.main import create_app
from bot.types import IncomingMessage, Notification, Outcome, Reply


class CannedDispatcher:
    """Answers every message with the same reply and note; reads and writes nothing."""

    def __init__(self, *, reply: str, note: str | None) -> None:
        self.reply = Reply(reply, markdown=True, mention_sender=True)
        self.note = None if note is None else Reply(note, markdown=True)

    def dispatch(self, message: IncomingMessage) -> Outcome:
        """The canned outcome, addressed to this message's sender."""
        notes = [] if self.note is None else [
            Notification(message.platform, self.note, user_id=message.sender_userid)]
        return Outcome(self.reply, notes)


app = create_app()
app.state.dispatcher = CannedDispatcher(reply=os.environ["BENCH_FLOOR_REPLY"],
                                        note=os.environ.get("BENCH_FLOOR_NOTE"))
