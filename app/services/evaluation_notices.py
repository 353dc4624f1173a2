"""What the evaluation tells people: the publication post in the branch groups (as the ranking
mode allows), each member's own result, and the answer to an objection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from app.domain.periods import parse_month
from app.domain.scheme import Scheme
from app.domain.scoring import BoardRow, MonthScore, competition_rank, visible_board
from app.models import ChatGroup, Objection, ObjectionStatus, Organization, Person
from app.render.board_png import points_text
from app.services import outbox
from app.services.board_post import MARKDOWN_MAX_BYTES, GroupBoard, board_markdown
from app.services.notices import Notice, send_to_person

PUBLISHED_KIND = "evaluation-published"
RESULT_KIND = "evaluation-result"
ANSWERED_KIND = "objection-answered"


@dataclass(frozen=True)
class PublicationBoard(GroupBoard):
    """A branch's published month: the group board, headed as the publication."""

    @property
    def label(self) -> str:
        """The period as a heading: 2026年11月月度评价公示."""
        year, month = parse_month(self.period)
        return f"{year}年{month}月月度评价公示"


def when_text(moment: datetime, tz: ZoneInfo) -> str:
    """A deadline as people read it: 12月11日 10:00, local time."""
    local = moment.astimezone(tz)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def publication_notice(*, branch: Organization, period: str, scheme: Scheme,
                       scores: list[tuple[Person, MonthScore]], deadline: datetime,
                       tz: ZoneInfo, details_url: str | None = None) -> Notice:
    """The group post of a publication, cut to what the scheme's ranking mode shows."""
    ranks = competition_rank({person.id: score.total for person, score in scores})
    rows = [BoardRow(person.id, person.name, score.total, ranks[person.id])
            for person, score in scores]
    ranking = scheme.ranking
    board = visible_board(mode=ranking.mode, rows=rows, viewer_key=None, n=ranking.n)
    posted = PublicationBoard(branch.id or 0, branch.name, period, False, ranking.mode,
                              ranking.n, board)
    tail = (f"公示期至 {when_text(deadline, tz)}。对本人结果有异议的，请在公示期内提出"
            "（发送 /异议 理由）。")
    body = board_markdown(posted, details_url=details_url,
                          max_bytes=MARKDOWN_MAX_BYTES - len(tail.encode()) - 2)
    return Notice(f"{body}\n\n{tail}", title=f"{parse_month(period)[1]}月月度评价公示",
                  markdown=True)


def queue_publication(*, session: Session, branch: Organization, period: str,
                      notice: Notice) -> int:
    """Queue the publication post to every group bound to the branch; how many were queued."""
    groups = session.exec(select(ChatGroup).where(ChatGroup.organization_id == branch.id)).all()
    return sum(
        outbox.enqueue(session=session, kind=PUBLISHED_KIND, period=period,
                       platform=str(group.platform), target=f"chat:{group.chat_id}",
                       payload=notice.to_payload())
        for group in groups
    )


def queue_result(*, session: Session, member: Person, period: str, score: MonthScore,
                 reason: str, deadline: datetime, tz: ZoneInfo) -> bool:
    """Queue a member's own published result, with the secretary's reason, privately."""
    parts = "、".join(f"{d.name} {points_text(d.score)}" for d in score.dimensions)
    why = f"\n评分说明：{reason}" if reason else ""
    text = (f"您{parse_month(period)[1]}月的月度评价已公示：{points_text(score.total)} 分"
            f"（{parts}）。{why}\n如有异议，请在 {when_text(deadline, tz)} 前提出。")
    return send_to_person(session=session, person=member, kind=RESULT_KIND, key=period,
                          notice=Notice(text, title="月度评价结果"))


def queue_answer(*, session: Session, member: Person, objection: Objection) -> bool:
    """Queue the answer to an objection to the member who raised it."""
    verdict = "成立，已更正积分" if objection.status == ObjectionStatus.UPHELD else "不成立"
    text = f"您提出的异议（Y{objection.id}）经核实{verdict}。答复：{objection.answer}"
    return send_to_person(session=session, person=member, kind=ANSWERED_KIND,
                          key=f"objection-{objection.id}", notice=Notice(text, title="异议答复"))

