"""Wires the mini-app API and the H5 pages into an application."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from app.config import Settings
from miniapp_api import (
    api_activities,
    api_declarations,
    api_evaluation,
    api_me,
    auth,
    checkin,
    errors,
    media,
    pages_activities,
    pages_evaluation,
    pages_me,
)
from miniapp_api.deps import NeedsLogin
from miniapp_api.templating import STATIC_DIR, configure


def install(app: FastAPI, settings: Settings) -> None:
    """Add the API routes, the H5 pages and their static files to `app`."""
    configure(settings.tz)
    errors.install(app)
    app.include_router(auth.router)
    if settings.app_env == "dev":
        app.include_router(auth.dev_router)
    app.include_router(checkin.api_router)
    app.include_router(api_me.router)
    app.include_router(api_activities.router)
    app.include_router(api_evaluation.router)
    app.include_router(api_declarations.router)
    app.include_router(checkin.page_router)
    app.include_router(pages_me.router)
    app.include_router(pages_activities.router)
    app.include_router(pages_evaluation.router)
    app.include_router(media.router)
    app.mount("/h5/static", StaticFiles(directory=STATIC_DIR), name="h5-static")

    @app.exception_handler(NeedsLogin)
    async def to_login(_: Request, exc: NeedsLogin) -> RedirectResponse:
        return RedirectResponse(f"/h5/login?next={quote(exc.next_url, safe='')}", 303)
