"""Pure roster parsing rules: headers, phones, dates, roles, member types."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from app.domain.roster_rules import (
    MAX_LENGTH,
    MAX_ORG_NAME,
    RowProblem,
    map_headers,
    parse_date,
    parse_phone,
    parse_roles,
    parse_row,
    split_org_path,
)
from app.domain.vocab import MemberType, Role
from app.models import Organization, Person


def test_headers_match_after_trimming_and_width_folding():
    headers = [" 姓名 ", "手机号", "钉钉ＵＳＥＲＩＤ", "企业微信userid", "所在支部", "党小组",
               "职务／角色", "人员类别", "入党日期", "备注"]
    mapping, missing = map_headers(headers)
    assert missing == []
    assert mapping[2] == "钉钉userid"
    assert mapping[6] == "职务/角色"
    assert 9 not in mapping


def test_missing_required_headers_are_named():
    _, missing = map_headers(["姓名", "手机号"])
    assert missing == ["所在支部", "人员类别"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("13800001234", "13800001234"), ("138 0000 1234", "13800001234"),
     ("+86 138-0000-1234", "13800001234"), ("8613800001234", "13800001234"), ("", None)],
)
def test_phones_are_normalised(raw, expected):
    assert parse_phone(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "23800001234", "1380000123x", "138000012345"])
def test_malformed_phones_are_refused_with_the_column(raw):
    with pytest.raises(RowProblem) as info:
        parse_phone(raw)
    assert info.value.column == "手机号"
    assert raw in info.value.reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("2020-07-01", date(2020, 7, 1)), ("2020/7/1", date(2020, 7, 1)),
     ("2020.7.1", date(2020, 7, 1)), ("2020年7月1日", date(2020, 7, 1)),
     (datetime(2019, 6, 30, 0, 0), date(2019, 6, 30)), (None, None), ("", None)],
)
def test_dates_in_the_forms_people_type(raw, expected):
    assert parse_date(raw) == expected


@pytest.mark.parametrize("raw", ["2020-02-30", "去年", "07/01/2020"])
def test_bad_dates_are_refused(raw):
    with pytest.raises(RowProblem, match="不是有效日期"):
        parse_date(raw)


def test_roles_split_on_common_separators_and_ignore_plain_titles():
    assert parse_roles("支部书记、组织委员，宣传委员") == [
        Role.branch_secretary, Role.organization_committee_member]
    assert parse_roles("") == []
    with pytest.raises(RowProblem, match="不是已知角色"):
        parse_roles("董事长")


def test_paths_split_on_half_and_full_width_slashes():
    assert split_org_path("某公司党委／生产第一党支部 ") == ["某公司党委", "生产第一党支部"]
    assert split_org_path("A/ B /C") == ["A", "B", "C"]


def _row(**cells):
    base = {"姓名": "张三", "所在支部": "党委/一支部", "人员类别": "正式党员",
            "手机号": "13800001234"}
    return parse_row(5, {**base, **cells})


def test_a_member_always_holds_the_member_role():
    row = _row(**{"职务/角色": "支部书记"})
    assert row.roles == [Role.member, Role.branch_secretary]
    assert row.member_type is MemberType.full
    assert _row(人员类别="群众").roles == []


@pytest.mark.parametrize(
    ("cells", "column"),
    [({"姓名": " "}, "姓名"), ({"手机号": "123"}, "手机号"), ({"人员类别": "团员"}, "人员类别"),
     ({"所在支部": ""}, "所在支部"), ({"支部类别": "科研类"}, "支部类别"),
     ({"入党日期": "昨天"}, "入党日期"),
     # What PostgreSQL would refuse: NUL, and text longer than the column.
     ({"姓名": "张\x00三"}, "姓名"), ({"党小组": "第一\x07小组"}, "党小组"),
     ({"姓名": "张" * 51}, "姓名"), ({"钉钉userid": "u" * 65}, "钉钉userid"),
     ({"所在支部": "示范集团党委/" + "支" * 101}, "所在支部")],
)
def test_each_bad_cell_names_its_column(cells, column):
    with pytest.raises(RowProblem) as info:
        _row(**cells)
    assert info.value.column == column


def test_the_length_limits_are_the_columns_the_database_stores():
    limits = {"姓名": Person.name, "钉钉userid": Person.dingtalk_userid,
              "企业微信userid": Person.wecom_userid, "党小组": Organization.name}
    assert {c: col.type.length for c, col in limits.items()} == MAX_LENGTH
    assert Organization.name.type.length == MAX_ORG_NAME
    assert _row(姓名="张" * 50).name == "张" * 50
