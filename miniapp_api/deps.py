"""Dependencies of the H5 pages and the mini-app API: who is asking, from a signed session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Cookie, Depends, Header, HTTPException, Request
from sqlmodel import Session

from app.deps import SessionDep, SettingsDep
from app.models import Person
from miniapp_api.session import COOKIE_NAME, SessionClaims, SessionError, read_session, token_from

LOGIN_REQUIRED = "请先登录：请从钉钉或企业微信中打开本页面"


class NeedsLogin(Exception):
    """An H5 page was opened without a valid session: the handler sends the browser to log in."""

    def __init__(self, next_url: str, message: str = "") -> None:
        super().__init__(message)
        self.next_url = next_url
        self.message = message


def _claims(settings: SettingsDep, cookie: str | None,
            authorization: str | None) -> SessionClaims:
    token = token_from(cookie=cookie, authorization=authorization)
    if token is None:
        raise SessionError(LOGIN_REQUIRED)
    return read_session(secret=settings.secret_key.get_secret_value(), token=token,
                        max_age_s=settings.session_ttl_s)


def _person(session: Session, claims: SessionClaims) -> Person:
    person = session.get(Person, claims.person_id)
    if person is None or not person.active:
        raise SessionError("您的账号已停用或不在党员名册中，请联系管理员")
    # Give the connection back before the endpoint runs: a write endpoint opens its own short
    # write session, and must not hold two connections at once under load.
    session.expunge(person)
    session.rollback()
    return person


def api_person(
    request: Request, session: SessionDep, settings: SettingsDep,
    cookie: Annotated[str | None, Cookie(alias=COOKIE_NAME, include_in_schema=False)] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Person:
    """The logged-in person of an API call (bearer token or session cookie); 401 otherwise."""
    try:
        return _person(session, _claims(settings, cookie, authorization))
    except SessionError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


async def api_claims(
    settings: SettingsDep,
    cookie: Annotated[str | None, Cookie(alias=COOKIE_NAME, include_in_schema=False)] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> SessionClaims:
    """Who is calling, from the signed session alone (no database, no worker thread): for
    endpoints that load the person inside their own write transaction."""
    try:
        return _claims(settings, cookie, authorization)
    except SessionError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


def page_person(
    request: Request, session: SessionDep, settings: SettingsDep,
    cookie: Annotated[str | None, Cookie(alias=COOKIE_NAME, include_in_schema=False)] = None,
) -> Person:
    """The logged-in person of an H5 page; without one the browser is sent to log in."""
    try:
        return _person(session, _claims(settings, cookie, None))
    except SessionError as exc:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise NeedsLogin(target, str(exc)) from None


ApiPerson = Annotated[Person, Depends(api_person)]
PagePerson = Annotated[Person, Depends(page_person)]
ApiClaims = Annotated[SessionClaims, Depends(api_claims)]
