"""Pure rules for reading roster sheets: header names, phones, dates, roles, categories."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime

from app.domain.vocab import BranchCategory, MemberType, Role


class RowProblem(ValueError):
    """A cell that cannot be accepted; carries the column it came from."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason


# Canonical column → accepted header spellings (compared after normalise_header).
COLUMNS: dict[str, tuple[str, ...]] = {
    "姓名": ("姓名",),
    "手机号": ("手机号", "手机", "手机号码", "联系电话"),
    "钉钉userid": ("钉钉userid", "钉钉用户id", "钉钉id"),
    "企业微信userid": ("企业微信userid", "企业微信用户id", "企微userid", "企业微信id"),
    "所在支部": ("所在支部", "支部", "所在党支部", "所属支部"),
    "党小组": ("党小组", "所在党小组"),
    "职务/角色": ("职务/角色", "职务", "角色", "党内职务"),
    "人员类别": ("人员类别", "类别", "党员类别", "政治面貌"),
    "入党日期": ("入党日期", "入党时间"),
    "支部类别": ("支部类别", "支部类型"),
}
EXPORT_COLUMNS = [c for c in COLUMNS if c != "支部类别"] + ["支部类别"]
REQUIRED_COLUMNS = ("姓名", "所在支部", "人员类别")


def normalise_header(text: object) -> str:
    """Fold full-width forms, case and blanks so that header spellings compare equal."""
    folded = unicodedata.normalize("NFKC", str(text or "")).strip().lower()
    return re.sub(r"\s+", "", folded).replace("／", "/")


_ALIASES = {normalise_header(a): canon for canon, aliases in COLUMNS.items() for a in aliases}


def map_headers(headers: list[object]) -> tuple[dict[int, str], list[str]]:
    """Map sheet column positions to canonical names; also return the required ones missing."""
    mapping: dict[int, str] = {}
    for index, header in enumerate(headers):
        canon = _ALIASES.get(normalise_header(header))
        if canon and canon not in mapping.values():
            mapping[index] = canon
    missing = [c for c in REQUIRED_COLUMNS if c not in mapping.values()]
    return mapping, missing


def clean_text(value: object) -> str:
    """A cell as trimmed NFKC text; empty for blanks and None."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).strip()


_PHONE = re.compile(r"^1[3-9]\d{9}$")


def parse_phone(raw: str) -> str | None:
    """A mainland mobile number as 11 digits; blank is allowed, anything else is a problem."""
    if not raw:
        return None
    digits = re.sub(r"[\s\-()]", "", raw)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not _PHONE.match(digits):
        raise RowProblem("手机号", f"“{raw}”不是有效的11位手机号")
    return digits


_MEMBER_TYPES = {
    **{m.label: m for m in MemberType},
    "党员": MemberType.full,
    "中共党员": MemberType.full,
    "中共预备党员": MemberType.probationary,
}


def parse_member_type(raw: str) -> MemberType:
    """正式党员 / 预备党员 / 群众 (and their common spellings)."""
    try:
        return _MEMBER_TYPES[raw]
    except KeyError:
        allowed = "、".join(m.label for m in MemberType)
        reason = f"“{raw}”不是已知类别（应为{allowed}）" if raw else f"不能为空（应为{allowed}）"
        raise RowProblem("人员类别", reason) from None


_ROLE_WORDS = {
    **{r.label: r for r in Role},
    "书记": Role.branch_secretary,
    "党支部书记": Role.branch_secretary,
    "组织部": Role.committee_staff,
    "党群工作部": Role.committee_staff,
}
# Titles that carry no permission of their own (宣传委员, 副书记…) are kept as plain members.
_PLAIN_TITLES = {"宣传委员", "青年委员", "统战委员", "副书记", "党小组长", "委员", "群众"}


def parse_roles(raw: str) -> list[Role]:
    """Roles named in the 职务/角色 cell, separated by 、 , ， ; / or spaces."""
    roles: list[Role] = []
    for word in filter(None, re.split(r"[、,，;；/\s]+", raw)):
        role = _ROLE_WORDS.get(word)
        if role is None and word not in _PLAIN_TITLES:
            known = "、".join(sorted(_ROLE_WORDS))
            raise RowProblem("职务/角色", f"“{word}”不是已知角色（可用：{known}）")
        if role is not None and role not in roles:
            roles.append(role)
    return roles


def parse_date(value: object) -> date | None:
    """A join date from an Excel date cell or text: 2020-07-01, 2020/7/1, 2020.7.1, 2020年7月1日."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = clean_text(value)
    match = re.fullmatch(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?", text)
    if match:
        try:
            return date(*map(int, match.groups()))
        except ValueError:
            pass
    raise RowProblem("入党日期", f"“{text}”不是有效日期（例如 2020-07-01）")


def split_org_path(raw: str) -> list[str]:
    """`某公司党委/生产第一党支部` → its names; tolerant of full-width slashes and spaces."""
    return [part.strip() for part in re.split(r"[/／>＞]", raw) if part.strip()]


@dataclass
class RosterRow:
    """One roster line after validation."""

    row_number: int
    name: str
    phone: str | None
    dingtalk_userid: str | None
    wecom_userid: str | None
    branch_path: list[str]
    group: str | None
    roles: list[Role]
    member_type: MemberType
    joined_party_on: date | None
    branch_category: BranchCategory | None = None


def parse_category(raw: str) -> BranchCategory | None:
    """A branch category by its Chinese name (生产类 …); blank means not given."""
    if not raw:
        return None
    try:
        return BranchCategory(raw)
    except ValueError:
        allowed = "、".join(c.label for c in BranchCategory)
        raise RowProblem("支部类别", f"“{raw}”不是已知支部类别（应为{allowed}）") from None


# The longest text each column may hold, as the person and organisation tables store it
# (PostgreSQL refuses longer; a test keeps these equal to the models' column lengths).
MAX_LENGTH = {"姓名": 50, "钉钉userid": 64, "企业微信userid": 64, "党小组": 100}
MAX_ORG_NAME = 100


def _cell(cells: dict[str, object], column: str) -> str:
    """A text cell, cleaned; control characters (NUL, …) and text longer than the database
    stores are refused, never cut or stored."""
    text = clean_text(cells.get(column))
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise RowProblem(column, "含有不可见的控制字符，请删除后重新导入")
    limit = MAX_LENGTH.get(column)
    if limit is not None and len(text) > limit:
        raise RowProblem(column, f"不能超过 {limit} 个字（现有 {len(text)} 个）")
    return text


def parse_row(row_number: int, cells: dict[str, object]) -> RosterRow:
    """Validate one roster line; raise RowProblem naming the first bad column."""
    name = _cell(cells, "姓名")
    if not name:
        raise RowProblem("姓名", "不能为空")
    branch = _cell(cells, "所在支部")
    if not branch:
        raise RowProblem("所在支部", "不能为空")
    if any(len(part) > MAX_ORG_NAME for part in split_org_path(branch)):
        raise RowProblem("所在支部", f"每一级组织名称不能超过 {MAX_ORG_NAME} 个字")
    category = parse_category(_cell(cells, "支部类别"))
    member_type = parse_member_type(_cell(cells, "人员类别"))
    roles = parse_roles(_cell(cells, "职务/角色"))
    if member_type is not MemberType.masses and Role.member not in roles:
        roles.insert(0, Role.member)
    return RosterRow(
        row_number=row_number,
        name=name,
        phone=parse_phone(_cell(cells, "手机号")),
        dingtalk_userid=_cell(cells, "钉钉userid") or None,
        wecom_userid=_cell(cells, "企业微信userid") or None,
        branch_path=split_org_path(branch),
        group=_cell(cells, "党小组") or None,
        roles=roles,
        member_type=member_type,
        joined_party_on=parse_date(cells.get("入党日期")),
        branch_category=category,
    )
