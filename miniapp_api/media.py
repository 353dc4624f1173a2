"""Pictures the chat platforms fetch from us: board pictures behind a signed URL, no login."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from app.deps import SessionDep, SettingsDep
from app.render.board_png import find_cjk_font
from app.services.board_post import board_picture, signed_board
from app.services.reports import ReportError
from miniapp_api.refusals import http_error

router = APIRouter(prefix="/media", include_in_schema=False)

# A closed month is frozen; an open one can still change, so platforms should look again soon.
CLOSED_MAX_AGE_S = 86400
OPEN_MAX_AGE_S = 300


@router.api_route(
    "/boards/{branch_id}/{period}.png", methods=["GET", "HEAD"], response_class=Response
)
def board_png(
    branch_id: int,
    period: str,
    session: SessionDep,
    settings: SettingsDep,
    sig: str = "",
) -> Response:
    """A branch's month board as its group sees it, for whoever holds the URL we posted."""
    # DingTalk's servers fetch the picture without a login, so the signature is the only
    # access control.
    try:
        posted = signed_board(session=session, settings=settings, branch_id=branch_id,
                              period=period, sig=sig)
    except ReportError as exc:
        raise http_error(exc) from None
    png = board_picture(posted, font=find_cjk_font(settings.board_font_path))
    if png is None:
        raise HTTPException(503, "暂时无法生成积分榜图片，请查看文字版积分榜")
    max_age = CLOSED_MAX_AGE_S if posted.closed else OPEN_MAX_AGE_S
    return Response(
        png, media_type="image/png", headers={"Cache-Control": f"public, max-age={max_age}"}
    )
