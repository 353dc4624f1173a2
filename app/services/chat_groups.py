"""Chat groups bound to organisations, and message ids already handled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, text
from sqlmodel import Session, col, delete, select

from app.db import UTCDateTime
from app.models import ChatGroup, InboundMessage, Organization, OrgKind, Person
from app.services import audit
from app.services.versioned import VersionedCache

# Platforms redeliver within minutes; a day is a generous margin that keeps the table small.
DEDUPE_KEEP = timedelta(days=1)


@dataclass(frozen=True)
class GroupBinding:
    """Which organisation a platform group speaks for."""

    organization_id: int


_bindings: VersionedCache[tuple[str, str], GroupBinding | None] = VersionedCache()


def binding_for(*, session: Session, platform: str, chat_id: str) -> GroupBinding | None:
    """The binding of a platform group, if any; reused while nothing changed."""
    def find() -> GroupBinding | None:
        group = group_for(session=session, platform=platform, chat_id=chat_id)
        return None if group is None else GroupBinding(group.organization_id)

    return _bindings.get_or_build(session, (platform, chat_id), find)


def group_for(*, session: Session, platform: str, chat_id: str) -> ChatGroup | None:
    """The binding of a platform group, if any."""
    return session.exec(
        select(ChatGroup).where(ChatGroup.platform == platform, ChatGroup.chat_id == chat_id)
    ).first()


def bind_group(
    *, session: Session, platform: str, chat_id: str, name: str, branch: Organization,
    actor: Person,
) -> ChatGroup:
    """Bind a platform group to a branch (or move an existing binding)."""
    if branch.kind not in (OrgKind.branch, OrgKind.general_branch, OrgKind.committee):
        raise ValueError("only branches and committees can be bound to a group")
    group = group_for(session=session, platform=platform, chat_id=chat_id)
    before = {"organization_id": group.organization_id} if group else None
    if group is None:
        group = ChatGroup(platform=platform, chat_id=chat_id, name=name or branch.name,
                          organization_id=branch.id)
        session.add(group)
    else:
        group.organization_id = branch.id or group.organization_id
    session.flush()
    audit.record(session=session, actor_id=actor.id, actor_label=actor.name, action="bind",
                 entity="chat_group", entity_id=group.id, before=before,
                 after={"platform": platform, "chat_id": chat_id, "organization_id": branch.id})
    return group


# Written out once: SQLAlchemy 2.0's dialect insert() with ON CONFLICT has no cache key
# (sqlalchemy#10445) and was compiled again for every message. The text works on both databases.
# It also reads the data version, which every message needs next: one round trip instead of two.
_FIRST_SIGHT = text(
    "INSERT INTO inbound_message (platform, message_id, received_at)"
    " VALUES (:platform, :message_id, :received_at)"
    " ON CONFLICT (platform, message_id) DO NOTHING"
    " RETURNING (SELECT version FROM data_version WHERE id = 1)"
).bindparams(bindparam("received_at", type_=UTCDateTime()))


def first_sight(*, session: Session, platform: str, message_id: str, now: datetime) -> bool:
    """Record a platform message id; False if it was handled before (a redelivery)."""
    inserted = session.execute(_FIRST_SIGHT, {"platform": platform, "message_id": message_id,
                                              "received_at": now}).first()
    if inserted is None:
        return False
    audit.saw_version(session, inserted[0])
    return True


def forget_old_messages(*, session: Session, now: datetime) -> None:
    """Drop dedupe rows older than any redelivery."""
    cutoff = now - DEDUPE_KEEP
    session.execute(delete(InboundMessage).where(col(InboundMessage.received_at) < cutoff))
