"""H5 pages: my points, my ledger and the branch board, rendered from the API's view models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from app.deps import SessionDep, SettingsDep
from app.domain.periods import previous_month
from app.domain.vocab import OrgKind
from app.models import Person
from app.services.reports import branch_of
from miniapp_api.api_me import (
    Period,
    Refused,
    board_branch,
    board_view,
    my_ledger,
    my_points,
    resolve_period,
    this_month,
)
from miniapp_api.charts import trend_svg
from miniapp_api.deps import PagePerson
from miniapp_api.nav import nav_items
from miniapp_api.templating import templates

router = APIRouter(prefix="/h5", include_in_schema=False)


def _switcher(path: str, today: str, current: Period) -> list[dict[str, object]]:
    """The 本月 / 上月 / 本年 links of a page, by key so that a link means the same tomorrow."""
    choices = (("本月", today), ("上月", previous_month(today)), ("本年", today[:4]))
    return [
        {"label": label, "href": f"{path}?period={key}", "active": key == current.key}
        for label, key in choices
    ]


def _render(
    request: Request,
    session: Session,
    person: Person,
    template: str,
    *,
    active: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    base = {"nav_items": nav_items(session=session, person=person, active=active)}
    return templates.TemplateResponse(request, template, base | context, status_code=status_code)


def _refused(
    request: Request, session: Session, person: Person, exc: Refused, *, title: str, active: str
) -> HTMLResponse:
    return _render(
        request,
        session,
        person,
        "message.html",
        active=active,
        context={"title": title, "error": exc.detail},
        status_code=exc.status,
    )


@router.get("/me", response_class=HTMLResponse)
def me_page(
    request: Request,
    person: PagePerson,
    session: SessionDep,
    settings: SettingsDep,
    period: str | None = None,
) -> HTMLResponse:
    """我的积分: total, base and bonus, rank as allowed, dimensions, pending and the trend."""
    today = this_month(settings)
    try:
        wanted = resolve_period(period, today=today)
        view = my_points(session=session, person=person, period=wanted)
    except Refused as exc:
        return _refused(request, session, person, exc, title="我的积分", active="/h5/me")
    chart = trend_svg([(p.period, p.total) for p in view.trend], title="近12个月积分")
    return _render(
        request,
        session,
        person,
        "me.html",
        active="/h5/me",
        context={
            "title": "我的积分",
            "view": view,
            "chart": chart,
            "switcher": _switcher("/h5/me", today, wanted),
        },
    )


@router.get("/me/ledger", response_class=HTMLResponse)
def ledger_page(
    request: Request,
    person: PagePerson,
    session: SessionDep,
    settings: SettingsDep,
    period: str | None = None,
) -> HTMLResponse:
    """积分明细: every entry of the period with its reason, who recorded it and its status."""
    today = this_month(settings)
    try:
        wanted = resolve_period(period, today=today)
        view = my_ledger(session=session, person=person, period=wanted)
    except Refused as exc:
        return _refused(request, session, person, exc, title="积分明细", active="/h5/me")
    return _render(
        request,
        session,
        person,
        "ledger.html",
        active="/h5/me",
        context={
            "title": "积分明细",
            "view": view,
            "back_url": f"/h5/me?period={wanted.key}",
            "switcher": _switcher("/h5/me/ledger", today, wanted),
        },
    )


def _board_page(
    request: Request,
    person: Person,
    session: Session,
    today: str,
    period: str | None,
    branch_id: int | None,
) -> HTMLResponse:
    path = "/h5/board" if branch_id is None else f"/h5/boards/branch/{branch_id}"
    try:
        if branch_id is None:
            home = branch_of(session, person)
            if home.kind != OrgKind.branch:
                raise Refused(404, "您不属于任何党支部，没有本支部积分榜")
            branch_id = home.id or 0
        branch = board_branch(session=session, person=person, branch_id=branch_id)
        wanted = resolve_period(period, today=today)
        view = board_view(session=session, viewer=person, branch=branch, period=wanted)
    except Refused as exc:
        return _refused(request, session, person, exc, title="支部积分榜", active="/h5/board")
    return _render(
        request,
        session,
        person,
        "board.html",
        active="/h5/board",
        context={"title": "支部积分榜", "view": view, "switcher": _switcher(path, today, wanted)},
    )


@router.get("/board", response_class=HTMLResponse)
def own_board_page(
    request: Request,
    person: PagePerson,
    session: SessionDep,
    settings: SettingsDep,
    period: str | None = None,
) -> HTMLResponse:
    """本支部积分榜, as the scheme's ranking mode allows, with the asker's row highlighted."""
    return _board_page(request, person, session, this_month(settings), period, None)


@router.get("/boards/branch/{branch_id}", response_class=HTMLResponse)
def branch_board_page(
    branch_id: int,
    request: Request,
    person: PagePerson,
    session: SessionDep,
    settings: SettingsDep,
    period: str | None = None,
) -> HTMLResponse:
    """A branch's board for its members, or for those who manage it."""
    return _board_page(request, person, session, this_month(settings), period, branch_id)
