"""What every CLI command shares: consoles, the engine, and exiting with a message."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.config import load_settings_or_exit
from app.db import make_engine
from app.domain.ids import record_id
from app.services import orgs
from app.services.people import find_person

# Soft wrap: a long message or file path stays on one line, so it can be copied and grepped.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def engine() -> Engine:
    """An engine on the configured database (a bad setting exits with one line)."""
    settings = load_settings_or_exit()
    return make_engine(settings.database_url, pool_size=2)


def record_number(value: str) -> int:
    """A record's number (活动序号, 积分记录编号, …) as typed, or a usage error in Chinese."""
    number = record_id(value.strip())
    if number is None:
        raise typer.BadParameter(f"“{value}”不是有效的编号")
    return number


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a message on stderr and exit."""
    err.print(f"[red]{message}[/red]")
    raise typer.Exit(code)


def org_or_fail(session: Session, text: str):  # type: ignore[no-untyped-def]
    """The organisation named by path or unique name, or exit with a message."""
    org = orgs.find_by_path_or_name(session, text)
    if org is None:
        fail(f"找不到组织“{text}”，或名称不唯一，请写完整路径（如 某公司党委/第一党支部）")
    return org


def person_or_fail(session: Session, key: str):  # type: ignore[no-untyped-def]
    """The person with this userid or phone, or exit with a message."""
    person = find_person(session=session, key=key)
    if person is None:
        fail(f"找不到钉钉userid、企业微信userid或手机号为“{key}”的人员")
    return person
