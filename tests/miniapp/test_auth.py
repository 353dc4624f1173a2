"""H5 login: identity only from the platform (DingTalk code, WeCom OAuth) or the dev list."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session

from app.config import Settings
from app.main import create_app
from app.models import Person
from app.ports import LoginRejected
from bot.fakes.dingtalk import FakeDingTalk
from miniapp_api.session import COOKIE_NAME, issue_session
from tests.factories import build_org

CLIENT_ID = "dinglogin"
SECRET = "login-secret"


@pytest.fixture
def member(session: Session) -> Person:
    org = build_org(session, members=2)
    person = org.members[org.branches[0].id][1]
    person.dingtalk_userid = "dt-login-1"
    person.wecom_userid = "wx-login-1"
    session.add(person)
    session.commit()
    return person


@pytest.fixture
def dingtalk(db_url: str, member: Person):
    with FakeDingTalk.running(client_id=CLIENT_ID, client_secret=SECRET) as fake:
        settings = Settings(_env_file=None, database_url=db_url, dingtalk_client_id=CLIENT_ID,
                            dingtalk_client_secret=SecretStr(SECRET), embedded_worker=False,
                            dingtalk_api_base=fake.base_url, dingtalk_oapi_base=fake.base_url)
        with TestClient(create_app(settings)) as client:
            yield client, fake


def test_a_dingtalk_code_becomes_a_session_for_that_user(dingtalk, member):
    client, fake = dingtalk
    answer = client.post("/api/v1/auth/dingtalk", json={"code": fake.new_auth_code("dt-login-1")})
    assert answer.status_code == 200
    assert answer.json()["person_id"] == member.id
    assert answer.json()["name"] == member.name
    assert COOKIE_NAME in answer.cookies
    me = client.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["name"] == member.name
    # The same as a bearer token, as the mini-app sends it.
    bare = TestClient(client.app)
    token = answer.json()["token"]
    assert bare.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_a_used_or_unknown_code_is_refused_in_chinese(dingtalk, caplog):
    client, fake = dingtalk
    code = fake.new_auth_code("dt-login-1")
    assert client.post("/api/v1/auth/dingtalk", json={"code": code}).status_code == 200
    with caplog.at_level(logging.WARNING):
        again = client.post("/api/v1/auth/dingtalk", json={"code": code})
    assert again.status_code == 401
    assert again.json()["detail"] == "登录码无效或已过期，请重新打开页面"
    assert "login code refused" in caplog.text
    assert client.post("/api/v1/auth/dingtalk", json={"code": "forged"}).status_code == 401


def test_a_platform_user_off_the_roster_gets_no_session(dingtalk):
    client, fake = dingtalk
    answer = client.post("/api/v1/auth/dingtalk", json={"code": fake.new_auth_code("stranger")})
    assert answer.status_code == 403
    assert "不在党员名册中" in answer.json()["detail"]
    assert COOKIE_NAME not in answer.cookies


def test_no_api_takes_identity_from_the_client(dingtalk, member):
    client, _ = dingtalk
    # Without a session, a userid or person id in the request changes nothing.
    assert client.get("/api/v1/me", params={"userid": "dt-login-1"}).status_code == 401
    assert client.get("/api/v1/me", headers={"X-User-Id": str(member.id)}).status_code == 401
    answer = client.post("/api/v1/checkins", json={"token": "1.1.x", "person_id": member.id})
    assert answer.status_code == 401
    assert "登录" in answer.json()["detail"]


def test_forged_or_expired_sessions_are_refused(dingtalk, member):
    client, _ = dingtalk
    forged = issue_session(secret="not-the-key", person_id=member.id, platform="dingtalk")
    answer = client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401
    assert answer.json()["detail"] == "登录信息无效，请重新打开页面"


def test_the_dev_login_does_not_exist_in_production(db_url, member):
    settings = Settings(_env_file=None, database_url=db_url, app_env="prod",
                        secret_key=SecretStr("a-real-production-secret"), embedded_worker=False)
    with TestClient(create_app(settings)) as client:
        assert client.post("/api/v1/auth/dev", json={"person_id": member.id}).status_code in (
            404, 405)
        page = client.get("/h5/login", params={"next": "/h5/me"})
        assert "请在钉钉或企业微信中打开本页面" in page.text
        assert f'data-person="{member.id}"' not in page.text


def test_an_h5_page_without_a_session_goes_to_login_and_back(settings_env, member):
    with TestClient(create_app(settings_env)) as client:
        first = client.get("/h5/checkin", params={"t": "1.2.abc"}, follow_redirects=False)
        assert first.status_code == 303
        assert first.headers["location"] == "/h5/login?next=%2Fh5%2Fcheckin%3Ft%3D1.2.abc"
        login = client.get(first.headers["location"])
        assert f'data-person="{member.id}"' in login.text  # dev: pick a demo person
        assert client.post("/api/v1/auth/dev", json={"person_id": member.id}).status_code == 200
        assert client.get("/h5/checkin", params={"t": "1.2.abc"}).status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/h5", "/api/v1/me",
                                    "/h5/..\\evil"])
def test_login_only_returns_to_our_own_pages(settings_env, target):
    with TestClient(create_app(settings_env)) as client:
        page = client.get("/h5/login", params={"next": target})
        assert '"/h5/me"' in page.text


class FakeWeComLogin:
    """The WeCom port as the WeCom adapter provides it: single-use codes."""

    def __init__(self) -> None:
        self.codes = {"wx-code-1": "wx-login-1"}

    def userid_for_code(self, code: str) -> str:
        if code not in self.codes:
            raise LoginRejected("40029 invalid code")
        return self.codes.pop(code)


def test_wecom_oauth_round_trip_with_state(db_url, member):
    settings = Settings(_env_file=None, database_url=db_url, wecom_corp_id="wwcorp",
                        wecom_agent_id="1000002", embedded_worker=False,
                        public_base_url="https://pp.example.com")
    app = create_app(settings)
    app.state.login_resolvers["wecom"] = FakeWeComLogin()
    with TestClient(app, base_url="https://pp.example.com") as client:
        start = client.get("/h5/login", params={"next": "/h5/activities"},
                           headers={"User-Agent": "Mozilla/5.0 wxwork/4.1.22 MicroMessenger"},
                           follow_redirects=False)
        assert start.status_code == 303
        go = client.get(start.headers["location"], follow_redirects=False)
        assert go.status_code == 302
        url = urlsplit(go.headers["location"])
        query = parse_qs(url.query)
        assert url.netloc == "open.weixin.qq.com" and url.fragment == "wechat_redirect"
        assert query["appid"] == ["wwcorp"] and query["agentid"] == ["1000002"]
        assert query["scope"] == ["snsapi_base"]
        assert query["redirect_uri"] == ["https://pp.example.com/api/v1/auth/wecom/callback"]
        state = query["state"][0]
        assert state.isalnum() and len(state) <= 128

        foreign = client.get("/api/v1/auth/wecom/callback",
                             params={"code": "wx-code-1", "state": "someone-elses"},
                             follow_redirects=False)
        assert foreign.status_code == 400
        back = client.get("/api/v1/auth/wecom/callback",
                          params={"code": "wx-code-1", "state": state}, follow_redirects=False)
        assert back.status_code == 302 and back.headers["location"] == "/h5/activities"
        assert client.get("/api/v1/me").json()["name"] == member.name
