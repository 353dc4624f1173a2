"""Application settings, read from the environment and `.env`."""

from __future__ import annotations

import sys
from datetime import time
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PLACEHOLDER_SECRET = "change-me"


class Settings(BaseSettings):
    """Every setting the service reads; `.env.example` documents each key."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "sqlite:///./data/partypoints.db"
    app_env: Literal["dev", "prod"] = "dev"
    secret_key: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    business_tz: str = "Asia/Shanghai"
    public_base_url: str = "http://127.0.0.1:8000"
    db_pool_size: int = 40
    log_level: str = "INFO"
    # A CJK font file for board pictures; empty means look for one (fc-match, then known paths).
    board_font_path: str = ""

    # DingTalk enterprise-internal app (robot, cards, H5 login). Base URLs point at the fake
    # server in tests; the robot code defaults to the client id, as DingTalk issues it.
    dingtalk_api_base: str = "https://api.dingtalk.com"
    dingtalk_oapi_base: str = "https://oapi.dingtalk.com"
    dingtalk_client_id: str = ""
    dingtalk_client_secret: SecretStr = SecretStr("")
    dingtalk_robot_code: str = ""
    dingtalk_card_template_id: str = ""
    dingtalk_corp_id: str = ""
    http_timeout_s: float = 10.0
    # Threads handling chat messages after the platform got its answer. Each spends most of a
    # message on the interpreter lock and the rest waiting on the database: more threads slow
    # the callback answers they compete with. While the platform's API is slow (tens of ms a
    # call), the replies are sent by CHAT_SEND_THREADS instead, which mostly wait, so there are
    # more of them (bot/background.py).
    chat_handler_threads: int = Field(default=3, ge=1, le=64)
    chat_send_threads: int = Field(default=16, ge=1, le=256)

    # Outbox delivery. Posts go through a group's own robot (DingTalk custom robot, WeCom group
    # robot: DELIVERY_ROBOT_PER_MIN each, sliding minute) or the app's API (DELIVERY_APP_PER_MIN,
    # spread evenly); a row left `sending` longer than DELIVERY_LEASE_S (its worker died) is
    # sent again; after DELIVERY_MAX_ATTEMPTS failures a row is dead.
    delivery_max_attempts: int = Field(default=8, ge=1, le=30)
    delivery_robot_per_min: int = Field(default=20, ge=1)
    delivery_app_per_min: int = Field(default=600, ge=1)
    delivery_lease_s: float = Field(default=300.0, gt=0)

    # WeCom self-built app: 1:1 messages and its callback, approval cards, H5 OAuth login.
    wecom_corp_id: str = ""
    wecom_agent_id: str = ""
    wecom_secret: SecretStr = SecretStr("")
    wecom_token: SecretStr = SecretStr("")
    wecom_encoding_aes_key: SecretStr = SecretStr("")
    # WeCom 智能机器人 (AI bot) in branch groups: its callback (token and key) or its long
    # connection (bot id and secret). WECOM_AIBOT_MODE=ws means `partypoints wecom-aibot` holds
    # the connection and also delivers WeCom posts (it alone can post to AI-bot groups).
    wecom_aibot_id: str = ""
    wecom_aibot_secret: SecretStr = SecretStr("")
    wecom_aibot_token: SecretStr = SecretStr("")
    wecom_aibot_encoding_aes_key: SecretStr = SecretStr("")
    wecom_aibot_mode: Literal["callback", "ws"] = "callback"
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    wecom_open_base: str = "https://open.weixin.qq.com"
    wecom_ws_url: str = "wss://openws.work.weixin.qq.com"

    # Activities and check-in. The QR token changes every CHECKIN_QR_ROTATE_S seconds and is
    # accepted in its own window and the next one only.
    checkin_qr_rotate_s: int = Field(default=20, ge=5, le=600)
    checkin_opens_before_min: int = Field(default=30, ge=0)
    checkin_closes_after_min: int = Field(default=30, ge=0)
    checkin_late_after_min: int = Field(default=10, ge=0)
    leave_deadline_before_min: int = Field(default=0, ge=0)
    # Deliver the outbox and run the scheduler's jobs inside the web process (one process only;
    # production runs `partypoints scheduler` and `partypoints outbox deliver` and sets it false).
    embedded_worker: bool = True
    # H5 and mini-app login sessions (signed with SECRET_KEY) last this long.
    session_ttl_s: int = Field(default=4 * 3600, ge=60)

    # Scheduler (local times in BUSINESS_TZ): last month's board goes to every bound branch group
    # on the 1st at MONTHLY_BOARD_AT; secretaries get their digest daily at DIGEST_AT. The
    # self-evaluation window is the scheme's (its `evaluation` section), not a setting.
    monthly_board_at: time = time(9, 0)
    digest_at: time = time(9, 0)
    # Declaration evidence (photos, PDFs) is stored here under random names, never served
    # without a login; each file at most EVIDENCE_MAX_BYTES.
    evidence_dir: str = "./data/evidence"
    evidence_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)

    @property
    def wecom_app_configured(self) -> bool:
        """The WeCom app can send messages (corp id, agent id and secret are set)."""
        return bool(self.wecom_corp_id and self.wecom_agent_id
                    and self.wecom_secret.get_secret_value())

    @property
    def robot_code(self) -> str:
        """The DingTalk robot code: configured, or the client id."""
        return self.dingtalk_robot_code or self.dingtalk_client_id

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"DATABASE_URL is not a database URL: {exc}") from None
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError("DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL")
        return value

    @field_validator("business_tz")
    @classmethod
    def _valid_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"BUSINESS_TZ is not a known time zone: {value!r}") from None
        return value

    @model_validator(mode="after")
    def _no_placeholder_secret_in_prod(self) -> Settings:
        if self.app_env == "prod" and self.secret_key.get_secret_value() in (
            "",
            PLACEHOLDER_SECRET,
        ):
            raise ValueError("SECRET_KEY must be set to a real secret when APP_ENV=prod")
        return self

    @property
    def tz(self) -> ZoneInfo:
        """The business time zone that period keys are computed in."""
        return ZoneInfo(self.business_tz)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def load_settings_or_exit() -> Settings:
    """The settings, or one clear line on stderr and exit status 2 when they are invalid."""
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or '配置'}: {err['msg']}"
            for err in exc.errors()
        )
        print(f"配置错误（请检查环境变量或 .env）：{problems}", file=sys.stderr)
        raise SystemExit(2) from None
