"""Reading local dates and times as secretaries type them in a chat or on the command line."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.when import parse_local_datetime, take_local_datetime

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=TZ)  # a Friday morning


def parse(text: str, now: datetime = NOW) -> datetime:
    return parse_local_datetime(text, now_local=now)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-28 14:30", at(2026, 11, 28, 14, 30)),
    ("2026-11-28T14:30", at(2026, 11, 28, 14, 30)),
    ("2026-11-28T14:30:15", at(2026, 11, 28, 14, 30, 15)),
    ("2026/11/28 14:30", at(2026, 11, 28, 14, 30)),
    ("11-28 14:30", at(2026, 11, 28, 14, 30)),
    ("11/28 9:05", at(2026, 11, 28, 9, 5)),
    ("11月28日14:30", at(2026, 11, 28, 14, 30)),
    ("11月28日 14:30", at(2026, 11, 28, 14, 30)),
    ("11月28号 14:30", at(2026, 11, 28, 14, 30)),
    ("2026年11月28日 14:30", at(2026, 11, 28, 14, 30)),
    ("明天14:30", at(2026, 11, 21, 14, 30)),
    ("明天 14:30", at(2026, 11, 21, 14, 30)),
    ("后天 9:00", at(2026, 11, 22, 9, 0)),
    ("今天 16:00", at(2026, 11, 20, 16, 0)),
    ("昨天 16:00", at(2026, 11, 19, 16, 0)),  # for recording a meeting after the fact
    ("16:00", at(2026, 11, 20, 16, 0)),
    ("明天下午2点半", at(2026, 11, 21, 14, 30)),
    ("11月28日 上午9点", at(2026, 11, 28, 9, 0)),
    ("11月28日 晚上7点15分", at(2026, 11, 28, 19, 15)),
    ("明天中午12点", at(2026, 11, 21, 12, 0)),
    ("明天中午1点", at(2026, 11, 21, 13, 0)),
    ("  11月28日   14:30 ", at(2026, 11, 28, 14, 30)),
    # Full-width digits and colons, as Chinese input methods type them.
    ("１１月２８日　１４：３０", at(2026, 11, 28, 14, 30)),
])
def test_every_usual_way_of_writing_it(text, expected):
    parsed = parse(text)
    assert parsed == expected
    assert parsed.tzinfo is TZ


def test_a_date_without_a_year_is_the_nearest_such_day():
    december = datetime(2026, 12, 20, 9, 0, tzinfo=TZ)
    assert parse("1月5日 9:00", december) == at(2027, 1, 5, 9, 0)
    # A day just gone stays in this year (and is then refused as past), never next year.
    assert parse("12月19日 9:00", december) == at(2026, 12, 19, 9, 0)
    january = datetime(2027, 1, 2, 9, 0, tzinfo=TZ)
    assert parse("12-30 9:00", january) == at(2026, 12, 30, 9, 0)


def test_a_time_alone_can_be_on_another_day():
    start = date(2026, 11, 28)
    assert parse_local_datetime("16:30", now_local=NOW, bare_time_day=start) == at(
        2026, 11, 28, 16, 30)
    # Only a bare time: a written or relative date keeps its own meaning.
    assert parse_local_datetime("明天 16:30", now_local=NOW, bare_time_day=start) == at(
        2026, 11, 21, 16, 30)


def test_the_29th_of_february_finds_its_leap_year():
    assert parse("2月29日 9:00", datetime(2027, 12, 1, tzinfo=TZ)) == at(2028, 2, 29, 9, 0)


@pytest.mark.parametrize(("text", "words"), [
    ("", "请写上活动时间"),
    ("下周三 14:00", "看不懂时间"),
    ("三楼会议室", "看不懂时间"),
    ("14", "看不懂时间"),
    ("11月28日", "请在日期后写上开始时间"),
    ("明天", "请在日期后写上开始时间"),
    ("2月30日 9:00", "不存在"),
    ("2026-13-01 9:00", "不存在"),
    ("11-28 25:00", "无效"),
    ("11-28 14:60", "无效"),
    ("上午14点", "前后矛盾"),
])
def test_nonsense_is_refused_in_chinese(text, words):
    with pytest.raises(ValueError, match=words):
        parse(text)


def test_the_first_one_or_two_words_are_the_time_and_the_rest_is_left():
    when, rest = take_local_datetime(["11-28", "14:30", "三楼", "会议室"], now_local=NOW)
    assert when == at(2026, 11, 28, 14, 30) and rest == ["三楼", "会议室"]
    when, rest = take_local_datetime(["明天14:30", "三楼"], now_local=NOW)
    assert when == at(2026, 11, 21, 14, 30) and rest == ["三楼"]
    when, rest = take_local_datetime(["后天", "9:00"], now_local=NOW)
    assert when == at(2026, 11, 22, 9, 0) and rest == []


@pytest.mark.parametrize(("words", "message"), [
    ([], "请写上活动时间"),
    (["11月28日", "三楼"], "请在日期后写上开始时间"),  # the time was forgotten
    (["11月28日", "25:00"], "“25:00”无效"),  # the second word was meant as the time
    (["2月30日14:00", "三楼"], "“2月30日”不存在"),
    (["三楼", "明天", "14:00"], "看不懂时间“三楼”"),
])
def test_taking_the_time_explains_what_is_wrong(words, message):
    with pytest.raises(ValueError, match=message):
        take_local_datetime(words, now_local=NOW)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_what_the_bot_prints_reads_back(moment):
    moment = moment.replace(second=0, microsecond=0, tzinfo=TZ)
    assert parse(f"{moment:%Y-%m-%d %H:%M}") == moment
    assert parse(f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M}") == moment
    # Without a year, a day within five months either way is read back as itself.
    near = NOW + timedelta(days=(moment.toordinal() % 300) - 150)
    written = near.replace(hour=moment.hour, minute=moment.minute)
    assert parse(f"{written.month}月{written.day}日{written:%H:%M}") == written
