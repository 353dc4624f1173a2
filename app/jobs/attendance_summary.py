"""The attendance summary posted to the branch groups when an activity's attendance is final."""

from __future__ import annotations

from collections.abc import Mapping

from sqlmodel import Session, col, select

from app.domain.checkin import Outcome
from app.models import Activity, ActivityBranch, ChatGroup
from app.services import outbox
from app.services.notices import Notice

KIND = "attendance-summary"


def summary_notice(*, activity: Activity, outcomes: Mapping[int, Outcome]) -> Notice:
    """「主题党日「…」考勤：应到 N，出席 a，迟到 b，请假 c，缺席 d」, counts only, no names."""
    counts = {o: sum(1 for x in outcomes.values() if x is o) for o in Outcome}
    tally = "，".join(f"{o.label} {counts[o]}" for o in
                      (Outcome.PRESENT, Outcome.LATE, Outcome.EXCUSED, Outcome.ABSENT))
    return Notice(f"{activity.kind}「{activity.title}」考勤：应到 {len(outcomes)}，{tally}",
                  title="考勤结果")


def queue_attendance_summary(*, session: Session, activity: Activity,
                             outcomes: Mapping[int, Outcome]) -> int:
    """Queue the summary to every group bound to one of the activity's branches, in the
    caller's (finalising) transaction; how many rows were new (none if nobody was expected)."""
    if not outcomes:
        return 0
    groups = session.exec(
        select(ChatGroup)
        .join(ActivityBranch, col(ActivityBranch.organization_id) == ChatGroup.organization_id)
        .where(ActivityBranch.activity_id == activity.id)
        .order_by(col(ChatGroup.id))
    ).all()
    notice = summary_notice(activity=activity, outcomes=outcomes).to_payload()
    return sum(outbox.enqueue(session=session, kind=KIND, period=f"activity-{activity.id}",
                              platform=str(group.platform), target=f"chat:{group.chat_id}",
                              payload=notice)
               for group in groups)
