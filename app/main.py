"""The FastAPI application factory and composition root."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.engine import Engine

from app import migrate
from app.config import Settings, load_settings_or_exit
from app.db import make_engine, read_session
from app.deps import EngineDep
from app.jobs.scheduler import start_embedded
from app.ports import LoginCodeResolver
from app.services.board_post import own_board_picture
from app.stop_signals import stop_on_signal
from bot import simulator
from bot.background import HandlerPool
from bot.delivery import SimulatorFeed
from bot.dingtalk import callback as dingtalk_callback
from bot.dingtalk.adapter import DingTalkDeliverer, markdown_of
from bot.dingtalk.client import DingTalkClient
from bot.http import platform_http
from bot.outbox_worker import (
    Limits,
    OutboxWorker,
    RobotHook,
    RobotSender,
    Round,
    Sender,
    Totals,
)
from bot.runtime import (
    DingTalkLogin,
    WeComLogin,
    build_dispatcher,
    dingtalk_deliverer,
    dingtalk_stream,
    wecom_channel,
    wecom_senders,
)
from bot.types import Notification
from bot.wecom import callback as wecom_callback
from bot.wecom.adapter import aibot_message_handler
from bot.wecom.aibot_ws import AibotConnection
from bot.wecom.callback import WeComChannel
from miniapp_api import web

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application with its engine; adapters are wired here and nowhere else."""
    settings = settings or load_settings_or_exit()
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    http = platform_http(timeout_s=settings.http_timeout_s)

    resolvers: dict[str, LoginCodeResolver] = {}
    dingtalk = dingtalk_deliverer(settings, http) if settings.dingtalk_client_id else None
    wecom = wecom_channel(settings, http)
    senders, robot_senders = delivery_senders(settings, engine=engine, http=http,
                                              dingtalk=dingtalk, wecom=wecom)
    worker = outbox_worker(settings, engine=engine, senders=senders, robot_senders=robot_senders)
    handlers = HandlerPool(threads=settings.chat_handler_threads,
                           send_threads=settings.chat_send_threads)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Everything loaded so far lives as long as the process; freezing it keeps the periodic
        # full collections (tens of ms, seen as p99 spikes on boards) from rescanning it.
        gc.collect()
        gc.freeze()
        scheduler = None
        if settings.embedded_worker:
            worker.start()
            # Jobs only queue outbox rows (attendance made final included); the worker sends.
            scheduler = start_embedded(engine=engine, settings=settings)
        yield
        # Messages already acknowledged to a platform are handled before anything closes.
        handlers.shutdown()
        if scheduler is not None:
            scheduler.stop(wait=False)
        worker.stop()
        http.close()
        engine.dispose()

    app = FastAPI(title="党员积分助手 partypoints", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.dispatcher = build_dispatcher(engine=engine, settings=settings,
                                           on_queued=worker.kick)
    app.state.dingtalk = dingtalk
    app.state.wecom = wecom
    app.state.login_resolvers = resolvers
    app.state.outbox_worker = worker
    app.state.chat_handlers = handlers
    app.include_router(dingtalk_callback.router)
    app.include_router(wecom_callback.router)
    if wecom is not None and settings.wecom_app_configured:
        resolvers["wecom"] = WeComLogin(wecom.client)
    if dingtalk is not None:
        resolvers["dingtalk"] = DingTalkLogin(dingtalk.client)
    if settings.app_env == "dev":
        app.state.simulator_feed = SimulatorFeed()
        app.include_router(simulator.router)
        # Without a DingTalk app the simulator stands in for it (its people use DingTalk ids).
        senders.setdefault("dingtalk", app.state.simulator_feed.send)
        # Groups bound in the simulator (platform "simulator") get their posts in its feed.
        senders.setdefault("simulator", app.state.simulator_feed.send)
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
    with platform_http(timeout_s=settings.http_timeout_s) as http:
        dispatcher = build_dispatcher(engine=engine, settings=settings)
        stream = dingtalk_stream(settings=settings, dispatcher=dispatcher,
                                 deliverer=dingtalk_deliverer(settings, http))
        log.info("dingtalk stream starting for client %s", settings.dingtalk_client_id)
        stream.run_forever()
    engine.dispose()


def wecom_aibot_runner(settings: Settings, *, engine: Engine, http: httpx.Client,
                      **options: Any) -> tuple[AibotConnection, OutboxWorker]:
    """The AI bot's long connection feeding the dispatcher, and the WeCom outbox worker that
    posts through it (only this process can reach AI-bot groups)."""
    channel = wecom_channel(settings, http)
    assert channel is not None
    dispatcher = build_dispatcher(engine=engine, settings=settings)
    on_message = aibot_message_handler(
        dispatcher=dispatcher, deliverer=channel.deliverer,
        respond=lambda req_id, markdown: connection.respond(req_id=req_id, markdown=markdown))
    connection = AibotConnection(url=settings.wecom_ws_url, bot_id=settings.wecom_aibot_id,
                                 secret=settings.wecom_aibot_secret.get_secret_value(),
                                 on_message=on_message, **options)
    channel.deliverer.aibot = connection
    senders: dict[str, Sender] = {}
    robot_senders: dict[str, RobotSender] = {}
    add_wecom_delivery(settings, engine, channel, senders, robot_senders)
    worker = outbox_worker(settings, engine=engine, senders=senders, robot_senders=robot_senders)
    dispatcher.on_queued = worker.kick
    return connection, worker


def run_wecom_aibot() -> None:
    """Hold the AI bot's long connection and deliver WeCom posts (the `wecom-aibot` command)."""
    settings = load_settings_or_exit()
    if not settings.wecom_aibot_id or not settings.wecom_aibot_secret.get_secret_value():
        print("请先配置 WECOM_AIBOT_ID 和 WECOM_AIBOT_SECRET", file=sys.stderr)
        raise SystemExit(2)
    _configure_logging(settings)
    if settings.wecom_aibot_mode != "ws":
        log.warning("WECOM_AIBOT_MODE 不是 ws：网页服务和本进程都会发送企业微信消息")
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    with platform_http(timeout_s=settings.http_timeout_s) as http:
        connection, worker = wecom_aibot_runner(settings, engine=engine, http=http)
        worker.start()
        log.info("wecom aibot starting for bot %s", settings.wecom_aibot_id)
        try:
            connection.run_forever()
        finally:
            worker.stop()
    engine.dispose()


def delivery_senders(
    settings: Settings, *, engine: Engine, http: httpx.Client,
    dingtalk: DingTalkDeliverer | None, wecom: WeComChannel | None,
) -> tuple[dict[str, Sender], dict[str, RobotSender]]:
    """What an outbox worker posts through: each platform's app, and groups' own robots."""
    senders: dict[str, Sender] = {}
    # A group with its own robot webhook gets its posts through it; no app credentials needed.
    robot_senders = {"dingtalk": dingtalk_robot_sender(DingTalkClient.from_settings(settings,
                                                                                    http))}
    if dingtalk is not None:
        senders["dingtalk"] = dingtalk.notify
    # In ws mode `partypoints wecom-aibot` delivers WeCom posts: only it reaches AI-bot groups.
    if wecom is not None and settings.wecom_aibot_mode != "ws":
        add_wecom_delivery(settings, engine, wecom, senders, robot_senders)
    return senders, robot_senders


def add_wecom_delivery(settings: Settings, engine: Engine, channel: WeComChannel,
                       senders: dict[str, Sender], robot_senders: dict[str, RobotSender]) -> None:
    """Let an outbox worker post to WeCom: app messages, AI-bot posts and group robots."""
    def picture(url: str) -> bytes | None:
        with read_session(engine) as session:
            return own_board_picture(session=session, settings=settings, url=url)

    senders["wecom"], robot_senders["wecom"] = wecom_senders(settings, channel, picture)


def outbox_worker(settings: Settings, *, engine: Engine, senders: dict[str, Sender],
                  robot_senders: dict[str, RobotSender]) -> OutboxWorker:
    """The outbox delivery worker with the DELIVERY_* limits."""
    return OutboxWorker(
        engine=engine, senders=senders, robot_senders=robot_senders,
        limits=Limits(robot_per_min=settings.delivery_robot_per_min,
                      app_per_min=settings.delivery_app_per_min),
        max_attempts=settings.delivery_max_attempts, lease_s=settings.delivery_lease_s)


def dingtalk_robot_sender(client: DingTalkClient) -> RobotSender:
    """Posts to a group's custom robot as markdown (a webhook cannot carry a card)."""
    def send(hook: RobotHook, note: Notification) -> None:
        reply = note.reply
        body = {"msgtype": "markdown",
                "markdown": {"title": reply.title, "text": markdown_of(reply)}}
        client.send_custom_robot(webhook=hook.webhook, secret=hook.secret, body=body)

    return send


def _configure_logging(settings: Settings) -> None:
    level = logging.getLevelName(settings.log_level.upper())
    logging.basicConfig(level=level if isinstance(level, int) else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO: one line per post would drown the fan-out's progress.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    # uvicorn set up its own loggers before it loaded the app; LOG_LEVEL governs them too
    # (at WARNING, no access line per request).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.getLogger().level)


def run_outbox_worker(
    *, once: bool = False, on_round: Callable[[OutboxWorker, Round], None] | None = None
) -> Totals:
    """Deliver the outbox (`outbox deliver`): until SIGTERM/SIGINT, or with `once` until done.

    `once` sends what is due and waits out full lanes, but not the backoff of failed rows.
    A signal stops after the post in hand; claimed rows not yet sent are handed back.
    """
    settings = load_settings_or_exit()
    _configure_logging(settings)
    engine = make_engine(settings.database_url, pool_size=2)
    with platform_http(timeout_s=settings.http_timeout_s) as http:
        dingtalk = dingtalk_deliverer(settings, http) if settings.dingtalk_client_id else None
        if dingtalk is None:
            log.warning("未配置钉钉应用（DINGTALK_CLIENT_ID）：只能经群自定义机器人发送，"
                        "私聊和没有机器人的群的消息将标记为 dead")
        senders, robot_senders = delivery_senders(settings, engine=engine, http=http,
                                                  dingtalk=dingtalk,
                                                  wecom=wecom_channel(settings, http))
        worker = outbox_worker(settings, engine=engine, senders=senders,
                               robot_senders=robot_senders)

        with stop_on_signal(worker.request_stop, message="收到 %s，发完当前这条后停止"):
            if once:
                report = None if on_round is None else (lambda r: on_round(worker, r))
                totals = worker.drain(on_round=report)
            else:
                log.info("outbox delivery running (robot %d/min, app %d/min, lease %ss)",
                         settings.delivery_robot_per_min, settings.delivery_app_per_min,
                         settings.delivery_lease_s)
                worker.serve()
                totals = worker.totals
    engine.dispose()
    log.info("outbox delivery stopped: sent %d, dead %d", totals.sent, totals.dead)
    return totals


def __getattr__(name: str) -> FastAPI:
    # `app.main:app` for uvicorn, built on first access so that importing this module is cheap.
    if name == "app":
        settings = load_settings_or_exit()
        _configure_logging(settings)
        application = create_app(settings)
        globals()["app"] = application
        return application
    raise AttributeError(name)
