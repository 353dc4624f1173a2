"""Publishing points schemes and finding the version in force for a member and month."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from sqlmodel import Session, col, select

from app.domain.periods import month_key_of, parse_month
from app.domain.scheme import Scheme, load_scheme, scheme_fingerprint
from app.models import LedgerEntry, Organization, PeriodClose, SchemeVersion
from app.services import audit


class SchemePublishError(ValueError):
    """A scheme cannot be published as asked."""


@lru_cache(maxsize=64)
def _parsed(content: str) -> Scheme:
    return load_scheme(content, source_name="已发布的方案")


def scheme_of(version: SchemeVersion) -> Scheme:
    """The validated scheme stored in a published version (parsed once per content)."""
    return _parsed(version.content)


def publish(
    *,
    session: Session,
    org: Organization,
    content: str,
    effective_from: date,
    actor_label: str,
    source_name: str = "方案文件",
) -> SchemeVersion:
    """Publish a scheme file for `org`'s subtree from the first day of a month not yet closed."""
    scheme = load_scheme(content, source_name=source_name)
    if effective_from.day != 1:
        raise SchemePublishError("方案版本须从某月1日起生效（例如 2026-12-01）")
    month = month_key_of(effective_from)
    closed = session.exec(
        select(PeriodClose.period).where(
            PeriodClose.organization_id == org.id, PeriodClose.period >= month
        )
    ).first()
    if closed is not None:
        raise SchemePublishError(f"{closed} 已结账，新版本只能从之后的月份生效")
    _refuse_orphaned_entries(session, org, scheme, month)
    latest = session.exec(
        select(SchemeVersion)
        .where(SchemeVersion.organization_id == org.id)
        .order_by(col(SchemeVersion.version).desc())
    ).first()
    version = SchemeVersion(
        organization_id=org.id,
        version=(latest.version + 1) if latest else 1,
        code=scheme.code,
        name=scheme.name,
        effective_from=effective_from,
        # The committee's own text, comments included, is what was published.
        content=content,
        fingerprint=scheme_fingerprint(scheme),
        published_by=actor_label,
    )
    session.add(version)
    session.flush()
    audit.record(
        session=session,
        actor_label=actor_label,
        action="publish",
        entity="scheme_version",
        entity_id=version.id,
        after={"organization_id": org.id, "version": version.version, "code": scheme.code,
               "effective_from": effective_from, "fingerprint": version.fingerprint},
    )
    return version


def _refuse_orphaned_entries(
    session: Session, org: Organization, scheme: Scheme, month: str
) -> None:
    # Entries already made for those months must still have an indicator to be scored under.
    codes = session.exec(
        select(LedgerEntry.indicator_code)
        .join(Organization, col(Organization.id) == LedgerEntry.organization_id)
        .where(col(Organization.path).startswith(org.path), LedgerEntry.period >= month)
        .distinct()
    ).all()
    missing = sorted(set(codes) - set(scheme.indicator_by_code))
    if missing:
        raise SchemePublishError(
            f"{month} 起已有积分记录使用了新版本中没有的指标：{'、'.join(missing)}；"
            "请保留这些指标，或让新版本从更晚的月份生效"
        )


def version_for(*, session: Session, org: Organization, period: str) -> SchemeVersion | None:
    """The version in force for `period` at `org`: the nearest owner up the tree, newest first."""
    year, month = parse_month(period)
    chain = [int(i) for i in org.path.strip("/").split("/") if i]
    candidates = session.exec(
        select(SchemeVersion)
        .where(
            col(SchemeVersion.organization_id).in_(chain),
            SchemeVersion.effective_from <= date(year, month, 1),
        )
        .order_by(col(SchemeVersion.effective_from).desc(), col(SchemeVersion.version).desc())
    ).all()
    for owner in reversed(chain):
        for candidate in candidates:
            if candidate.organization_id == owner:
                return candidate
    return None


def versions(*, session: Session, org: Organization) -> list[SchemeVersion]:
    """Every version published at `org`, oldest first."""
    return list(
        session.exec(
            select(SchemeVersion)
            .where(SchemeVersion.organization_id == org.id)
            .order_by(col(SchemeVersion.version))
        )
    )
