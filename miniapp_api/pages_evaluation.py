"""H5 pages of the monthly evaluation and declarations; their data comes from the API's view
builders, and their buttons post to the JSON API (h5-forms.js), except evidence uploads, which
are plain multipart forms so that any webview's file picker and camera work."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel
from sqlmodel import Session

from app.config import Settings
from app.db import utcnow
from app.deps import EngineDep, SessionDep, SettingsDep
from app.domain.periods import month_key, next_month, previous_month
from app.models import Person
from app.services.reports import branch_of
from miniapp_api.api_declarations import (
    IndicatorList,
    attach_upload,
    declaration_view,
    indicator_list,
    require_same_origin,
    review_list,
)
from miniapp_api.api_evaluation import branch_evaluation, branch_list, my_evaluation
from miniapp_api.deps import PagePerson
from miniapp_api.evaluation_common import answering, month_or_default
from miniapp_api.nav import BRANCHES_HREF, EVALUATION_HREF, nav_items
from miniapp_api.templating import period_label, templates

router = APIRouter(prefix="/h5", include_in_schema=False)
V = TypeVar("V", bound=BaseModel)


def _render(request: Request, session: Session, person: Person, template: str, *,
            active: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context["nav_items"] = nav_items(session=session, person=person, active=active)
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def _show(request: Request, session: Session, person: Person, build: Callable[[], V],
          template: str, *, title: str, active: str,
          more: Callable[[V], dict[str, Any]] | None = None, status_code: int = 200,
          **context: Any) -> HTMLResponse:
    """Render `template` with the `view` that `build` makes (and what `more` adds for it), or
    the refusal on the message page with its status."""
    try:
        with answering():
            view = build()
    except HTTPException as exc:
        return _render(request, session, person, "message.html", active=active,
                       status_code=exc.status_code, title=title, error=exc.detail,
                       back_url=context.get("back_url"))
    context.update(more(view) if more else {})
    return _render(request, session, person, template, active=active, title=title, view=view,
                   status_code=status_code, **context)


def _months(path: str, period: str, now: datetime, tz: ZoneInfo) -> list[dict[str, str]]:
    """Links to the month before and, unless it is still to come, the month after."""
    links = [{"label": f"‹ {period_label(previous_month(period))}",
              "href": f"{path}?period={previous_month(period)}"}]
    if next_month(period) <= month_key(now, tz):
        links.append({"label": f"{period_label(next_month(period))} ›",
                      "href": f"{path}?period={next_month(period)}"})
    return links


@router.get("/evaluation", response_class=HTMLResponse)
def evaluation_page(request: Request, person: PagePerson, session: SessionDep,
                    settings: SettingsDep, period: str | None = None) -> HTMLResponse:
    """月度评议: my self-evaluation form, my score with its reason, the result and objections."""
    now = utcnow()
    return _show(request, session, person,
                 lambda: my_evaluation(session=session, person=person, period=period, now=now,
                                       tz=settings.tz),
                 "evaluation.html", title="月度评议", active=EVALUATION_HREF,
                 more=lambda view: {"months": _months(EVALUATION_HREF, view.period, now,
                                                      settings.tz)})


@router.get("/evaluation/branches", response_class=HTMLResponse)
def branches_page(request: Request, person: PagePerson, session: SessionDep,
                  settings: SettingsDep, period: str | None = None) -> HTMLResponse:
    """支部评议: the branches whose month I score or review, with their progress."""
    now = utcnow()
    return _show(request, session, person,
                 lambda: branch_list(session=session, person=person, period=period, now=now,
                                     tz=settings.tz),
                 "evaluation_branches.html", title="支部评议", active=BRANCHES_HREF,
                 more=lambda view: {"months": _months(BRANCHES_HREF, view.period, now,
                                                      settings.tz)})


@router.get("/evaluation/branches/{branch_id}", response_class=HTMLResponse)
def branch_page(branch_id: int, request: Request, person: PagePerson, session: SessionDep,
                settings: SettingsDep, period: str | None = None) -> HTMLResponse:
    """A branch's month: the members' table with scoring, acceptance, publication and close."""
    now = utcnow()
    path = f"{BRANCHES_HREF}/{branch_id}"
    return _show(request, session, person,
                 lambda: branch_evaluation(session=session, viewer=person, branch_id=branch_id,
                                           period=period, now=now, tz=settings.tz),
                 "evaluation_branch.html", title="支部评议", active=BRANCHES_HREF,
                 back_url=BRANCHES_HREF,
                 more=lambda view: {"months": _months(path, view.period, now, settings.tz),
                                    "back_url": f"{BRANCHES_HREF}?period={view.period}"})


@router.get("/declarations/new", response_class=HTMLResponse)
def new_declaration_page(request: Request, person: PagePerson, session: SessionDep,
                         settings: SettingsDep, period: str | None = None) -> HTMLResponse:
    """申报加分: pick an indicator, say what and when; evidence is attached on the next page."""
    now = utcnow()

    def build() -> IndicatorList:
        month = month_or_default(period, session=session, org=branch_of(session, person),
                                 now=now, tz=settings.tz)
        return indicator_list(session=session, person=person, period=month)

    return _show(request, session, person, build, "declaration_new.html", title="申报加分",
                 active=EVALUATION_HREF, today=now.astimezone(settings.tz).date().isoformat(),
                 back_url=EVALUATION_HREF,
                 more=lambda view: {"back_url": f"{EVALUATION_HREF}?period={view.period}"})


@router.get("/declarations/reviews", response_class=HTMLResponse)
def reviews_page(request: Request, person: PagePerson, session: SessionDep) -> HTMLResponse:
    """申报审核: declarations waiting for me, with their evidence, to approve or reject."""
    return _show(request, session, person, lambda: review_list(session=session, person=person),
                 "declaration_reviews.html", title="申报审核", active=EVALUATION_HREF,
                 back_url=EVALUATION_HREF)


def _declaration_page(request: Request, session: Session, person: Person, declaration_id: int,
                      settings: Settings, *, status_code: int = 200, error: str | None = None,
                      notice: str | None = None) -> HTMLResponse:
    return _show(request, session, person,
                 lambda: declaration_view(session=session, person=person,
                                          declaration_id=declaration_id, settings=settings),
                 "declaration.html", title="申报详情", active=EVALUATION_HREF,
                 status_code=status_code, back_url=EVALUATION_HREF, error=error, notice=notice,
                 more=lambda view: {"back_url": f"{EVALUATION_HREF}?period={view.period}"})


@router.get("/declarations/{declaration_id}", response_class=HTMLResponse)
def declaration_page(declaration_id: int, request: Request, person: PagePerson,
                     session: SessionDep, settings: SettingsDep,
                     uploaded: int = 0) -> HTMLResponse:
    """One of my declarations: attach photos or PDFs, submit, see the status and the review."""
    return _declaration_page(request, session, person, declaration_id, settings,
                             notice="材料已上传。" if uploaded else None)


@router.post("/declarations/{declaration_id}/evidence", response_model=None)
def upload_evidence(declaration_id: int, request: Request, person: PagePerson,
                    session: SessionDep, engine: EngineDep, settings: SettingsDep,
                    file: Annotated[UploadFile | None, File()] = None,
                    ) -> HTMLResponse | RedirectResponse:
    """The upload form of a declaration's page: back to the page, with the refusal if any."""
    try:
        require_same_origin(request, settings)
        if file is None:
            raise HTTPException(400, "请选择要上传的图片或 PDF 文件")
        attach_upload(engine=engine, settings=settings, person=person,
                      declaration_id=declaration_id, upload=file)
    except HTTPException as exc:
        return _declaration_page(request, session, person, declaration_id, settings,
                                 status_code=exc.status_code, error=exc.detail)
    # Post/redirect/get: reloading the page does not upload the file again.
    return RedirectResponse(f"/h5/declarations/{declaration_id}?uploaded=1", 303)
