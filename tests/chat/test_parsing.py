"""Tolerant command parsing."""

from __future__ import annotations

import pytest

from bot.parsing import normalise, split_command


@pytest.mark.parametrize(
    "text",
    ["/我的积分", "我的积分", " /我的积分 ", "@党员积分助手 /我的积分",
     "@小助手 @党员积分助手 我的积分", "／我的積分", "/我的积分。", "我的积分！！", "/我的积分?"],
)
def test_every_spelling_reaches_the_same_command(text):
    assert split_command(text) == ("我的积分", [])


def test_arguments_are_split_on_any_blank():
    assert split_command("/请假　3  事假 出差 在外") == ("请假", ["3", "事假", "出差", "在外"])


def test_empty_and_mention_only_text():
    assert split_command("") == ("", [])
    assert split_command("@党员积分助手") == ("", [])
    assert normalise("＠党员积分助手　／帮助") == "/帮助"


def test_control_characters_are_dropped_but_line_breaks_kept():
    assert split_command("/请假 3 事假 出\x00差\x1b") == ("请假", ["3", "事假", "出差"])
    assert normalise("/申报 志愿服务\n第一行\t第二行") == "/申报 志愿服务\n第一行\t第二行"
