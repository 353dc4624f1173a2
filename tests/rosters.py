"""Helpers that write roster files the way organisation departments keep them."""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import Workbook

HEADER = ["姓名", "手机号", "钉钉userid", "企业微信userid", "所在支部", "党小组", "职务/角色",
          "人员类别", "入党日期", "支部类别"]
BRANCH = "测试公司党委/生产第一党支部"


def person(name: str, n: int, **overrides: str) -> list[object]:
    """One roster line for a member of BRANCH; `n` makes phone and userids unique."""
    cells = {
        "姓名": name, "手机号": f"1390000{n:04d}", "钉钉userid": f"dt{n}",
        "企业微信userid": f"wx{n}", "所在支部": BRANCH, "党小组": "", "职务/角色": "党员",
        "人员类别": "正式党员", "入党日期": "2015-07-01", "支部类别": "生产类",
    }
    cells.update(overrides)
    return [cells[h] for h in HEADER]


def write_xlsx(path: Path, rows: list[list[object]], header: list[str] = HEADER) -> Path:
    """Save header and rows as the first sheet of a workbook."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def write_csv(path: Path, rows: list[list[object]], *, encoding: str = "utf-8-sig") -> Path:
    """Save header and rows as CSV in `encoding`."""
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path
