"""Finding people on the roster."""

from __future__ import annotations

from sqlalchemy import or_
from sqlmodel import Session, select

from app.models import Person


def find_person(*, session: Session, key: str) -> Person | None:
    """The person whose DingTalk userid, WeCom userid or phone is `key`."""
    key = key.strip()
    if not key:
        return None
    return session.exec(
        select(Person).where(
            or_(Person.dingtalk_userid == key, Person.wecom_userid == key, Person.phone == key)
        )
    ).first()
