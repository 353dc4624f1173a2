"""The monthly board as posted into a branch group: markdown, a picture, and the notice."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from app.config import Settings
from app.domain.periods import parse_month
from app.domain.refusals import Refusal
from app.domain.scheme import RankingMode
from app.domain.scoring import Board, BoardRow, visible_board
from app.links import board_image_url, board_page_url, verify_board_signature
from app.models import Organization, OrgKind
from app.render import board_png
from app.render.board_png import points_text
from app.services import schemes
from app.services.notices import Notice
from app.services.reports import ReportError, branch_board

# WeCom caps group markdown at 4,096 bytes and DingTalk a message at 15,000 (its JSON escapes
# Chinese as \uXXXX, doubling it); this budget fits both with the title and the image link.
MARKDOWN_MAX_BYTES = 3800


@dataclass(frozen=True)
class GroupBoard:
    """A branch's month as its group may see it: what the ranking mode shows, nobody's own row."""

    branch_id: int
    branch_name: str
    period: str
    closed: bool
    mode: RankingMode
    n: int | None
    board: Board

    @property
    def label(self) -> str:
        """The period as a heading: 2026年10月积分榜."""
        year, month = parse_month(self.period)
        return f"{year}年{month}月积分榜"

    @property
    def notes(self) -> tuple[str, ...]:
        """Why rows are missing, and whether the numbers may still change."""
        notes = []
        if self.mode is RankingMode.off:
            notes.append("本支部未开启排名公示。")
        elif self.mode is RankingMode.aggregates:
            notes.append("本支部只公布参与人数和平均分。")
        elif self.mode is RankingMode.top_n:
            notes.append(f"本支部公布前 {self.n} 名。")
        if self.mode is not RankingMode.full:
            notes.append("发送 /我的积分 查看本人积分和排名（仅本人可见）。")
        if not self.closed:
            notes.append(f"{parse_month(self.period)[1]}月尚未结账，积分以结账结果为准。")
        return tuple(notes)

    @property
    def has_picture(self) -> bool:
        """Whether there is anything to draw beyond the heading (not with ranking off)."""
        return (
            bool(self.board.rows)
            or self.board.average is not None
            or (self.mode in (RankingMode.top_n, RankingMode.full))
        )


def group_board(*, session: Session, branch: Organization, period: str) -> GroupBoard:
    """The branch's board for a month, cut to what the scheme's ranking mode lets a group see."""
    full = branch_board(session=session, branch=branch, period=period)
    version = schemes.version_for(session=session, org=branch, period=period)
    if version is None:
        raise ReportError(f"{period} 没有生效的积分方案")
    ranking = schemes.scheme_of(version).ranking
    rows = [BoardRow(r.person_id, r.name, r.total, r.rank) for r in full.rows]
    # No viewer: a group post carries no member's own row (person ids are never None).
    cut = visible_board(mode=ranking.mode, rows=rows, viewer_key=None, n=ranking.n)
    return GroupBoard(
        full.branch_id, full.branch_name, period, full.closed, ranking.mode, ranking.n, cut
    )


def board_row_line(row: BoardRow) -> str:
    """One board row as a markdown bullet: "- 第 4 名 张三 8 分" (a numbered list would renumber
    tied ranks)."""
    rank = f"第 {row.rank} 名" if row.rank is not None else "未排名"
    points = "—" if row.score is None else f"{points_text(row.score)} 分"
    return f"- {rank} {row.name} {points}"


def board_markdown(
    posted: GroupBoard,
    *,
    image_url: str | None = None,
    details_url: str | None = None,
    max_bytes: int = MARKDOWN_MAX_BYTES,
) -> str:
    """The board as chat markdown: heading, picture, rows as allowed, average, notes, link."""
    board = posted.board
    head = [f"### {posted.branch_name} {posted.label}"]
    if image_url:
        head.append(f"![积分榜]({image_url})")
    tail = []
    if board.members is not None and not board.rows:
        tail.append(f"参与人数 {board.members} 人，支部平均分 {points_text(board.average)}")
    elif board.average is not None:
        tail.append(f"支部平均分：{points_text(board.average)}")
    tail.extend(posted.notes)
    if details_url:
        tail.append(f"[查看积分榜]({details_url})")

    lines: list[str] = []
    if board.rows or posted.mode in (RankingMode.top_n, RankingMode.full):
        rows = [board_row_line(r) for r in board.rows] or ["（暂无排名数据）"]
        where = "图片或积分榜页面" if image_url else "积分榜页面"

        def more(left: int) -> str:
            return f"……其余 {left} 人略，完整榜单见{where}"

        # Rows go in while the message stays within what every platform accepts; the picture
        # and the H5 board still have the rest.
        room = max_bytes - len("\n\n".join([*head, *tail]).encode()) - 4
        reserve = len(more(len(rows)).encode()) + 1
        used = 0
        for i, line in enumerate(rows):
            cost = len(line.encode()) + 1
            if used + cost + (0 if i == len(rows) - 1 else reserve) > room:
                lines.append(more(len(rows) - i))
                break
            lines.append(line)
            used += cost
    blocks = [*head, *(["\n".join(lines)] if lines else []), *tail]
    return "\n\n".join(blocks)


def board_picture(posted: GroupBoard, *, font: Path | None) -> bytes | None:
    """The board as posted, as a PNG; None without a font that can draw every character."""
    return board_png.render_board_png(
        posted.board, title=posted.branch_name, subtitle=posted.label, font=font, notes=posted.notes
    )


_OWN_PICTURE = re.compile(r"/media/boards/(\d+)/(\d{4}-\d{2})\.png\?sig=([0-9a-f]+)$")


def signed_board(
    *, session: Session, settings: Settings, branch_id: int, period: str, sig: str
) -> GroupBoard:
    """The board behind a signed picture URL; refused as forbidden (a bad signature, checked
    first so that unsigned requests learn nothing) or not found."""
    if not verify_board_signature(settings, branch_id, period, sig):
        raise ReportError("链接无效或已被篡改", kind=Refusal.forbidden)
    try:
        parse_month(period)
    except ValueError:
        raise ReportError("找不到该月份的积分榜", kind=Refusal.not_found) from None
    branch = session.get(Organization, branch_id)
    if branch is None or branch.kind != OrgKind.branch:
        raise ReportError("找不到该党支部", kind=Refusal.not_found)
    try:
        return group_board(session=session, branch=branch, period=period)
    except ReportError as exc:
        raise ReportError(str(exc), kind=Refusal.not_found) from None


def own_board_picture(*, session: Session, settings: Settings, url: str) -> bytes | None:
    """The PNG behind a board picture URL we posted, drawn here; None for any other URL.

    Platforms that cannot show a linked image (WeCom) get the picture itself, so the sender
    draws it rather than fetching its own public URL.
    """
    match = _OWN_PICTURE.search(url)
    if match is None or not url.startswith(settings.public_base_url.rstrip("/")):
        return None
    try:
        posted = signed_board(session=session, settings=settings, branch_id=int(match[1]),
                              period=match[2], sig=match[3])
    except ReportError:
        return None
    return board_picture(posted, font=board_png.find_cjk_font(settings.board_font_path))


def board_notice(
    *, session: Session, settings: Settings, branch: Organization, period: str
) -> Notice:
    """Last month's board for a branch group: markdown, with the picture when one can be drawn."""
    posted = group_board(session=session, branch=branch, period=period)
    image_url = None
    if posted.has_picture:
        # Checked now rather than when the platform fetches the picture, so that a missing
        # font or a name the font cannot draw leaves a text-only post, not a broken image.
        font = board_png.find_cjk_font(settings.board_font_path)
        if board_png.renderable(
            posted.board,
            title=posted.branch_name,
            subtitle=posted.label,
            font=font,
            notes=posted.notes,
        ):
            image_url = board_image_url(settings, posted.branch_id, period)
    text = board_markdown(
        posted, image_url=image_url, details_url=board_page_url(settings, posted.branch_id, period)
    )
    return Notice(text, title=f"{parse_month(period)[1]}月积分榜", markdown=True)
