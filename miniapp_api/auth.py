"""Login for the H5 pages and the mini-app: identity only from the platform, then a session."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Cookie, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from sqlmodel import col, select

from app.config import Settings
from app.deps import SessionDep, SettingsDep
from app.models import Organization, Person
from app.ports import LoginCodeResolver, LoginRejected
from app.services.access import person_for
from miniapp_api.session import COOKIE_NAME, issue_session

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/auth", tags=["登录"])

NEXT_COOKIE = "pp_next"
STATE_COOKIE = "pp_state"


class CodeLogin(BaseModel):
    """A one-time login code from the platform's JSAPI."""

    code: str = Field(min_length=1, max_length=512, examples=["8f2c1d0e5a6b4c3d"])


class LoggedIn(BaseModel):
    """A new session: the bearer token (also set as a cookie) and who it belongs to."""

    token: str
    expires_in: int = Field(examples=[14400])
    person_id: int
    name: str = Field(examples=["张三"])


class DevLogin(BaseModel):
    """Dev only: log in as a demo person picked from a list."""

    person_id: int


def safe_next(value: str | None) -> str:
    """A post-login target on this site (an H5 page), never another site."""
    if value and value.startswith("/h5/") and "//" not in value and "\\" not in value:
        return value
    return "/h5/me"


def start_session(response: Response, *, settings: Settings, person: Person,
                  platform: str) -> LoggedIn:
    """Issue a session for a person the platform vouched for, as a cookie and a bearer token."""
    assert person.id is not None
    token = issue_session(secret=settings.secret_key.get_secret_value(), person_id=person.id,
                          platform=platform)
    response.set_cookie(COOKIE_NAME, token, max_age=settings.session_ttl_s, httponly=True,
                        samesite="lax", secure=settings.public_base_url.startswith("https://"),
                        path="/")
    return LoggedIn(token=token, expires_in=settings.session_ttl_s, person_id=person.id,
                    name=person.name)


def _resolver(request: Request, platform: str) -> LoginCodeResolver:
    resolvers: dict[str, LoginCodeResolver] = getattr(request.app.state, "login_resolvers", {})
    resolver = resolvers.get(platform)
    if resolver is None:
        name = {"dingtalk": "钉钉", "wecom": "企业微信"}[platform]
        raise HTTPException(503, f"{name}登录尚未配置，请联系管理员")
    return resolver


def _login(request: Request, session: SessionDep, platform: str, code: str) -> Person:
    try:
        userid = _resolver(request, platform).userid_for_code(code)
    except LoginRejected as exc:
        log.warning("login code refused by %s: %s", platform, exc)
        raise HTTPException(401, "登录码无效或已过期，请重新打开页面") from None
    person = person_for(session=session, platform=platform, userid=userid)
    if person is None:
        log.warning("login by %s user not on the roster", platform)
        raise HTTPException(403, "您的账号不在党员名册中，请联系支部书记或管理员")
    return person


@router.post("/dingtalk", response_model=LoggedIn, responses={
    401: {"description": "登录码无效或已过期"}, 403: {"description": "不在名册中"}})
def login_dingtalk(body: CodeLogin, request: Request, response: Response, session: SessionDep,
                   settings: SettingsDep) -> LoggedIn:
    """DingTalk silent login: the page's `dd.requestAuthCode` code becomes a session."""
    person = _login(request, session, "dingtalk", body.code)
    return start_session(response, settings=settings, person=person, platform="dingtalk")


@router.get("/wecom/start", response_class=RedirectResponse, status_code=302)
def wecom_start(settings: SettingsDep, next: str = "/h5/me") -> RedirectResponse:
    """WeCom OAuth2: send the webview to WeCom's silent authorisation (snsapi_base)."""
    if not settings.wecom_corp_id or not settings.wecom_agent_id:
        raise HTTPException(503, "企业微信登录尚未配置，请联系管理员")
    state = secrets.token_hex(16)
    redirect_uri = f"{settings.public_base_url}/api/v1/auth/wecom/callback"
    query = urlencode({"appid": settings.wecom_corp_id, "redirect_uri": redirect_uri,
                       "response_type": "code", "scope": "snsapi_base", "state": state,
                       "agentid": settings.wecom_agent_id}, quote_via=quote)
    response = RedirectResponse(
        f"{settings.wecom_open_base}/connect/oauth2/authorize?{query}#wechat_redirect", 302)
    for name, value in ((STATE_COOKIE, state), (NEXT_COOKIE, safe_next(next))):
        response.set_cookie(name, value, max_age=600, httponly=True, samesite="lax", path="/")
    return response


@router.get("/wecom/callback", response_class=RedirectResponse, status_code=302)
def wecom_callback(
    request: Request, session: SessionDep, settings: SettingsDep, code: str = "",
    state: str = "",
    state_cookie: Annotated[str | None, Cookie(alias=STATE_COOKIE, include_in_schema=False)]
    = None,
    next_cookie: Annotated[str | None, Cookie(alias=NEXT_COOKIE, include_in_schema=False)]
    = None,
) -> RedirectResponse:
    """WeCom OAuth2 redirect target: exchange the code, start a session, go back to the page."""
    if not code or not state or not state_cookie or not secrets.compare_digest(state,
                                                                              state_cookie):
        log.warning("wecom login callback with a missing or foreign state")
        raise HTTPException(400, "登录请求已失效，请重新打开页面")
    person = _login(request, session, "wecom", code)
    response = RedirectResponse(safe_next(next_cookie), 302)
    start_session(response, settings=settings, person=person, platform="wecom")
    response.delete_cookie(STATE_COOKIE, path="/")
    response.delete_cookie(NEXT_COOKIE, path="/")
    return response


@router.post("/logout", status_code=204)
def logout(response: Response) -> Response:
    """End the session on this device."""
    response.delete_cookie(COOKIE_NAME, path="/")
    response.status_code = 204
    return response


def dev_people(session: SessionDep) -> list[tuple[Person, str]]:
    """Dev only: everyone on the roster with their organisation's name, for the dev login."""
    return list(session.exec(
        select(Person, Organization.name)
        .join(Organization, col(Organization.id) == Person.organization_id)
        .where(col(Person.active).is_(True)).order_by(col(Person.id)).limit(200)).all())


dev_router = APIRouter(prefix="/api/v1/auth", tags=["登录"])


@dev_router.post("/dev", response_model=LoggedIn)
def login_dev(body: DevLogin, response: Response, session: SessionDep,
              settings: SettingsDep) -> LoggedIn:
    """APP_ENV=dev only: log in as a demo person (this route does not exist in production)."""
    person = session.get(Person, body.person_id)
    if person is None or not person.active:
        raise HTTPException(404, "找不到该人员")
    return start_session(response, settings=settings, person=person, platform="dev")
