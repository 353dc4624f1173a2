"""H5 pages for activities, leave and approvals; their data comes from the API's view builders."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.db import utcnow
from app.deps import SessionDep
from app.models import ActivityStatus, Person
from app.services.activities import ACTIVITY_KINDS, LEAVE_KINDS, ActivityError
from miniapp_api.api_activities import activity_detail, activity_list, leave_list
from miniapp_api.deps import PagePerson
from miniapp_api.nav import nav_items
from miniapp_api.refusals import status_of
from miniapp_api.templating import templates

router = APIRouter(prefix="/h5", include_in_schema=False)


def _render(request: Request, session: SessionDep, person: Person, name: str, *, active: str,
            status_code: int = 200, **context: Any) -> HTMLResponse:
    context["nav_items"] = nav_items(session=session, person=person, active=active)
    return templates.TemplateResponse(request, name, context, status_code=status_code)


@router.get("/activities", response_class=HTMLResponse)
def activities_page(request: Request, person: PagePerson, session: SessionDep) -> HTMLResponse:
    """My upcoming and past activities with my status; secretaries may start a new one here."""
    now = utcnow()
    return _render(request, session, person, "activities.html", active="/h5/activities",
                   title="组织生活", kinds=ACTIVITY_KINDS,
                   upcoming=activity_list(session=session, person=person, now=now,
                                          scope="upcoming"),
                   past=activity_list(session=session, person=person, now=now, scope="past"))


@router.get("/activities/{activity_id}", response_class=HTMLResponse)
def activity_page(activity_id: int, request: Request, person: PagePerson,
                  session: SessionDep) -> HTMLResponse:
    """One activity: details, my check-in and leave, and for managers the attendance table."""
    try:
        detail = activity_detail(session=session, person=person, activity_id=activity_id,
                                 now=utcnow())
    except ActivityError as exc:
        return _render(request, session, person, "message.html", active="/h5/activities",
                       status_code=status_of(exc), title="活动详情", error=str(exc),
                       back_url="/h5/activities")
    return _render(request, session, person, "activity.html", active="/h5/activities",
                   title="活动详情", back_url="/h5/activities", detail=detail,
                   leave_kinds=list(LEAVE_KINDS), statuses=ActivityStatus)


@router.get("/approvals", response_class=HTMLResponse)
def approvals_page(request: Request, person: PagePerson, session: SessionDep) -> HTMLResponse:
    """Pending leave requests this secretary may decide, with 批准 and 驳回."""
    try:
        pending = leave_list(session=session, person=person, now=utcnow(), scope="pending")
    except ActivityError as exc:
        return _render(request, session, person, "message.html", active="/h5/approvals",
                       status_code=status_of(exc), title="请假审批", error=str(exc))
    return _render(request, session, person, "approvals.html", active="/h5/approvals",
                   title="请假审批", pending=pending)
