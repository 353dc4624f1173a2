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
