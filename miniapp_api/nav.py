"""The bottom navigation of the H5 pages."""

from __future__ import annotations

from sqlmodel import Session

from app.domain.vocab import Role
from app.models import Person
from app.services.access import all_roles
from app.services.evaluation_roles import COMMITTEE_ROLES

EVALUATION_HREF = "/h5/evaluation"
BRANCHES_HREF = "/h5/evaluation/branches"


def nav_items(*, session: Session, person: Person, active: str) -> list[dict[str, object]]:
    """Links for the bottom bar: secretaries also get 审批, and they and the committee get
    支部评议. `active` is the current href."""
    roles = all_roles(session=session, person=person)
    items = [("/h5/me", "我的积分"), ("/h5/activities", "活动"), ("/h5/board", "排行"),
             (EVALUATION_HREF, "月度评议")]
    if Role.branch_secretary in roles:
        items.append(("/h5/approvals", "审批"))
    if roles & {Role.branch_secretary, *COMMITTEE_ROLES}:
        items.append((BRANCHES_HREF, "支部评议"))
    return [{"href": href, "label": label, "active": href == active} for href, label in items]
