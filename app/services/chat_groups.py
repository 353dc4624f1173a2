"""Chat groups bound to organisations, and message ids already handled."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, delete, select

from app.models import ChatGroup, InboundMessage, Organization, OrgKind, Person
from app.services import audit

# Platforms redeliver within minutes; a day is a generous margin that keeps the table small.
DEDUPE_KEEP = timedelta(days=1)


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


def first_sight(*, session: Session, platform: str, message_id: str, now: datetime) -> bool:
    """Record a platform message id; False if it was handled before (a redelivery)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(InboundMessage)
        .values(platform=platform, message_id=message_id, received_at=now)
        .on_conflict_do_nothing(index_elements=["platform", "message_id"])
        .returning(InboundMessage.id)
    )
    # RETURNING rather than rowcount: ORM-enabled inserts do not report rowcount reliably.
    return session.execute(statement).first() is not None


def forget_old_messages(*, session: Session, now: datetime) -> None:
    """Drop dedupe rows older than any redelivery."""
    cutoff = now - DEDUPE_KEEP
    session.execute(delete(InboundMessage).where(col(InboundMessage.received_at) < cutoff))
