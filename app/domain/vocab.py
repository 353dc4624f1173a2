"""The shared vocabulary of party organisation: levels, branch categories, member types, roles.

Values are English codes (stored in the database and written in schemes); every member carries
the Chinese label users read, and the label is accepted as input too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class Labelled(StrEnum):
    """A StrEnum whose members also carry a Chinese label, accepted as input too."""

    _labels: ClassVar[dict[str, str]]

    @property
    def label(self) -> str:
        """Chinese label shown to users."""
        return self._labels[self.value]

    @classmethod
    def _missing_(cls, value: object) -> Labelled | None:
        # Committee staff often write the Chinese term; accept it as an alias of the value.
        for member in cls:
            if member.label == value:
                return member
        return None


class OrgKind(Labelled):
    """Level of an organisation in the tree."""

    committee = "committee"
    general_branch = "general_branch"
    branch = "branch"
    group = "group"


OrgKind._labels = {
    "committee": "党委",
    "general_branch": "党总支",
    "branch": "党支部",
    "group": "党小组",
}


class BranchCategory(Labelled):
    """Branch categories of the 5521 model (seed 004); they choose the special indicators."""

    production = "production"
    auxiliary = "auxiliary"
    management = "management"
    market = "market"
    non_public = "non_public"


BranchCategory._labels = {
    "production": "生产类",
    "auxiliary": "辅助类",
    "management": "综合管理类",
    "market": "市场经营类",
    "non_public": "非公改制类",
}


class MemberType(Labelled):
    """Party standing of a person on the roster."""

    full = "full"
    probationary = "probationary"
    masses = "masses"


MemberType._labels = {"full": "正式党员", "probationary": "预备党员", "masses": "群众"}


class Role(Labelled):
    """What a person may do, always within an organisation subtree."""

    member = "member"
    branch_secretary = "branch_secretary"
    organization_committee_member = "organization_committee_member"
    discipline_committee_member = "discipline_committee_member"
    committee_staff = "committee_staff"
    admin = "admin"
    # 指定专人审核: reviews members' declarations (申报) in the subtree it is assigned over.
    declaration_reviewer = "declaration_reviewer"


Role._labels = {
    "member": "党员",
    "branch_secretary": "支部书记",
    "organization_committee_member": "组织委员",
    "discipline_committee_member": "纪检委员",
    "committee_staff": "党委工作人员",
    "admin": "管理员",
    "declaration_reviewer": "申报审核员",
}
