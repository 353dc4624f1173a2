"""Roster import and export: the Excel/CSV sheet an organisation department already keeps."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from sqlmodel import Session, select

from app.domain.roster_rules import (
    EXPORT_COLUMNS,
    RosterRow,
    RowProblem,
    map_headers,
    parse_row,
)
from app.models import (
    BranchCategory,
    MemberType,
    Organization,
    OrgKind,
    Person,
    Role,
    RoleAssignment,
)
from app.services import audit, orgs

PERSON_FIELDS = (
    "name",
    "phone",
    "dingtalk_userid",
    "wecom_userid",
    "member_type",
    "joined_party_on",
    "organization_id",
    "active",
)
# Roles that attach to the committee at the top of the row's path rather than to its branch.
# Held on the committee node: they act over every branch (指定专人审核 included).
COMMITTEE_ROLES = {Role.committee_staff, Role.admin, Role.declaration_reviewer}


class RosterFileError(ValueError):
    """The file as a whole cannot be read (unknown format, missing required columns)."""


@dataclass(frozen=True)
class RowError:
    """A rejected row: its number as shown in the spreadsheet, the column, and why."""

    row: int
    column: str
    reason: str


@dataclass
class RowChange:
    """What one accepted row did to the person it describes."""

    row: int
    name: str
    action: str  # created | updated | unchanged
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)


@dataclass
class ImportReport:
    """The outcome of one import, row by row."""

    changes: list[RowChange] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    def count(self, action: str) -> int:
        """How many accepted rows ended with `action`."""
        return sum(1 for c in self.changes if c.action == action)

    @property
    def summary(self) -> dict[str, int]:
        """Counts of created, updated, unchanged and rejected rows."""
        rejected = len({e.row for e in self.errors})
        return {
            "created": self.count("created"),
            "updated": self.count("updated"),
            "unchanged": self.count("unchanged"),
            "rejected": rejected,
        }


Table = tuple[list[object], list[tuple[int, list[object]]]]


def read_table(path: Path) -> Table:
    """Header and numbered data rows of an .xlsx or .csv file; numbers match the spreadsheet."""
    suffix = path.suffix.lower()
    if suffix in {".xlsx", ".xlsm"}:
        rows = _xlsx_rows(path)
    elif suffix == ".csv":
        rows = _csv_rows(path.read_bytes())
    else:
        raise RosterFileError(f"不支持的文件类型“{path.suffix}”，请使用 .xlsx 或 .csv")
    numbered = [(n, r) for n, r in rows if any(c not in (None, "") for c in r)]
    if not numbered:
        raise RosterFileError("文件是空的，没有表头行")
    (_, header), *data = numbered
    return header, data


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[object]]]:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged or mislabelled file
        raise RosterFileError(f"无法读取 Excel 文件：{exc}") from None
    try:
        sheet = workbook.worksheets[0]
        rows = [(n, list(r)) for n, r in enumerate(sheet.iter_rows(values_only=True), start=1)]
    finally:
        workbook.close()
    return iter(rows)


def _csv_rows(data: bytes) -> Iterator[tuple[int, list[object]]]:
    # Excel on a Chinese Windows saves CSV as GBK; everything else sends UTF-8 (often with BOM).
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise RosterFileError("无法识别 CSV 文件的编码，请另存为 UTF-8")
    return enumerate((list(r) for r in csv.reader(io.StringIO(text))), start=1)


def parse_table(table: Table) -> tuple[list[RosterRow], list[RowError]]:
    """Validate every row; rows that share a userid or phone inside the file are all rejected."""
    header, data = table
    mapping, missing = map_headers(header)
    if missing:
        raise RosterFileError(f"缺少必填列：{'、'.join(missing)}")
    if not ({"钉钉userid", "企业微信userid", "手机号"} & set(mapping.values())):
        raise RosterFileError(
            "至少需要 钉钉userid、企业微信userid 或 手机号 中的一列，用于识别人员"
        )
    parsed: list[RosterRow] = []
    errors: list[RowError] = []
    for number, cells in data:
        named = {canon: cells[i] if i < len(cells) else None for i, canon in mapping.items()}
        try:
            parsed.append(parse_row(number, named))
        except RowProblem as problem:
            errors.append(RowError(number, problem.column, problem.reason))
    duplicates = _duplicates_in_file(parsed)
    errors.extend(duplicates)
    bad_rows = {e.row for e in duplicates}
    return [r for r in parsed if r.row_number not in bad_rows], errors


def _duplicates_in_file(rows: list[RosterRow]) -> list[RowError]:
    errors = []
    for column, attr in (
        ("钉钉userid", "dingtalk_userid"),
        ("企业微信userid", "wecom_userid"),
        ("手机号", "phone"),
    ):
        seen: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            value = getattr(row, attr)
            if value:
                seen[value].append(row.row_number)
        for value, numbers in seen.items():
            if len(numbers) > 1:
                for n in numbers:
                    others = "、".join(str(o) for o in numbers if o != n)
                    errors.append(RowError(n, column, f"“{value}”在文件中重复（另见第{others}行）"))
    return errors


def import_roster(
    *,
    session: Session,
    table: Table,
    actor_label: str,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Apply a roster in the caller's transaction; bad rows are reported, never applied."""
    rows, errors = parse_table(table)
    report = ImportReport(errors=errors)
    for row in rows:
        try:
            with session.begin_nested():
                report.changes.append(_apply_row(session, row, actor_label=actor_label))
        except (RowProblem, orgs.OrgPathError) as problem:
            column = problem.column if isinstance(problem, RowProblem) else "所在支部"
            reason = problem.reason if isinstance(problem, RowProblem) else str(problem)
            report.errors.append(RowError(row.row_number, column, reason))
        if progress:
            progress(1)
    report.errors.sort(key=lambda e: (e.row, e.column))
    return report


def _find_person(session: Session, row: RosterRow) -> Person | None:
    keys = (
        ("钉钉userid", Person.dingtalk_userid, row.dingtalk_userid),
        ("企业微信userid", Person.wecom_userid, row.wecom_userid),
        ("手机号", Person.phone, row.phone),
    )
    found: dict[int, tuple[Person, str]] = {}
    for column, attr, value in keys:
        if value:
            person = session.exec(select(Person).where(attr == value)).first()
            if person is not None:
                found.setdefault(person.id or 0, (person, column))
    if len(found) > 1:
        (_, (a, col_a)), (_, (b, col_b)) = list(found.items())[:2]
        raise RowProblem(col_b, f"{col_a}对应已有人员“{a.name}”，而{col_b}对应另一人员“{b.name}”")
    # A userid match outranks a phone match: phones get reassigned, userids do not.
    return next(iter(found.values()))[0] if found else None


def _apply_row(session: Session, row: RosterRow, *, actor_label: str) -> RowChange:
    branch = orgs.ensure_path(session, row.branch_path, actor_label=actor_label)
    if branch.kind != OrgKind.branch:
        raise RowProblem("所在支部", f"“{branch.name}”是{OrgKind(branch.kind).label}，不是党支部")
    category_change = _apply_category(session, branch, row, actor_label=actor_label)
    home = (
        orgs.ensure_group(session, branch, row.group, actor_label=actor_label)
        if row.group
        else branch
    )
    person = _find_person(session, row)
    wanted = {
        "name": row.name,
        "member_type": row.member_type.value,
        "organization_id": home.id,
        "active": True,
        # A blank cell on re-import keeps what is known rather than erasing it.
        "phone": row.phone or (person.phone if person else None),
        "dingtalk_userid": row.dingtalk_userid or (person.dingtalk_userid if person else None),
        "wecom_userid": row.wecom_userid or (person.wecom_userid if person else None),
        "joined_party_on": row.joined_party_on or (person.joined_party_on if person else None),
    }
    if person is None:
        person = Person(**wanted)
        session.add(person)
        session.flush()
        audit.record(
            session=session,
            actor_label=actor_label,
            action="create",
            entity="person",
            entity_id=person.id,
            after=wanted,
        )
        action, changes = "created", {}
    else:
        before = {f: getattr(person, f) for f in PERSON_FIELDS}
        changes = {f: (before[f], wanted[f]) for f in PERSON_FIELDS if before[f] != wanted[f]}
        for f, (_, new) in changes.items():
            setattr(person, f, new)
        if changes:
            session.flush()
            audit.record(
                session=session,
                actor_label=actor_label,
                action="update",
                entity="person",
                entity_id=person.id,
                before={f: old for f, (old, _) in changes.items()},
                after={f: new for f, (_, new) in changes.items()},
            )
        action = "updated" if changes else "unchanged"
    role_change = _sync_roles(session, person, branch, row.roles, actor_label=actor_label)
    changes.update(category_change)
    changes.update(role_change)
    if action == "unchanged" and changes:
        action = "updated"
    return RowChange(row.row_number, row.name, action, changes)


def _apply_category(
    session: Session, branch: Organization, row: RosterRow, *, actor_label: str
) -> dict[str, tuple[Any, Any]]:
    if not row.branch_category or branch.category == row.branch_category:
        return {}
    old = branch.category
    branch.category = row.branch_category
    session.flush()
    audit.record(
        session=session,
        actor_label=actor_label,
        action="update",
        entity="organization",
        entity_id=branch.id,
        before={"category": old},
        after={"category": row.branch_category},
    )
    return {"branch_category": (old, row.branch_category)}


def _sync_roles(
    session: Session, person: Person, branch: Organization, roles: list[Role], *, actor_label: str
) -> dict[str, tuple[Any, Any]]:
    """Make the person's roles inside the row's committee exactly those the roster names."""
    committee = orgs.ancestors(session, branch)[0]
    scope = set(orgs.subtree_ids(session, committee))
    wanted = {(r, committee.id if r in COMMITTEE_ROLES else branch.id) for r in roles}
    held = {
        (Role(a.role), a.organization_id): a
        for a in session.exec(select(RoleAssignment).where(RoleAssignment.person_id == person.id))
        if a.organization_id in scope
    }
    if set(held) == wanted:
        return {}
    for key in set(held) - wanted:
        session.delete(held[key])
    for role, org_id in wanted - set(held):
        session.add(RoleAssignment(person_id=person.id, role=role, organization_id=org_id))
    session.flush()
    before = sorted(f"{r.value}@{o}" for r, o in held)
    after = sorted(f"{r.value}@{o}" for r, o in wanted)
    audit.record(
        session=session,
        actor_label=actor_label,
        action="update",
        entity="role",
        entity_id=person.id,
        before={"roles": ",".join(before)},
        after={"roles": ",".join(after)},
    )
    return {"roles": (before, after)}


def export_rows(*, session: Session, root: Organization | None = None) -> list[list[object]]:
    """The roster as rows in the import format (header first), optionally for one subtree."""
    query = select(Person).order_by(Person.organization_id, Person.id)
    if root is not None:
        query = query.where(Person.organization_id.in_(orgs.subtree_ids(session, root)))
    all_orgs = {o.id: o for o in session.exec(select(Organization))}
    roles: dict[int, list[Role]] = defaultdict(list)
    for a in session.exec(select(RoleAssignment).order_by(RoleAssignment.id)):
        roles[a.person_id].append(Role(a.role))
    rows: list[list[object]] = [list(EXPORT_COLUMNS)]
    for person in session.exec(query):
        home = all_orgs[person.organization_id]
        branch = all_orgs[home.parent_id] if home.kind == OrgKind.group else home
        chain = [all_orgs[int(i)] for i in branch.path.strip("/").split("/")]
        cells = {
            "姓名": person.name,
            "手机号": person.phone or "",
            "钉钉userid": person.dingtalk_userid or "",
            "企业微信userid": person.wecom_userid or "",
            "所在支部": "/".join(o.name for o in chain),
            "党小组": home.name if home.kind == OrgKind.group else "",
            "职务/角色": "、".join(r.label for r in roles[person.id or 0]),
            "人员类别": MemberType(person.member_type).label,
            "入党日期": person.joined_party_on.isoformat() if person.joined_party_on else "",
            "支部类别": BranchCategory(branch.category).label if branch.category else "",
        }
        rows.append([cells[c] for c in EXPORT_COLUMNS])
    return rows


def write_xlsx(path: Path, rows: Iterable[list[object]]) -> None:
    """Write rows to the first sheet of a new workbook."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "党员名册"
    for row in rows:
        sheet.append(row)
    workbook.save(path)
