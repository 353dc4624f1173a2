"""The FastAPI application factory and composition root."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app import migrate
from app.config import Settings, load_settings_or_exit
from app.db import make_engine, utcnow
from app.deps import EngineDep
from app.ports import LoginCodeResolver
from app.services.attendance import finalize_due
from bot import simulator
from bot.delivery import SimulatorFeed
from bot.dingtalk import callback as dingtalk_callback
from bot.outbox_worker import OutboxWorker, Sender
from bot.runtime import (
    DingTalkLogin,
    build_dispatcher,
    dingtalk_deliverer,
    dingtalk_stream,
)
from miniapp_api import web

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application with its engine; adapters are wired here and nowhere else."""
    settings = settings or load_settings_or_exit()
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    http = httpx.Client(timeout=settings.http_timeout_s)

    senders: dict[str, Sender] = {}
    resolvers: dict[str, LoginCodeResolver] = {}
    worker = OutboxWorker(engine=engine, senders=senders)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Everything loaded so far lives as long as the process; freezing it keeps the periodic
        # full collections (tens of ms, seen as p99 spikes on boards) from rescanning it.
        gc.collect()
        gc.freeze()
        if settings.embedded_worker:
            worker.start(extra=lambda: finalize_due(engine=engine, now=utcnow(),
                                                    tz=settings.tz))
        yield
        worker.stop()
        http.close()
        engine.dispose()

    app = FastAPI(title="党员积分助手 partypoints", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.dispatcher = build_dispatcher(engine=engine, settings=settings)
    app.state.dingtalk = dingtalk_deliverer(settings, http) if settings.dingtalk_client_id else None
    app.state.login_resolvers = resolvers
    app.state.outbox_worker = worker
    app.include_router(dingtalk_callback.router)
    if app.state.dingtalk is not None:
        senders["dingtalk"] = app.state.dingtalk.notify
        resolvers["dingtalk"] = DingTalkLogin(app.state.dingtalk.client)
    if settings.app_env == "dev":
        app.state.simulator_feed = SimulatorFeed()
        app.include_router(simulator.router)
        # Without a DingTalk app the simulator stands in for it (its people use DingTalk ids).
        senders.setdefault("dingtalk", app.state.simulator_feed.send)
    web.install(app, settings)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz(engine: EngineDep) -> JSONResponse:
        """The database answers and its schema is at the newest migration."""
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            current = migrate.current_revision(engine)
        except Exception as exc:  # any driver error means "not ready", never a 500
            log.warning("readiness check failed: %s", type(exc).__name__)
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        head = migrate.head_revision()
        ready = current == head
        body = {"status": "ok" if ready else "migrations_pending", "database": "ok",
                "revision": current, "head": head}
        return JSONResponse(body, 200 if ready else 503)

    return app


def run_dingtalk_stream() -> None:
    """Run the DingTalk Stream connection until interrupted (the `dingtalk-stream` command)."""
    settings = load_settings_or_exit()
    if not settings.dingtalk_client_id or not settings.dingtalk_client_secret.get_secret_value():
        print("请先配置 DINGTALK_CLIENT_ID 和 DINGTALK_CLIENT_SECRET", file=sys.stderr)
        raise SystemExit(2)
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    with httpx.Client(timeout=settings.http_timeout_s) as http:
        dispatcher = build_dispatcher(engine=engine, settings=settings)
        stream = dingtalk_stream(settings=settings, dispatcher=dispatcher,
                                 deliverer=dingtalk_deliverer(settings, http))
        log.info("dingtalk stream starting for client %s", settings.dingtalk_client_id)
        stream.run_forever()
    engine.dispose()


def __getattr__(name: str) -> FastAPI:
    # `app.main:app` for uvicorn, built on first access so that importing this module is cheap.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
