"""Declarations (申报) in the mini-app API: declare a declared-source indicator, attach photos or
PDFs, submit for review, and the designated reviewers' queue. Evidence files are served only to
the people `evidence_for_viewing` allows, as inert downloads."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.config import Settings
from app.db import utcnow
from app.deps import EngineDep, SessionDep, SettingsDep
from app.domain.scheme import Indicator
from app.models import Declaration, EntryReview, LedgerEntry, Person
from app.services.declarations import (
    declarable_indicators,
    declarations_to_review,
    declare,
    review_declaration,
    submit_declaration,
)
from app.services.evaluation_base import scheme_for
from app.services.evidence import MAX_FILES, attach_evidence, evidence_for_viewing, files_of
from app.services.ledger import indicator_name
from app.services.reports import branch_of
from miniapp_api.api_activities import Problem
from miniapp_api.api_me import Points
from miniapp_api.deps import ApiPerson
from miniapp_api.evaluation_common import (
    ENTRY_STATUS_LABELS,
    EvidenceRef,
    answering,
    entry_status,
    evidence_kind,
    evidence_refs,
    evidence_url,
    month_or_default,
    writing,
)
from miniapp_api.templating import period_label

router = APIRouter(prefix="/api/v1", tags=["申报"])

# Served evidence is never run or sniffed into something else by the browser, not even a PDF.
EVIDENCE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
    "Cache-Control": "private, max-age=3600",
}


# ---- models ---------------------------------------------------------------------------------


class IndicatorOption(BaseModel):
    """An indicator a member may declare."""

    code: str = Field(examples=["volunteering"])
    name: str = Field(examples=["参加志愿服务活动"])
    dimension_name: str = Field(examples=["品德合格"])
    points: Points = Field(examples=[3])
    cap_per_month: Points | None = Field(examples=[6])
    evidence_required: bool = Field(examples=[True])
    description: str = Field(examples=[""])


class IndicatorList(BaseModel):
    """The declarable indicators of a month's scheme, in scheme order."""

    period: str = Field(examples=["2026-11"])
    period_label: str = Field(examples=["2026年11月"])
    items: list[IndicatorOption]


class DeclarationSummary(BaseModel):
    """A declaration in a list: what, when, and where it stands."""

    id: int = Field(examples=[3])
    code: str = Field(description="申报编号", examples=["D3"])
    indicator_code: str = Field(examples=["volunteering"])
    indicator_name: str = Field(examples=["参加志愿服务活动"])
    points: Points = Field(examples=[3])
    description: str = Field(examples=["社区志愿服务"])
    occurred_on: date
    period: str = Field(examples=["2026-11"])
    status: str = Field(description="draft、pending、approved、rejected 或 reversed",
                        examples=["pending"])
    status_label: str = Field(examples=["待审核"])


class EvidenceFileOut(EvidenceRef):
    """One uploaded evidence file of a declaration."""

    size: int = Field(examples=[183204])
    uploaded_at: datetime


class DeclarationView(DeclarationSummary):
    """A declaration as its member sees it: files, review, and what can be done next."""

    evidence_required: bool = Field(examples=[True])
    created_at: datetime
    submitted_at: datetime | None = None
    entry_id: int | None = Field(default=None, description="提交后的积分记录编号（S…）",
                                 examples=[41])
    review_reason: str = Field(default="", examples=["材料不清晰"])
    reviewer_name: str | None = Field(default=None, examples=["审核员"])
    reviewed_at: datetime | None = None
    files: list[EvidenceFileOut]
    can_attach: bool = Field(examples=[True])
    can_submit: bool = Field(examples=[False])
    max_files: int = Field(examples=[MAX_FILES])
    max_bytes: int = Field(examples=[10485760])
    message: str = Field(default="", examples=["已保存申报 D3，请上传佐证材料后提交审核。"])


class DeclarationIn(BaseModel):
    """A new declaration; its month is the month it happened in."""

    indicator_code: str = Field(min_length=1, max_length=64, examples=["volunteering"])
    description: str = Field(max_length=1000, examples=["参加社区志愿服务活动半天"])
    occurred_on: date = Field(examples=["2026-11-15"])


class ReviewItem(BaseModel):
    """A submitted declaration waiting for this reviewer, with its evidence."""

    entry_id: int = Field(examples=[41])
    code: str = Field(examples=["S41"])
    member_id: int = Field(examples=[5])
    member_name: str = Field(examples=["张三"])
    branch_name: str = Field(examples=["生产第一党支部"])
    indicator_name: str = Field(examples=["参加志愿服务活动"])
    points: Points = Field(examples=[3])
    description: str = Field(examples=["社区志愿服务"])
    occurred_on: date
    submitted_at: datetime
    evidence: list[EvidenceRef]


class ReviewList(BaseModel):
    """Declarations this person may review (never their own), oldest first."""

    items: list[ReviewItem]


class ReviewIn(BaseModel):
    """A reviewer's decision; rejecting needs a reason."""

    approve: bool = Field(examples=[False])
    reason: str = Field(default="", max_length=500, examples=["照片与申报事项不符"])


class ReviewDecided(BaseModel):
    """A decided declaration."""

    entry_id: int = Field(examples=[41])
    code: str = Field(examples=["S41"])
    status: str = Field(examples=["rejected"])
    status_label: str = Field(examples=["已驳回"])
    message: str = Field(examples=["已驳回申报 S41，已通知张三。"])


# ---- view builders (the H5 pages render these too) -------------------------------------------


def _indicator(session: Session, member: Person, declaration: Declaration) -> Indicator | None:
    scheme = scheme_for(session=session, org=branch_of(session, member),
                        period=declaration.period)
    return scheme.indicator_by_code.get(declaration.indicator_code)


def _status(session: Session, declaration: Declaration) -> str:
    entry = session.get(LedgerEntry, declaration.entry_id) if declaration.entry_id else None
    return entry_status(session, entry) if entry is not None else "draft"


def _summary(session: Session, member: Person, declaration: Declaration) -> DeclarationSummary:
    assert declaration.id is not None
    indicator = _indicator(session, member, declaration)
    status = _status(session, declaration)
    return DeclarationSummary(
        id=declaration.id, code=f"D{declaration.id}",
        indicator_code=declaration.indicator_code,
        indicator_name=indicator.name if indicator else declaration.indicator_code,
        points=indicator.points if indicator else 0, description=declaration.description,
        occurred_on=declaration.occurred_on, period=declaration.period, status=status,
        status_label=ENTRY_STATUS_LABELS[status])


def my_declarations(*, session: Session, person: Person, period: str) -> list[DeclarationSummary]:
    """The person's declarations of a month, newest first."""
    rows = session.exec(
        select(Declaration)
        .where(Declaration.person_id == person.id, Declaration.period == period)
        .order_by(col(Declaration.id).desc())
    ).all()
    return [_summary(session, person, d) for d in rows]


def declaration_view(*, session: Session, person: Person, declaration_id: int,
                     settings: Settings, message: str = "") -> DeclarationView:
    """One of the person's own declarations; anyone else's does not exist for them."""
    declaration = session.get(Declaration, declaration_id)
    if declaration is None or declaration.person_id != person.id:
        raise HTTPException(404, f"找不到申报 D{declaration_id}")
    summary = _summary(session, person, declaration)
    indicator = _indicator(session, person, declaration)
    review = session.exec(select(EntryReview).where(
        EntryReview.entry_id == declaration.entry_id)).first() if declaration.entry_id else None
    files = [
        EvidenceFileOut(id=f.id, name=f.original_name, content_type=f.content_type,
                        kind=evidence_kind(f.content_type), url=evidence_url(f.id or 0),
                        size=f.size, uploaded_at=f.uploaded_at)
        for f in files_of(session=session, declaration_id=declaration_id)
    ]
    draft = declaration.entry_id is None
    return DeclarationView(
        **summary.model_dump(), evidence_required=bool(indicator and indicator.evidence_required),
        created_at=declaration.created_at, submitted_at=declaration.submitted_at,
        entry_id=declaration.entry_id, review_reason=review.reason if review else "",
        reviewer_name=review.reviewer_label if review else None,
        reviewed_at=review.reviewed_at if review else None, files=files,
        can_attach=draft and len(files) < MAX_FILES, can_submit=draft, max_files=MAX_FILES,
        max_bytes=settings.evidence_max_bytes, message=message)


def indicator_list(*, session: Session, person: Person, period: str) -> IndicatorList:
    """What the person may declare in `period`."""
    with answering():
        indicators = declarable_indicators(session=session, member=person, period=period)
        names = scheme_for(session=session, org=branch_of(session, person),
                           period=period).dimension_names
    return IndicatorList(period=period, period_label=period_label(period), items=[
        IndicatorOption(code=i.code, name=i.name,
                        dimension_name=names.get(i.dimension or "", ""), points=i.points,
                        cap_per_month=i.cap_per_month, evidence_required=i.evidence_required,
                        description=i.description)
        for i in indicators
    ])


def review_list(*, session: Session, person: Person) -> ReviewList:
    """Pending declarations the person may review."""
    items = []
    for entry, member in declarations_to_review(session=session, reviewer=person):
        assert entry.id is not None and member.id is not None
        items.append(ReviewItem(
            entry_id=entry.id, code=f"S{entry.id}", member_id=member.id, member_name=member.name,
            branch_name=branch_of(session, member).name,
            indicator_name=indicator_name(session=session, entry=entry), points=entry.points,
            description=entry.reason, occurred_on=entry.occurred_on,
            submitted_at=entry.created_at, evidence=evidence_refs(entry.evidence)))
    return ReviewList(items=items)


def _size_text(size: int) -> str:
    return f"{size / 1024 / 1024:g} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    """The uploaded bytes; 413 past the limit, read no further than one byte beyond it."""
    data = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise HTTPException(413, f"文件超过 {_size_text(max_bytes)} 上限，请压缩后重新上传")
    return data


def require_same_origin(request: Request, settings: Settings) -> None:
    """Refuse a cross-site upload: the session cookie is Lax, and this is defence in depth."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return  # same-origin form posts from old webviews may send none
    ours = {request.headers.get("host", ""), urlsplit(settings.public_base_url).netloc}
    if urlsplit(origin).netloc not in ours:
        raise HTTPException(403, "请从本系统的页面上传材料")


def attach_upload(*, engine: Engine, settings: Settings, person: Person, declaration_id: int,
                  upload: UploadFile) -> None:
    """Store one uploaded file for the person's draft: 413 too big, 415 not an image or PDF."""
    data = read_upload(upload, settings.evidence_max_bytes)
    with writing(engine) as session:
        attach_evidence(session=session, member=person, declaration_id=declaration_id,
                        filename=upload.filename or "", content_type=upload.content_type or "",
                        data=data, storage_dir=Path(settings.evidence_dir), now=utcnow(),
                        max_bytes=settings.evidence_max_bytes)


# ---- endpoints ------------------------------------------------------------------------------

OWN = {404: {"model": Problem, "description": "找不到申报，或不是本人的申报"},
       409: {"model": Problem, "description": "申报已提交，不能再修改"}}


@router.get("/declarations/indicators", response_model=IndicatorList, responses={
    400: {"model": Problem, "description": "月份格式不对，或该月没有生效的积分方案"}})
def get_indicators(person: ApiPerson, session: SessionDep, settings: SettingsDep,
                   period: str | None = None) -> IndicatorList:
    """The indicators I may declare in a month (default: the month under evaluation)."""
    month = month_or_default(period, session=session, org=branch_of(session, person),
                             now=utcnow(), tz=settings.tz)
    return indicator_list(session=session, person=person, period=month)


@router.post("/declarations", response_model=DeclarationView, status_code=201, responses={
    400: {"model": Problem, "description": "不是申报类指标、缺少说明、日期有误等"},
    409: {"model": Problem, "description": "该月已评分，不能再申报"}})
def post_declaration(body: DeclarationIn, person: ApiPerson, engine: EngineDep,
                     settings: SettingsDep) -> DeclarationView:
    """Declare bonus work; one whose indicator needs evidence waits for files, else is submitted."""
    now = utcnow()
    if body.occurred_on > now.astimezone(settings.tz).date():
        raise HTTPException(400, "发生日期不能晚于今天")
    with writing(engine) as session:
        made = declare(session=session, member=person, indicator_code=body.indicator_code,
                       description=body.description, occurred_on=body.occurred_on, now=now)
        message = (f"已提交申报 D{made.id}，等待审核。" if made.entry_id
                   else f"已保存申报 D{made.id}，请上传佐证材料后提交审核。")
        return declaration_view(session=session, person=person, declaration_id=made.id or 0,
                                settings=settings, message=message)


@router.get("/declarations/reviews", response_model=ReviewList)
def get_reviews(person: ApiPerson, session: SessionDep) -> ReviewList:
    """Declarations waiting for my review as a designated reviewer (never my own)."""
    with answering():
        return review_list(session=session, person=person)


@router.post("/declarations/reviews/{entry_id}", response_model=ReviewDecided, responses={
    400: {"model": Problem, "description": "驳回未写理由"},
    403: {"model": Problem, "description": "不是指定审核人，或是本人的申报"},
    404: {"model": Problem, "description": "找不到申报"},
    409: {"model": Problem, "description": "已审核过"}})
def post_review(entry_id: int, body: ReviewIn, person: ApiPerson,
                engine: EngineDep) -> ReviewDecided:
    """Approve or reject a declaration as its designated reviewer; the member is told."""
    with writing(engine) as session:
        review_declaration(session=session, reviewer=person, entry_id=entry_id,
                           approve=body.approve, reason=body.reason)
        entry = session.get(LedgerEntry, entry_id)
        member = session.get(Person, entry.person_id) if entry else None
        assert entry is not None and member is not None
        status = entry_status(session, entry)
        verb = "通过" if body.approve else "驳回"
        return ReviewDecided(entry_id=entry_id, code=f"S{entry_id}", status=status,
                             status_label=ENTRY_STATUS_LABELS[status],
                             message=f"已{verb}申报 S{entry_id}，已通知{member.name}。")


@router.get("/declarations/{declaration_id}", response_model=DeclarationView, responses=OWN)
def get_declaration(declaration_id: int, person: ApiPerson, session: SessionDep,
                    settings: SettingsDep) -> DeclarationView:
    """One of my declarations: its files, status and the reviewer's reason."""
    with answering():
        return declaration_view(session=session, person=person, declaration_id=declaration_id,
                                settings=settings)


@router.post("/declarations/{declaration_id}/evidence", response_model=DeclarationView,
             status_code=201, responses={
                 **OWN, 400: {"model": Problem, "description": "文件为空或已达数量上限"},
                 403: {"model": Problem, "description": "来自其他网站的上传"},
                 413: {"model": Problem, "description": "文件太大"},
                 415: {"model": Problem, "description": "不是 JPG、PNG、WEBP 图片或 PDF"}})
def post_evidence(declaration_id: int, file: Annotated[UploadFile, File(description="图片或 PDF")],
                  request: Request, person: ApiPerson, engine: EngineDep, session: SessionDep,
                  settings: SettingsDep) -> DeclarationView:
    """Attach a photo or PDF to my draft declaration (type by content, size limited)."""
    require_same_origin(request, settings)
    attach_upload(engine=engine, settings=settings, person=person,
                  declaration_id=declaration_id, upload=file)
    with answering():
        return declaration_view(session=session, person=person, declaration_id=declaration_id,
                                settings=settings, message=f"已上传“{file.filename or '文件'}”。")


@router.post("/declarations/{declaration_id}/submit", response_model=DeclarationView,
             responses={**OWN, 400: {"model": Problem, "description": "缺少佐证材料等"}})
def post_submit(declaration_id: int, person: ApiPerson, engine: EngineDep,
                settings: SettingsDep) -> DeclarationView:
    """Submit my draft declaration for review."""
    with writing(engine) as session:
        entry = submit_declaration(session=session, member=person,
                                   declaration_id=declaration_id, now=utcnow())
        return declaration_view(session=session, person=person, declaration_id=declaration_id,
                                settings=settings,
                                message=f"已提交申报，审核编号 S{entry.id}，审核结果会私信通知您。")


@router.get("/evidence/{file_id}", response_class=FileResponse, responses={
    404: {"model": Problem, "description": "找不到材料，或无权查看"}})
def get_evidence(file_id: int, person: ApiPerson, session: SessionDep,
                 settings: SettingsDep) -> FileResponse:
    """An evidence file, for the member, their secretary, the committee or a reviewer."""
    with answering():
        evidence, path = evidence_for_viewing(session=session, viewer=person, file_id=file_id,
                                              storage_dir=Path(settings.evidence_dir))
    # Pictures show in place (thumbnails); a PDF is downloaded, never rendered in our origin.
    inline = evidence_kind(evidence.content_type) == "image"
    return FileResponse(path, media_type=evidence.content_type, filename=evidence.original_name,
                        content_disposition_type="inline" if inline else "attachment",
                        headers=EVIDENCE_HEADERS)
