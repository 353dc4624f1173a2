"""The mini-app API of my points, my ledger and branch boards: the services' numbers, the
ranking mode's cut, and who may see which board."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.config import Settings
from app.db import utcnow, write_session
from app.domain.periods import month_key
from app.domain.vocab import MemberType, Role
from app.main import create_app
from app.models import Organization, Person, RoleAssignment
from app.services import schemes
from app.services.ledger import Actor, record_entry, revoke_entry
from app.services.reports import branch_board, branch_year, member_standing
from tests.factories import build_org

PERIOD = "2026-11"


@dataclass
class World:
    """Two branches of four under the xinluo scheme (top 10), with points in October–November;
    `other` joined the party in September 2026."""

    branches: list[int]
    secretary: int
    secretary_name: str
    member: int
    member_name: str
    other: int
    other_branch_member: int
    admin: int
    masses: int


def give(
    s: Session,
    person_id: int,
    code: str,
    count: int,
    day: date,
    *,
    actor: Actor,
    reason: str = "完成线上学习",
    evidence: list[str] | None = None,
) -> int:
    """Record an entry and return its id."""
    entry = record_entry(
        session=s,
        member_id=person_id,
        indicator_code=code,
        count=count,
        occurred_on=day,
        reason=reason,
        actor=actor,
        evidence=evidence,
    )
    assert entry.id is not None
    return entry.id


def build_world(db: Engine) -> World:
    """The organisation and ledger the API and page tests read."""
    with write_session(db) as s:
        built = build_org(s, branches=2, members=4)
        first, second = built.branches
        secretary, member, other, _ = built.members[first.id]
        clerk = Actor(secretary.name, secretary.id)
        give(s, member.id, "online_study", 3, date(2026, 11, 5), actor=clerk)
        give(
            s,
            member.id,
            "attendance_present",
            2,
            date(2026, 11, 9),
            actor=clerk,
            reason="参加主题党日",
        )
        wrong = give(
            s,
            member.id,
            "online_study",
            1,
            date(2026, 11, 10),
            actor=clerk,
            reason="重复录入的学习",
        )
        revoke_entry(
            session=s, entry_id=wrong, reason="重复录入", actor=clerk, today=date(2026, 11, 11)
        )
        give(
            s,
            member.id,
            "study_notes",
            1,
            date(2026, 11, 12),
            actor=Actor(member.name, member.id),
            reason="提交学习心得",
            evidence=["notes.jpg"],
        )
        give(
            s,
            member.id,
            "attendance_present",
            1,
            date(2026, 10, 9),
            actor=clerk,
            reason="参加十月主题党日",
        )
        give(s, other.id, "online_study", 5, date(2026, 11, 6), actor=clerk)
        other.joined_party_on = date(2026, 9, 1)
        admin = Person(
            name="党委管理员", member_type=MemberType.full, organization_id=built.committee.id
        )
        masses = Person(name="群众代表", member_type=MemberType.masses, organization_id=first.id)
        s.add_all([admin, masses])
        s.flush()
        s.add(
            RoleAssignment(person_id=admin.id, role=Role.admin, organization_id=built.committee.id)
        )
        return World(
            branches=[first.id, second.id],
            secretary=secretary.id,
            secretary_name=secretary.name,
            member=member.id,
            member_name=member.name,
            other=other.id,
            other_branch_member=built.members[second.id][1].id,
            admin=admin.id,
            masses=masses.id,
        )


def login(client: TestClient, person_id: int) -> None:
    """Log in through the dev login, which sets the session cookie."""
    response = client.post("/api/v1/auth/dev", json={"person_id": person_id})
    assert response.status_code == 200, response.text


@pytest.fixture
def world(db: Engine) -> World:
    return build_world(db)


@pytest.fixture
def client(settings_env: Settings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(settings_env)) as client:
        yield client


def test_everything_needs_a_login(client, world):
    for url in (
        "/api/v1/me",
        f"/api/v1/me/points?period={PERIOD}",
        "/api/v1/me/ledger",
        f"/api/v1/boards/branch/{world.branches[0]}",
    ):
        response = client.get(url)
        assert response.status_code == 401, url
        assert "请先登录" in response.json()["detail"]


def test_me_says_who_is_logged_in(client, world):
    login(client, world.member)
    me = client.get("/api/v1/me").json()
    assert me["id"] == world.member
    assert me["name"] == world.member_name
    assert me["organization"]["path"] == "测试党委/第1党支部"
    assert me["branch"]["id"] == world.branches[0]
    assert me["branch"]["kind_label"] == "党支部"
    assert me["member_type_label"] == "正式党员"
    assert me["roles"] == ["党员"]
    assert me["is_secretary"] is False
    login(client, world.secretary)
    me = client.get("/api/v1/me").json()
    assert me["roles"] == ["党员", "支部书记"]
    assert me["is_secretary"] is True


def test_points_are_the_services_numbers(client, world, db):
    login(client, world.member)
    response = client.get("/api/v1/me/points", params={"period": PERIOD})
    assert response.status_code == 200, response.text
    body = response.json()
    with Session(db) as s:
        standing = member_standing(session=s, person=s.get(Person, world.member), period=PERIOD)
    # 3 online studies (the fourth was revoked) + 2 attendances × 3; the notes await review.
    assert body["total"] == 9.0 == float(standing.total)
    assert body["base"] == float(standing.score.base)
    assert body["bonus"] == float(standing.score.bonus) == 0
    assert body["rank"] == standing.rank_in_branch == 1
    assert body["branch_size"] == standing.branch_size == 4
    assert [(d["name"], d["score"], d["max"]) for d in body["dimensions"]] == [
        (d.name, float(d.score), float(d.max)) for d in standing.score.dimensions
    ]
    assert body["dimensions"][0] == {
        "code": "political",
        "name": "政治合格",
        "score": 3.0,
        "max": 25.0,
    }
    assert (body["pending"], body["pending_points"]) == (1, 2.0)
    assert body["period"] == {
        "key": PERIOD,
        "kind": "month",
        "label": "2026年11月",
        "through": PERIOD,
        "closed": False,
    }
    assert body["ranking_mode"] == "top_n"
    assert body["grade"] is None
    trend = body["trend"]
    assert trend[0]["period"] == "2025-12"
    assert len(trend) == 12
    assert trend[-1] == {"period": PERIOD, "total": 9.0}
    assert trend[-2] == {"period": "2026-10", "total": 3.0}
    assert trend[0]["total"] is None  # no scheme in force before 2026
    assert trend[1]["total"] == 0.0  # scheme in force, nothing earned


def test_the_trend_starts_when_the_member_joined(client, world):
    login(client, world.other)
    trend = {
        p["period"]: p["total"]
        for p in client.get("/api/v1/me/points", params={"period": PERIOD}).json()["trend"]
    }
    assert (trend["2026-08"], trend["2026-09"], trend[PERIOD]) == (None, 0.0, 5.0)


def test_the_default_period_is_this_month(client, world, settings_env):
    login(client, world.member)
    body = client.get("/api/v1/me/points").json()
    assert body["period"]["key"] == month_key(utcnow(), settings_env.tz)
    assert body["period"]["kind"] == "month"


@pytest.mark.parametrize(
    ("period", "status", "words"),
    [
        ("下下月", 400, "看不懂“下下月”"),
        ("2026-13", 400, "看不懂"),
        ("2026/11", 400, "可以写：本月、上月"),
        ("2099-01", 400, "还没有开始"),
        ("2025-06", 404, "没有生效的积分方案"),
    ],
)
def test_a_bad_period_is_refused_in_chinese(client, world, period, status, words):
    login(client, world.member)
    for url in (
        "/api/v1/me/points",
        "/api/v1/me/ledger",
        f"/api/v1/boards/branch/{world.branches[0]}",
    ):
        response = client.get(url, params={"period": period})
        if status == 404 and url.endswith("ledger"):
            # Without a scheme nothing could be recorded: the ledger is simply empty.
            assert response.json()["entries"] == []
            continue
        assert response.status_code == status, (url, response.text)
        assert words in response.json()["detail"]


def test_quarter_and_year_follow_the_annual_report(client, world, db):
    login(client, world.member)
    year = client.get("/api/v1/me/points", params={"period": "2026"}).json()
    quarter = client.get("/api/v1/me/points", params={"period": "2026-Q4"}).json()
    through = year["period"]["through"]
    with Session(db) as s:
        branch = s.get(Organization, world.branches[0])
        board = branch_year(session=s, branch=branch, year=2026, through=int(through[5:]))
    row = next(r for r in board.rows if r.person_id == world.member)
    assert year["period"]["kind"] == "year"
    assert year["total"] == float(row.year.score)
    assert year["base"] == float(row.year.average_base)
    assert year["rank"] == row.rank
    assert year["grade"] == row.grade == "不合格"
    assert year["base_label"] == "月均基础分"
    assert "民主评议分尚未录入，暂按月均基础分计算" in year["notes"]
    summary = row.quarters["2026-Q4"]
    assert quarter["total"] == float(summary.total)
    assert quarter["base"] == float(summary.average_base)
    # The dimension averages use the base average's denominator, so they add up to it here.
    assert sum(d["score"] for d in quarter["dimensions"]) == pytest.approx(quarter["base"])
    assert quarter["pending"] == 1


def test_the_ledger_shows_reasons_recorders_and_statuses(client, world):
    login(client, world.member)
    body = client.get("/api/v1/me/ledger", params={"period": PERIOD}).json()
    entries = body["entries"]
    assert [e["occurred_on"] for e in entries] == sorted(e["occurred_on"] for e in entries)
    study = entries[0]
    assert study["indicator_name"] == "完成线上学习任务（“金叶岩声”平台等）"
    assert (study["reason"], study["created_by_label"]) == ("完成线上学习", world.secretary_name)
    assert (study["points"], study["status_label"], study["source_label"]) == (
        3.0,
        "有效",
        "系统自动",
    )
    by_reason = {e["reason"]: e for e in entries}
    revoked = by_reason["重复录入的学习"]
    reversal = by_reason["重复录入"]
    assert (revoked["status"], revoked["status_label"]) == ("reversed", "已冲销")
    assert revoked["reversed_by"] == reversal["id"]
    assert (reversal["reversal_of"], reversal["points"]) == (revoked["id"], -1.0)
    assert reversal["source_label"] == "冲销更正"
    notes = by_reason["提交学习心得"]
    assert (notes["status"], notes["status_label"], notes["created_by_label"]) == (
        "pending",
        "待审核",
        world.member_name,
    )
    assert "参加十月主题党日" not in by_reason  # October is another period
    year = client.get("/api/v1/me/ledger", params={"period": "2026"}).json()
    assert "参加十月主题党日" in {e["reason"] for e in year["entries"]}


def test_a_member_sees_only_their_own_branch_board(client, world, db):
    first, second = world.branches
    login(client, world.member)
    board = client.get(f"/api/v1/boards/branch/{first}", params={"period": PERIOD}).json()
    with Session(db) as s:
        full = branch_board(session=s, branch=s.get(Organization, first), period=PERIOD)
    # Four members, all inside the top 10: everyone is shown, but no average in top_n mode.
    assert [(r["person_id"], r["rank"], r["total"]) for r in board["rows"]] == [
        (r.person_id, r.rank, float(r.total)) for r in full.rows
    ]
    assert [r["name"] for r in board["rows"] if r["is_me"]] == [world.member_name]
    assert board["own"]["person_id"] == world.member and board["own_in_rows"] is True
    assert board["notice"] == "本支部只公布前 10 名。"
    assert board["average"] is None
    refused = client.get(f"/api/v1/boards/branch/{second}", params={"period": PERIOD})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "您只能查看本支部的积分榜"
    missing = client.get("/api/v1/boards/branch/999999", params={"period": PERIOD})
    assert missing.status_code == 404
    assert missing.json()["detail"] == "找不到该党支部"
    # A secretary manages their own branch only.
    login(client, world.secretary)
    assert client.get(f"/api/v1/boards/branch/{second}").status_code == 403


def test_the_committee_admin_sees_any_branch_board(client, world):
    login(client, world.admin)
    for branch_id in world.branches:
        response = client.get(f"/api/v1/boards/branch/{branch_id}", params={"period": PERIOD})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["own"] is None
        assert not any(r["is_me"] for r in body["rows"])


def test_the_masses_have_no_points(client, world):
    login(client, world.masses)
    response = client.get("/api/v1/me/points", params={"period": PERIOD})
    assert response.status_code == 403
    assert "不是党员" in response.json()["detail"]
    assert client.get("/api/v1/me").json()["member_type_label"] == "群众"


SMALL = """
code: small
name: 小方案
level: member
dimensions: [{code: work, name: 工作, max: 100}]
indicators:
  - {code: task, name: 完成任务, dimension: work, kind: score, nature: must, points: 10,
     source: automatic}
period: {base_cap: 100}
ranking: RANKING
"""


def ranked_branch(db: Engine, ranking: str) -> tuple[list[int], list[str], int]:
    """Five members scoring 40, 30, 20, 10, 0 under a scheme with the given ranking rule."""
    with write_session(db) as s:
        built = build_org(s, name="排名党委", members=5, scheme=None)
        schemes.publish(
            session=s,
            org=built.committee,
            content=SMALL.replace("RANKING", ranking),
            effective_from=date(2026, 1, 1),
            actor_label="test",
        )
        people = built.everyone()
        for person, count in zip(people, (4, 3, 2, 1), strict=False):
            give(s, person.id, "task", count, date(2026, 11, 3), actor=Actor("test"))
        return [p.id for p in people], [p.name for p in people], built.branches[0].id


def test_top_n_hides_the_rest_but_shows_the_own_row(settings_env, db):
    ids, names, branch_id = ranked_branch(db, "{mode: top_n, n: 2}")
    with TestClient(create_app(settings_env)) as client:
        login(client, ids[3])
        board = client.get(f"/api/v1/boards/branch/{branch_id}", params={"period": PERIOD}).json()
        points = client.get("/api/v1/me/points", params={"period": PERIOD}).json()
    assert [(r["name"], r["rank"], r["total"]) for r in board["rows"]] == [
        (names[0], 1, 40.0),
        (names[1], 2, 30.0),
    ]
    assert board["own"] == {
        "person_id": ids[3],
        "name": names[3],
        "rank": 4,
        "base": 10.0,
        "bonus": 0.0,
        "total": 10.0,
        "vetoed": False,
        "is_me": True,
    }
    assert board["own_in_rows"] is False
    # Never a bottom list: the third and the last are nowhere in what the member receives.
    assert names[2] not in str(board) and names[4] not in str(board)
    assert (board["members"], board["average"]) == (None, None)
    assert board["notice"] == "本支部只公布前 2 名。"
    assert (points["rank"], points["branch_size"]) == (4, 5)


def test_full_ranking_shows_everyone_and_the_average(settings_env, db):
    ids, names, branch_id = ranked_branch(db, "{mode: full}")
    with TestClient(create_app(settings_env)) as client:
        login(client, ids[4])
        board = client.get(f"/api/v1/boards/branch/{branch_id}", params={"period": PERIOD}).json()
    assert [r["name"] for r in board["rows"]] == names
    assert board["rows"][-1]["is_me"] and board["own_in_rows"]
    assert (board["members"], board["average"], board["notice"]) == (5, 20.0, None)


def test_aggregates_show_only_count_and_average(settings_env, db):
    ids, _, branch_id = ranked_branch(db, "{mode: aggregates}")
    with TestClient(create_app(settings_env)) as client:
        login(client, ids[0])
        board = client.get(f"/api/v1/boards/branch/{branch_id}", params={"period": PERIOD}).json()
    assert board["rows"] == []
    assert board["own"]["rank"] == 1
    assert (board["members"], board["average"]) == (5, 20.0)


def test_the_openapi_schema_documents_the_endpoints(client):
    spec = client.get("/openapi.json").json()
    points = spec["paths"]["/api/v1/me/points"]["get"]
    assert {"200", "400", "401"} <= set(points["responses"])
    schema = spec["components"]["schemas"]["MyPoints"]["properties"]
    assert schema["total"]["examples"] == [93.5]
    assert "/api/v1/boards/branch/{branch_id}" in spec["paths"]
    assert schema["base"]["type"] == "number"  # JSON numbers, not Decimal strings
