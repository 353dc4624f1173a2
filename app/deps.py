"""FastAPI dependencies shared by every router: the engine and a per-request session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.config import Settings


async def get_engine(request: Request) -> Engine:
    """The engine the app was built with (async: no worker thread for an attribute read)."""
    return request.app.state.engine


async def get_settings_dep(request: Request) -> Settings:
    """The settings the app was built with (async: no worker thread for an attribute read)."""
    return request.app.state.settings


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """A session for the request; the endpoint commits what it writes."""
    with Session(engine) as session:
        yield session


EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
