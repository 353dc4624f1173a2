"""Roster import and export against a real database."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from app.db import write_session
from app.models import AuditLog, Organization, OrgKind, Person, Role, RoleAssignment
from app.services.roster import (
    RosterFileError,
    export_rows,
    import_roster,
    read_table,
    write_xlsx,
)
from tests.rosters import BRANCH, HEADER, person, write_csv
from tests.rosters import write_xlsx as write_roster


def run_import(db, path, *, dry_run=False):
    with write_session(db) as session:
        report = import_roster(session=session, table=read_table(path), actor_label="test")
        if dry_run:
            session.rollback()
    return report


def count(db, model):
    with write_session(db) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def roster(n=5):
    return [
        person(f"党员{i}", i, **({"职务/角色": "支部书记"} if i == 1 else {}))
        for i in range(1, n + 1)
    ]


def test_import_creates_people_organisations_and_roles(db, tmp_path):
    report = run_import(db, write_roster(tmp_path / "r.xlsx", roster()))
    assert report.summary == {"created": 5, "updated": 0, "unchanged": 0, "rejected": 0}
    with write_session(db) as s:
        committee = s.exec(select(Organization).where(Organization.parent_id.is_(None))).one()
        branch = s.exec(select(Organization).where(Organization.parent_id == committee.id)).one()
        assert (committee.name, committee.kind) == ("测试公司党委", OrgKind.committee)
        assert (branch.name, branch.kind) == ("生产第一党支部", OrgKind.branch)
        assert branch.category == "production"
        secretary = s.exec(select(Person).where(Person.dingtalk_userid == "dt1")).one()
        roles = {
            a.role
            for a in s.exec(select(RoleAssignment).where(RoleAssignment.person_id == secretary.id))
        }
        assert roles == {Role.member, Role.branch_secretary}


def test_importing_the_same_roster_twice_changes_nothing(db, tmp_path):
    path = write_roster(tmp_path / "r.xlsx", roster())
    run_import(db, path)
    audits = count(db, AuditLog)
    report = run_import(db, path)
    assert report.summary == {"created": 0, "updated": 0, "unchanged": 5, "rejected": 0}
    assert count(db, Person) == 5
    assert count(db, AuditLog) == audits


def test_bad_rows_are_named_and_good_rows_still_land(db, tmp_path):
    rows = [
        *roster(3),
        person("", 10),
        person("坏手机", 11, 手机号="1234"),
        person("坏类别", 12, 人员类别="团员"),
        person("重复甲", 13, 钉钉userid="same"),
        person("重复乙", 14, 钉钉userid="same"),
    ]
    report = run_import(db, write_roster(tmp_path / "r.xlsx", rows))
    assert report.summary == {"created": 3, "updated": 0, "unchanged": 0, "rejected": 5}
    found = {(e.row, e.column) for e in report.errors}
    # Header is row 1, so the fourth data line is spreadsheet row 5.
    assert found == {
        (5, "姓名"),
        (6, "手机号"),
        (7, "人员类别"),
        (8, "钉钉userid"),
        (9, "钉钉userid"),
    }
    reasons = {e.row: e.reason for e in report.errors}
    assert "1234" in reasons[6] and "第9行" in reasons[8]
    assert count(db, Person) == 3


def test_a_csv_row_with_nul_or_an_overlong_name_is_refused_and_the_rest_land(db, tmp_path):
    # PostgreSQL refuses both outright: once they reached it, the whole import failed.
    rows = [*roster(2), person("坏\x00人", 10), person("长" * 51, 11)]
    report = run_import(db, write_csv(tmp_path / "r.csv", rows))
    assert report.summary == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 2}
    assert {(e.row, e.column) for e in report.errors} == {(4, "姓名"), (5, "姓名")}
    assert count(db, Person) == 2


def test_re_import_updates_in_place_matching_by_userid_then_phone(db, tmp_path):
    run_import(db, write_roster(tmp_path / "a.xlsx", roster(2)))
    changed = [
        person("党员1改名", 1, 职务="党员"),
        # No userids: the phone identifies the person, and the known userids are kept.
        person("党员2", 2, 钉钉userid="", 企业微信userid="", 人员类别="预备党员"),
    ]
    report = run_import(db, write_roster(tmp_path / "b.xlsx", changed))
    assert report.summary["updated"] == 2 and report.summary["created"] == 0
    with write_session(db) as s:
        p1 = s.exec(select(Person).where(Person.dingtalk_userid == "dt1")).one()
        p2 = s.exec(select(Person).where(Person.phone == "13900000002")).one()
        assert p1.name == "党员1改名"
        assert (p2.dingtalk_userid, p2.member_type) == ("dt2", "probationary")
        # Row 1 no longer names the secretary role, so it is withdrawn.
        roles = {
            a.role for a in s.exec(select(RoleAssignment).where(RoleAssignment.person_id == p1.id))
        }
        assert roles == {Role.member}
    assert count(db, Person) == 2


def test_a_row_whose_keys_point_at_two_people_is_rejected(db, tmp_path):
    run_import(db, write_roster(tmp_path / "a.xlsx", roster(2)))
    clash = person("冒名", 1, 手机号="13900000002")
    report = run_import(db, write_roster(tmp_path / "b.xlsx", [clash, person("新人", 3)]))
    assert report.summary == {"created": 1, "updated": 0, "unchanged": 0, "rejected": 1}
    assert report.errors[0].row == 2 and "另一人员" in report.errors[0].reason


def test_dry_run_reports_changes_and_writes_nothing(db, tmp_path):
    report = run_import(db, write_roster(tmp_path / "r.xlsx", roster()), dry_run=True)
    assert report.summary["created"] == 5
    assert count(db, Person) == 0
    assert count(db, Organization) == 0
    assert count(db, AuditLog) == 0


def test_csv_in_gbk_with_full_width_headers(db, tmp_path):
    path = write_csv(tmp_path / "r.csv", roster(2), encoding="gb18030")
    text = path.read_bytes().decode("gb18030").replace("职务/角色", "职务／角色")
    path.write_bytes(text.encode("gb18030"))
    assert run_import(db, path).summary["created"] == 2


def test_groups_and_bare_branch_names_resolve_under_the_single_committee(db, tmp_path):
    run_import(db, write_roster(tmp_path / "a.xlsx", roster(1)))
    rows = [
        person("组员", 7, 党小组="第一党小组"),
        person("新支部员", 8, 所在支部="后勤党支部", 支部类别="辅助类"),
    ]
    assert run_import(db, write_roster(tmp_path / "b.xlsx", rows)).summary["created"] == 2
    with write_session(db) as s:
        member = s.exec(select(Person).where(Person.dingtalk_userid == "dt7")).one()
        group = s.get(Organization, member.organization_id)
        assert (group.name, group.kind) == ("第一党小组", OrgKind.group)
        new_branch = s.exec(select(Organization).where(Organization.name == "后勤党支部")).one()
        assert new_branch.kind == OrgKind.branch and new_branch.path.count("/") == 3


def test_every_change_is_audited(db, tmp_path):
    run_import(db, write_roster(tmp_path / "r.xlsx", roster(1)))
    with write_session(db) as s:
        entries = [(e.entity, e.action, e.actor_label) for e in s.exec(select(AuditLog))]
    assert {(entity, action) for entity, action, _ in entries} >= {
        ("organization", "create"),
        ("person", "create"),
        ("role", "update"),
    }
    assert {label for *_, label in entries} == {"test"}


def test_export_round_trips_to_no_changes(db, tmp_path):
    rows = [*roster(), person("组员", 9, 党小组="第二党小组", 入党日期="")]
    run_import(db, write_roster(tmp_path / "r.xlsx", rows))
    with write_session(db) as s:
        exported = export_rows(session=s)
    assert exported[0][: len(HEADER) - 1] == HEADER[:-1]
    out = tmp_path / "out.xlsx"
    write_xlsx(out, exported)
    report = run_import(db, out)
    assert report.summary == {"created": 0, "updated": 0, "unchanged": 6, "rejected": 0}
    branch_cells = {row[4] for row in exported[1:]}
    assert branch_cells == {BRANCH}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("r.txt", b"x", "不支持的文件类型"),
        ("r.csv", b"", "空"),
        ("r.csv", "姓名,手机号\n张三,13800000000\n".encode(), "缺少必填列"),
        ("r.xlsx", b"not a zip", "无法读取"),
    ],
)
def test_unreadable_files_are_refused_as_a_whole(db, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(RosterFileError, match=message):
        run_import(db, path)
    assert count(db, Person) == 0
