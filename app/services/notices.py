"""What the service tells people in the chat: composed once, sent by the chat or the outbox."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlmodel import Session

from app.models import Activity, LeaveKind, LeaveRequest, LeaveStatus, Person, Platform
from app.services import outbox
from app.services.activities import approvers_of


@dataclass(frozen=True)
class NoticeButton:
    """A card button: an action id, its parameters and the chat command that does the same."""

    label: str
    action: str
    params: dict[str, str] = field(default_factory=dict)
    command: str = ""


@dataclass(frozen=True)
class Notice:
    """A platform-neutral message: text or markdown, optionally a card with buttons."""

    text: str
    title: str = "党员积分助手"
    markdown: bool = False
    buttons: tuple[NoticeButton, ...] = ()
    card_id: str | None = None

    def to_payload(self) -> dict[str, Any]:
        """The notice as JSON for an outbox row."""
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Notice:
        """A notice back from an outbox row."""
        buttons = tuple(NoticeButton(**b) for b in payload.get("buttons", ()))
        return cls(text=payload["text"], title=payload.get("title", "党员积分助手"),
                   markdown=bool(payload.get("markdown")), buttons=buttons,
                   card_id=payload.get("card_id"))


def home_platform(person: Person) -> tuple[str, str] | None:
    """The platform and userid a person is reached on (DingTalk first), if any."""
    if person.dingtalk_userid:
        return Platform.DINGTALK.value, person.dingtalk_userid
    if person.wecom_userid:
        return Platform.WECOM.value, person.wecom_userid
    return None


def send_to_person(*, session: Session, person: Person, kind: str, key: str,
                   notice: Notice) -> bool:
    """Queue a private message in the caller's transaction; False if the person has no account."""
    home = home_platform(person)
    if home is None:
        return False
    platform, userid = home
    outbox.enqueue(session=session, kind=kind, period=key, platform=platform,
                   target=f"user:{userid}", payload=notice.to_payload())
    return True


def leave_request_card(*, leave: LeaveRequest, member: Person, activity: Activity,
                       when: str) -> Notice:
    """The card a branch secretary gets when a member asks for leave."""
    return Notice(
        f"{member.name} 申请请假（Q{leave.id}）\n活动：{activity.kind}「{activity.title}」{when}\n"
        f"类型：{LeaveKind(leave.kind).label}\n理由：{leave.reason}",
        title="请假申请", card_id=f"leave-{leave.id}",
        buttons=(NoticeButton("批准", "leave.approve", {"leave_id": str(leave.id)},
                              f"/批准 Q{leave.id}"),
                 NoticeButton("驳回", "leave.reject", {"leave_id": str(leave.id)},
                              f"/驳回 Q{leave.id} 理由")),
    )


def leave_decided(*, leave: LeaveRequest) -> Notice:
    """The message a member gets when their leave request is decided."""
    verdict = LeaveStatus(leave.status).label
    why = f"，理由：{leave.decision_reason}" if leave.decision_reason else ""
    return Notice(f"您的请假申请 Q{leave.id} {verdict}{why}。")


def queue_leave_requested(*, session: Session, leave: LeaveRequest, when: str) -> int:
    """Queue the decision card to each secretary who may decide; how many were reached."""
    activity = session.get(Activity, leave.activity_id)
    member = session.get(Person, leave.person_id)
    assert activity is not None and member is not None
    card = leave_request_card(leave=leave, member=member, activity=activity, when=when)
    return sum(send_to_person(session=session, person=secretary, kind="leave-requested",
                              key=f"leave-{leave.id}", notice=card)
               for secretary in approvers_of(session=session, leave=leave))


def queue_leave_decided(*, session: Session, leave: LeaveRequest) -> bool:
    """Queue the outcome of a leave request to the member who asked."""
    member = session.get(Person, leave.person_id)
    assert member is not None
    return send_to_person(session=session, person=member, kind="leave-decided",
                          key=f"leave-{leave.id}", notice=leave_decided(leave=leave))
