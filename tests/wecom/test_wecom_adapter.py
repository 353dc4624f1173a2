"""WeCom adapter rules without a server: parsing, cards, markdown limits."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest

from bot.types import Button, ChatType, Reply
from bot.wecom.adapter import (
    card_action_from_event,
    card_id_of,
    markdown_of,
    message_from_aibot,
    message_from_app,
    task_id_for,
    template_card,
)
from bot.wecom.client import (
    CONTINUED,
    IMAGE_MAX_BYTES,
    TRUNCATED,
    image_body,
    split_markdown,
    truncate_markdown,
)

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_group_message_loses_the_leading_mention():
    message = message_from_aibot({
        "msgid": "m1", "chatid": "wrg1", "chattype": "group", "from": {"userid": "zhangsan"},
        "msgtype": "text", "text": {"content": "@党员积分助手  /我的积分 上月"}},
        received_at=NOW)
    assert message is not None
    assert message.text == "/我的积分 上月" and message.chat_type is ChatType.GROUP
    assert message.chat_id == "wrg1" and message.sender_userid == "zhangsan"
    assert message.message_id == "aibot:m1"


def test_single_chat_and_unsupported_types():
    single = message_from_aibot({"msgid": "m2", "chattype": "single", "from": {"userid": "u"},
                                 "msgtype": "text", "text": {"content": "帮助"}}, received_at=NOW)
    assert single is not None and single.chat_type is ChatType.SINGLE and single.chat_id == "u"
    assert message_from_aibot({"msgid": "m3", "msgtype": "image"}, received_at=NOW) is None
    assert message_from_app({"MsgType": "image", "FromUserName": "u"}, received_at=NOW) is None
    app = message_from_app({"MsgType": "text", "FromUserName": "u", "Content": " /帮助 ",
                            "MsgId": "77"}, received_at=NOW)
    assert app is not None and app.text == "/帮助" and app.message_id == "app:77"


def test_card_round_trip_through_task_id_and_button_key():
    reply = Reply("张三 申请请假（Q12）\n活动：主题党日", title="请假申请", card_id="leave-12",
                  buttons=(Button("批准", "leave.approve", {"leave_id": "12"}),
                           Button("驳回", "leave.reject", {"leave_id": "12"})))
    card = template_card(reply, userid="li.si@corp")
    assert card["card_type"] == "button_interaction"
    assert card["main_title"]["desc"] == "张三 申请请假（Q12）"
    assert card["sub_title_text"] == "活动：主题党日"
    # Task ids are unique per recipient and use WeCom's character set only.
    assert card["task_id"] != task_id_for("leave-12", "wang.wu")
    assert all(c.isalnum() or c in "_-@" for c in card["task_id"])
    action = card_action_from_event({
        "FromUserName": "li.si@corp", "CreateTime": "1700000000", "TaskId": card["task_id"],
        "EventKey": card["button_list"][1]["key"], "ResponseCode": "rc"})
    assert action is not None
    assert (action.card_id, action.action, action.params) == (
        "leave-12", "leave.reject", {"leave_id": "12"})
    assert action.event_id == "event:li.si@corp:1700000000:rc"
    assert card_id_of(card["task_id"]) == "leave-12"
    assert card_action_from_event({"FromUserName": "u", "TaskId": "t"}) is None


def test_markdown_mentions_and_commands():
    reply = Reply("请假待审批", buttons=(Button("批准", "a", command="/批准 Q1"),))
    text = markdown_of(reply, mention="zhangsan")
    assert "> 批准：发送 /批准 Q1" in text and text.endswith("<@zhangsan>")


def test_long_markdown_is_split_at_lines_and_marked():
    text = "\n".join(f"- 第 {i} 名 党员{i} 12.5 分" for i in range(400))
    pieces = split_markdown(text, 4096)
    assert len(pieces) > 1
    assert all(len(p.encode()) <= 4096 for p in pieces)
    assert all(p.endswith(CONTINUED) for p in pieces[:-1])
    assert "".join(p.removesuffix(CONTINUED) + "\n" for p in pieces).strip() == text
    one_line = "积" * 3000  # 9000 bytes on one line: cut at characters, never mid-character
    assert "".join(p.removesuffix(CONTINUED) for p in split_markdown(one_line)) == one_line


def test_truncation_is_marked():
    assert truncate_markdown("短消息") == "短消息"
    cut = truncate_markdown("积" * 3000, 4096)
    assert len(cut.encode()) <= 4096 and cut.endswith(TRUNCATED)


def test_image_body_carries_md5_of_raw_bytes():
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    body = image_body(png)
    assert base64.b64decode(body["image"]["base64"]) == png
    assert body["image"]["md5"] == hashlib.md5(png).hexdigest()
    with pytest.raises(ValueError, match="2 MB"):
        image_body(b"\x00" * (IMAGE_MAX_BYTES + 1))
