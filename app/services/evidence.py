"""Evidence files of declarations (申报佐证材料): recognised by their content, stored under the
evidence directory by a random name (never the client's), never executable, and read back only
by people allowed to see the declaration."""

from __future__ import annotations

import hashlib
import os
import secrets
import unicodedata
from datetime import datetime
from pathlib import Path, PurePosixPath

from sqlmodel import Session, col, func, select

from app.domain.evaluation import EvaluationRefused
from app.domain.refusals import Refusal
from app.models import Declaration, EvidenceFile, Organization, Person
from app.services import audit
from app.services.evaluation_base import scheme_for
from app.services.evaluation_roles import (
    is_branch_secretary,
    is_committee_over,
    may_review_declaration,
)
from app.services.reports import branch_of

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_FILES = 9
# What is accepted, by content type, with the extension it is stored under.
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
}
# Types a client sends when it does not know better; the content decides then.
_UNSPECIFIED = {"", "application/octet-stream"}


def sniff(data: bytes) -> str | None:
    """The content type by magic bytes: JPEG, PNG, WEBP or PDF; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def _size_text(size: int) -> str:
    return f"{size / 1024 / 1024:g} MB" if size >= 1024 * 1024 else f"{size / 1024:g} KB"


def _display_name(filename: str) -> str:
    # Kept only to show people; the file on disk never carries it.
    name = PurePosixPath(filename.replace("\\", "/")).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    return name[:255] or "未命名文件"


def _check(data: bytes, content_type: str, max_bytes: int) -> str:
    if not data:
        raise EvaluationRefused("文件是空的，请重新选择")
    if len(data) > max_bytes:
        raise EvaluationRefused(
            f"文件大小 {_size_text(len(data))}，超过 {_size_text(max_bytes)} 上限")
    found = sniff(data)
    if found is None:
        raise EvaluationRefused("只能上传 JPG、PNG、WEBP 图片或 PDF 文件", kind=Refusal.unsupported)
    claimed = content_type.split(";")[0].strip().lower()
    if claimed not in _UNSPECIFIED and claimed != found:
        raise EvaluationRefused(f"文件内容与声明的类型（{claimed}）不符", kind=Refusal.unsupported)
    return found


def _store(data: bytes, storage_dir: Path, folder: str, extension: str) -> str:
    name = f"{folder}/{secrets.token_hex(16)}{extension}"
    path = storage_dir / name
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    # O_EXCL: never over another file; 0o640: readable by the service, executable by nobody.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return name


def own_draft(*, session: Session, member: Person, declaration_id: int) -> Declaration:
    """The member's own declaration, still a draft, or a refusal."""
    declaration = session.get(Declaration, declaration_id)
    if declaration is None or declaration.person_id != member.id:
        raise EvaluationRefused(f"找不到申报 D{declaration_id}", kind=Refusal.not_found)
    if declaration.entry_id is not None:
        raise EvaluationRefused(f"申报 D{declaration_id} 已提交，不能再修改", kind=Refusal.conflict)
    return declaration


def files_of(*, session: Session, declaration_id: int) -> list[EvidenceFile]:
    """A declaration's evidence files, in upload order."""
    return list(session.exec(
        select(EvidenceFile).where(EvidenceFile.declaration_id == declaration_id)
        .order_by(col(EvidenceFile.id))
    ))


def attach_evidence(
    *, session: Session, member: Person, declaration_id: int, filename: str, content_type: str,
    data: bytes, storage_dir: Path, now: datetime, max_bytes: int = DEFAULT_MAX_BYTES,
) -> EvidenceFile:
    """Store one evidence file for the member's draft declaration (images or PDF, size-limited)."""
    declaration = own_draft(session=session, member=member, declaration_id=declaration_id)
    found = _check(data, content_type, max_bytes)
    count = session.exec(select(func.count()).select_from(EvidenceFile)
                         .where(EvidenceFile.declaration_id == declaration_id)).one()
    if count >= MAX_FILES:
        raise EvaluationRefused(f"每项申报最多上传 {MAX_FILES} 个文件")
    stored = _store(data, storage_dir, declaration.period, EXTENSIONS[found])
    evidence = EvidenceFile(declaration_id=declaration_id, stored_name=stored,
                            original_name=_display_name(filename), content_type=found,
                            size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                            uploaded_by_id=member.id or 0, uploaded_at=now)
    session.add(evidence)
    session.flush()
    audit.record(session=session, actor_id=member.id, actor_label=member.name, action="upload",
                 entity="evidence_file", entity_id=evidence.id,
                 after={"declaration_id": declaration_id, "name": evidence.original_name,
                        "type": found, "size": evidence.size, "sha256": evidence.sha256})
    return evidence


def _may_view(session: Session, viewer: Person, declaration: Declaration) -> bool:
    member = session.get(Person, declaration.person_id)
    assert member is not None
    if viewer.id == member.id:
        return True
    branch = branch_of(session, member)
    home = session.get(Organization, member.organization_id)
    assert home is not None
    indicator = scheme_for(session=session, org=branch, period=declaration.period
                           ).indicator_by_code.get(declaration.indicator_code)
    return (is_branch_secretary(session=session, person=viewer, branch=branch)
            or is_committee_over(session=session, person=viewer, org=branch)
            or (indicator is not None and may_review_declaration(
                session=session, reviewer=viewer, member_org=home, indicator=indicator)))


def evidence_for_viewing(*, session: Session, viewer: Person, file_id: int,
                         storage_dir: Path) -> tuple[EvidenceFile, Path]:
    """An evidence file and its path, for the member, their secretary, committee or reviewer."""
    evidence = session.get(EvidenceFile, file_id)
    declaration = session.get(Declaration, evidence.declaration_id) if evidence else None
    if evidence is None or declaration is None or not _may_view(session, viewer, declaration):
        raise EvaluationRefused("找不到该材料，或您无权查看", kind=Refusal.not_found)
    root = storage_dir.resolve()
    path = (root / evidence.stored_name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise EvaluationRefused("该材料文件已不在存储目录中", kind=Refusal.not_found)
    return evidence, path
