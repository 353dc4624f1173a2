"""Answers for requests the validator or the database refuse: a clear 4xx, never a 500.

API callers get JSON; an H5 page gets the same page shell with a Chinese explanation.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError

from miniapp_api.templating import templates

log = logging.getLogger(__name__)
OUT_OF_RANGE = "提交的内容超出了允许的范围，请检查后重试"
BAD_LINK = "链接不完整或有误，请返回后重新打开"


def _json_safe(value: float) -> float | str:
    # JSON has no NaN or infinity, yet a client may send them and the validator echoes its input.
    return value if math.isfinite(value) else str(value)


def _page(request: Request, status: int, message: str) -> Response:
    return templates.TemplateResponse(request, "message.html",
                                      {"title": "无法打开", "error": message, "back_url": "/h5/me"},
                                      status_code=status)


def _is_page(request: Request) -> bool:
    return request.url.path.startswith("/h5/")


async def validation_failed(request: Request, exc: Exception) -> Response:
    """422 as FastAPI words it, with inputs JSON cannot carry (NaN, infinity) as text; on a
    page, a 400 page saying the link is wrong."""
    assert isinstance(exc, RequestValidationError)
    if _is_page(request):
        return _page(request, 400, BAD_LINK)
    errors = jsonable_encoder(exc.errors(), custom_encoder={float: _json_safe})
    return JSONResponse({"detail": errors}, 422)


async def data_refused(request: Request, exc: Exception) -> Response:
    """400 for a value the database cannot hold, e.g. an id past its integer range.

    PostgreSQL refuses such a value with a DataError; SQLite's driver cannot even bind an
    integer past 64 bits and raises OverflowError before the query is sent.
    """
    reason = type(exc.orig).__name__ if isinstance(exc, DataError) else str(exc)
    log.warning("%s %s: the database refused a value (%s)", request.method, request.url.path,
                reason)
    if _is_page(request):
        return _page(request, 400, OUT_OF_RANGE)
    return JSONResponse({"detail": OUT_OF_RANGE}, 400)


def install(app: FastAPI) -> None:
    """Register both answers on the application (every route, chat simulator included)."""
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(DataError, data_refused)
    app.add_exception_handler(OverflowError, data_refused)
