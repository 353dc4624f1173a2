"""What the evaluation and declaration API and pages share: service refusals as HTTP answers,
the month a request is about, entry status words and evidence links."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import HTTPException
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError
from sqlmodel import Session

from app.db import write_session
from app.domain.periods import FIRST_YEAR, LAST_YEAR
from app.domain.refusals import Refused
from app.models import EntryStatus, LedgerEntry, Organization
from app.services.evaluation import evaluated_period
from app.services.ledger import status_of
from app.services.reports import reversals_of
from miniapp_api.refusals import http_error

_MONTH = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")
_YEARS = range(FIRST_YEAR, LAST_YEAR + 1)

EvidenceKind = Literal["image", "pdf"]


@contextmanager
def answering() -> Iterator[None]:
    """Service refusals inside become 4xx answers carrying the Chinese reason."""
    try:
        yield
    except Refused as exc:
        raise http_error(exc) from None


@contextmanager
def writing(engine: Engine) -> Iterator[Session]:
    """One write transaction: a refusal rolls everything back and becomes a 4xx answer."""
    with answering():
        try:
            with write_session(engine) as session:
                yield session
        except IntegrityError:
            # Two taps racing on a unique row (a month, a review): the loser is told so.
            raise HTTPException(409, "操作冲突：该记录刚刚已被提交，请刷新页面后查看") from None
        except (DataError, OverflowError):
            # Input pydantic lets through but the database cannot hold (NUL, huge numbers).
            raise HTTPException(400, "提交的内容无法保存，请检查后重试") from None


def month_param(raw: str | None) -> str | None:
    """A month from a request (`2026-11`, also `2026-1`), as a key; None when not given."""
    if raw is None or not raw.strip():
        return None
    match = _MONTH.match(raw)
    # int() also reads full-width digits typed on a phone; the key is rebuilt from the numbers.
    year, month = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if year not in _YEARS or not 1 <= month <= 12:
        raise HTTPException(400, f"看不懂月份“{raw.strip()[:20]}”，请写成 2026-11 这样的格式")
    return f"{year:04d}-{month:02d}"


def month_or_default(raw: str | None, *, session: Session, org: Organization, now: datetime,
                     tz: ZoneInfo) -> str:
    """The month asked for, or the one under evaluation."""
    return month_param(raw) or evaluated_period(session=session, org=org, now=now, tz=tz)


ENTRY_STATUS_LABELS = {
    "draft": "待提交",
    "pending": "待审核",
    "approved": "已通过",
    "rejected": "已驳回",
    "reversed": "已撤销",
}


def entry_status(session: Session, entry: LedgerEntry) -> str:
    """A declared entry's status word: pending, approved, rejected, or reversed once undone."""
    status = status_of(session=session, entry=entry)
    if status is EntryStatus.APPROVED and reversals_of(session=session,
                                                       entry_ids=[entry.id or 0]):
        return "reversed"
    return status.value


class EvidenceRef(BaseModel):
    """An evidence file as a link; only people allowed to see the declaration can open it."""

    id: int | None = Field(description="文件编号；旧记录只有文件名时为 null", examples=[3])
    name: str = Field(examples=["志愿服务.jpg"])
    content_type: str = Field(examples=["image/jpeg"])
    kind: EvidenceKind | None = Field(examples=["image"])
    url: str | None = Field(examples=["/api/v1/evidence/3"])


def evidence_url(file_id: int) -> str:
    """Where an evidence file is served, behind the login."""
    return f"/api/v1/evidence/{file_id}"


def evidence_kind(content_type: str) -> EvidenceKind | None:
    """Whether a file is shown as a picture or linked as a PDF."""
    if content_type.startswith("image/"):
        return "image"
    return "pdf" if content_type == "application/pdf" else None


def evidence_refs(stored: list[Any] | None) -> list[EvidenceRef]:
    """The evidence a ledger entry carries, as links (entries made elsewhere may hold names)."""
    refs = []
    for item in stored or []:
        if isinstance(item, dict) and isinstance(item.get("file_id"), int):
            kind = str(item.get("type", ""))
            refs.append(EvidenceRef(id=item["file_id"], name=str(item.get("name", "")),
                                    content_type=kind, kind=evidence_kind(kind),
                                    url=evidence_url(item["file_id"])))
        else:
            refs.append(EvidenceRef(id=None, name=str(item), content_type="", kind=None,
                                    url=None))
    return refs
