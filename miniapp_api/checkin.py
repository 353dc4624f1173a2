"""Scanning in: the check-in API, the rotating QR code, the room screen and the login pages."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.db import utcnow, write_session
from app.deps import EngineDep, SessionDep, SettingsDep
from app.domain.checkin import window_ends_at, window_index
from app.domain.ids import record_id
from app.links import checkin_url
from app.models import Activity, CheckIn, Person
from app.services.activities import ActivityError, managed_activity, status_at
from app.services.checkin import CheckInRefused, check_in, current_token, live_count
from miniapp_api.auth import dev_people, safe_next
from miniapp_api.deps import ApiClaims, ApiPerson, PagePerson
from miniapp_api.qr import qr_png, qr_svg
from miniapp_api.refusals import status_of
from miniapp_api.templating import templates

log = logging.getLogger(__name__)
api_router = APIRouter(prefix="/api/v1", tags=["签到"])
page_router = APIRouter(prefix="/h5", include_in_schema=False)

# How each refusal reads to HTTP clients; the Chinese message is in `detail`.
REFUSAL_STATUS = {"expired": 410, "invalid": 400, "not_open": 409, "closed": 409,
                  "cancelled": 409, "not_expected": 403, "position_required": 403,
                  "outside": 403}


class CheckInRequest(BaseModel):
    """A scanned token, and the browser's position when the activity has a geofence."""

    token: str = Field(min_length=1, max_length=200,
                       examples=["12.88412345.q0Zf3Y1n0hQk2bC8x9u7Ag"])
    lat: float | None = Field(default=None, ge=-90, le=90, examples=[39.9087])
    lng: float | None = Field(default=None, ge=-180, le=180, examples=[116.3975])


class CheckInAnswer(BaseModel):
    """The check-in as recorded; `created` is false when the person had already checked in."""

    created: bool
    activity_id: int
    activity_title: str = Field(examples=["学习贯彻党的二十大精神"])
    activity_kind: str = Field(examples=["主题党日"])
    name: str = Field(examples=["张三"])
    checked_in_at: datetime
    late: bool
    visitor: bool
    message: str = Field(examples=["签到成功"])


class Refusal(BaseModel):
    """Why a check-in was refused: a code for programs and a Chinese message for people."""

    detail: str = Field(examples=["二维码已过期，请重新扫码"])
    code: str = Field(examples=["expired"])


class ScreenState(BaseModel):
    """What the room screen shows now, and when the code changes next."""

    checkin_url: str
    window: int
    refresh_in_ms: int
    status: str
    status_label: str
    expected: int
    checked_in: int
    visitors: int
    latest: list[str]


def _answer(activity: Activity, row: CheckIn, person: Person, created: bool) -> CheckInAnswer:
    message = "签到成功" if created else "您已签到，无需重复扫码"
    if created and row.late:
        message = "签到成功（迟到）"
    assert activity.id is not None
    return CheckInAnswer(created=created, activity_id=activity.id, activity_title=activity.title,
                         activity_kind=activity.kind, name=person.name,
                         checked_in_at=row.checked_in_at, late=row.late, visitor=row.visitor,
                         message=message)


_PERSON_BY_ID = sa_select(Person.__table__).where(Person.__table__.c.id == bindparam("id"))  # type: ignore[attr-defined]


def _scan(engine: EngineDep, settings: Settings, who: Person | int, body: CheckInRequest,
          platform: str) -> CheckInAnswer:
    """The scan in one write transaction; given a person id, the person is read inside it, so
    the request holds one pooled connection, never two."""
    position = (body.lat, body.lng) if body.lat is not None and body.lng is not None else None
    with write_session(engine) as session:
        if isinstance(who, Person):
            person: Person | None = who
        else:  # Core, not session.get: the ORM's per-call overhead was a sixth of the CPU
            found = session.connection().execute(_PERSON_BY_ID, {"id": who}).mappings().first()
            person = Person(**found) if found is not None else None
        if person is None or not person.active:
            raise HTTPException(401, "您的账号已停用或不在党员名册中，请联系管理员",
                                headers={"WWW-Authenticate": "Bearer"})
        result = check_in(session=session, person=person, token=body.token, now=utcnow(),
                          secret=settings.secret_key.get_secret_value(),
                          rotate_s=settings.checkin_qr_rotate_s, platform=platform,
                          position=position)
        return _answer(result.activity, result.check_in, person, result.created)


@api_router.post("/checkins", response_model=CheckInAnswer, responses={
    400: {"model": Refusal, "description": "二维码无效"},
    403: {"model": Refusal, "description": "不在应到名单中，或不在签到范围内"},
    409: {"model": Refusal, "description": "签到未开始、已结束或活动已取消"},
    410: {"model": Refusal, "description": "二维码已过期，请重新扫码"}})
async def post_checkin(body: CheckInRequest, claims: ApiClaims, engine: EngineDep,
                       settings: SettingsDep) -> Any:
    """Check in with the token from the room's QR code, as the logged-in member."""
    try:
        # One worker-thread hop for the database work; the answer is then validated on the
        # event loop (a sync endpoint would take a second hop just for that).
        return await run_in_threadpool(_scan, engine, settings, claims.person_id, body, "api")
    except CheckInRefused as exc:
        return JSONResponse({"detail": str(exc), "code": exc.code}, REFUSAL_STATUS[exc.code])


def _managed(session: SessionDep, person: Person, activity_id: int) -> Activity:
    return managed_activity(session=session, activity_id=activity_id, person=person)


def _not_managed(exc: ActivityError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_of(exc))


def _current_url(settings: Settings, activity_id: int, now: datetime) -> str:
    token = current_token(secret=settings.secret_key.get_secret_value(),
                          activity_id=activity_id, now=now,
                          rotate_s=settings.checkin_qr_rotate_s)
    return checkin_url(settings, token)


def _qr_image(session: SessionDep, person: Person, settings: Settings, activity_id: int,
              render: Callable[[str], bytes | str], media_type: str) -> Response:
    try:
        _managed(session, person, activity_id)
    except ActivityError as exc:
        return _not_managed(exc)
    return Response(render(_current_url(settings, activity_id, utcnow())),
                    media_type=media_type, headers={"Cache-Control": "no-store"})


@api_router.get("/activities/{activity_id}/qr.png", response_class=Response,
                responses={200: {"content": {"image/png": {}}}})
def qr_code_png(activity_id: int, person: ApiPerson, session: SessionDep,
                settings: SettingsDep) -> Response:
    """The activity's current check-in QR code as PNG (secretaries of the branch only)."""
    return _qr_image(session, person, settings, activity_id, qr_png, "image/png")


@api_router.get("/activities/{activity_id}/qr.svg", response_class=Response,
                responses={200: {"content": {"image/svg+xml": {}}}})
def qr_code_svg(activity_id: int, person: ApiPerson, session: SessionDep,
                settings: SettingsDep) -> Response:
    """The activity's current check-in QR code as SVG (secretaries of the branch only)."""
    return _qr_image(session, person, settings, activity_id, qr_svg, "image/svg+xml")


def screen_state(*, session: SessionDep, settings: Settings, activity: Activity,
                 now: datetime) -> ScreenState:
    """The room screen's data: the current code's URL, the live count and the latest names."""
    assert activity.id is not None
    rotate = settings.checkin_qr_rotate_s
    window = window_index(now, rotate)
    count = live_count(session=session, activity=activity)
    status = status_at(activity, now)
    refresh = int((window_ends_at(window, rotate) - now.timestamp()) * 1000) + 200
    return ScreenState(checkin_url=_current_url(settings, activity.id, now), window=window,
                       refresh_in_ms=max(500, refresh), status=status.value,
                       status_label=status.label, expected=count.expected,
                       checked_in=count.checked_in, visitors=count.visitors, latest=count.latest)


@api_router.get("/activities/{activity_id}/screen", response_model=ScreenState)
def get_screen_state(activity_id: int, person: ApiPerson, session: SessionDep,
                     settings: SettingsDep) -> Any:
    """The room screen's data, polled by the screen page (secretaries of the branch only)."""
    try:
        activity = _managed(session, person, activity_id)
    except ActivityError as exc:
        return _not_managed(exc)
    return screen_state(session=session, settings=settings, activity=activity, now=utcnow())


@page_router.get("/activities/{activity_id}/screen", response_class=HTMLResponse)
def screen_page(activity_id: int, request: Request, person: PagePerson, session: SessionDep,
                settings: SettingsDep) -> HTMLResponse:
    """The room's display: a code that refreshes by itself and the live count."""
    try:
        activity = _managed(session, person, activity_id)
    except ActivityError as exc:
        return templates.TemplateResponse(request, "message.html",
                                          {"title": "签到大屏", "error": str(exc)},
                                          status_code=status_of(exc))
    state = screen_state(session=session, settings=settings, activity=activity, now=utcnow())
    return templates.TemplateResponse(request, "screen.html",
                                      {"title": "签到大屏", "activity": activity,
                                       "state": state, "rotate_s": settings.checkin_qr_rotate_s})


@page_router.get("/checkin", response_class=HTMLResponse)
def checkin_page(request: Request, person: PagePerson, session: SessionDep,
                 t: str = "") -> HTMLResponse:
    """Where a scanned code lands: asks for the position if needed, then checks in."""
    activity_id = record_id(t.split(".", 1)[0])
    activity = session.get(Activity, activity_id) if activity_id is not None else None
    needs_position = bool(activity and activity.geo_radius_m)
    return templates.TemplateResponse(request, "checkin.html",
                                      {"title": "扫码签到", "token": t, "person": person,
                                       "needs_position": needs_position, "result": None})


@page_router.post("/checkin", response_class=HTMLResponse)
def checkin_submit(
    request: Request, person: PagePerson, engine: EngineDep, settings: SettingsDep,
    token: Annotated[str, Form(max_length=200)] = "",
    lat: Annotated[float | None, Form()] = None, lng: Annotated[float | None, Form()] = None,
) -> HTMLResponse:
    """Check in from the page and show the result: name, activity, on time or late."""
    try:
        answer = _scan(engine, settings, person, CheckInRequest(token=token or "-", lat=lat,
                                                                lng=lng), platform="h5")
    except CheckInRefused as exc:
        return templates.TemplateResponse(
            request, "checkin.html",
            {"title": "扫码签到", "token": "", "person": person, "needs_position": False,
             "result": None, "error": str(exc), "code": exc.code},
            status_code=REFUSAL_STATUS[exc.code])
    return templates.TemplateResponse(request, "checkin.html",
                                      {"title": "签到结果", "token": "", "person": person,
                                       "needs_position": False, "result": answer})


def _platform_of(user_agent: str) -> str:
    agent = user_agent.lower()
    if "dingtalk" in agent:
        return "dingtalk"
    if "wxwork" in agent:
        return "wecom"
    return "browser"


@page_router.get("/login", response_class=HTMLResponse, response_model=None)
def login_page(request: Request, session: SessionDep, settings: SettingsDep,
               next: str = "/h5/me") -> HTMLResponse | RedirectResponse:
    """Log in through the platform the page is opened in (or, in dev, as a demo person)."""
    target = safe_next(next)
    platform = _platform_of(request.headers.get("user-agent", ""))
    if platform == "wecom":
        return RedirectResponse(f"/api/v1/auth/wecom/start?next={target}", 303)
    context: dict[str, Any] = {"title": "登录", "next": target, "platform": platform,
                               "corp_id": settings.dingtalk_corp_id,
                               "client_id": settings.dingtalk_client_id, "people": []}
    if platform == "browser" and settings.app_env == "dev":
        context["people"] = dev_people(session)
    return templates.TemplateResponse(request, "login.html", context)
