"""The bottom navigation of the H5 pages."""

from __future__ import annotations

from sqlmodel import Session

from app.models import Person
from app.services.access import secretary_branches


def nav_items(*, session: Session, person: Person, active: str) -> list[dict[str, object]]:
    """Links for the bottom bar; secretaries also get 审批. `active` is the current href."""
    items = [("/h5/me", "我的积分"), ("/h5/activities", "活动"), ("/h5/board", "排行")]
    if secretary_branches(session=session, person=person):
        items.append(("/h5/approvals", "审批"))
    return [{"href": href, "label": label, "active": href == active} for href, label in items]
