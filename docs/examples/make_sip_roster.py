"""Writes docs/examples/sip-roster.xlsx: a small 包保 roster for the Suzhou SIP example of the
README ("set up your city"). The leaders are fictional; the grid codes are real SIP codes
(荷韵社区 and the 市镇社区 grids whose code prefix disagrees with their community).

    .venv/bin/python docs/examples/make_sip_roster.py
"""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook

HEADERS = ("姓名", "职务", "单位", "电话", "层级", "角色", "图层", "编码", "是否主要")
LEADERS = (
    ("王建华", "斜塘街道党工委书记", "斜塘街道办事处", "0512-62880001", "镇街", "联点领导"),
    ("刘芳", "荷韵社区党委书记", "荷韵社区居委会", "0512-62880002", "村社区", "网格长"),
    ("陈强", "胜浦街道党工委副书记", "胜浦街道办事处", "0512-62880003", "镇街", "联点领导"),
    ("周丽", "市镇社区党委书记", "市镇社区居委会", "0512-62880004", "村社区", "网格长"),
)
GRIDS = {
    "王建华": [f"320505006023{n:03d}" for n in (1, 2, 3)],
    "刘芳": [f"320505006023{n:03d}" for n in (1, 2, 3, 4, 5)],
    "陈强": ["320591010001001", "320591010001002"],
    "周丽": [f"32059101000100{n}" for n in (1, 2, 3, 4, 5)],
}


OUT = Path(__file__).with_name("sip-roster.xlsx")


def main(out: Path = OUT) -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "包保清单"
    ws.append(HEADERS)
    for name, title, unit, phone, level, role in LEADERS:
        for code in GRIDS[name]:
            primary = "是" if role == "网格长" else "否"
            ws.append((name, title, unit, phone, level, role, "网格", code, primary))
    wb.save(out)
    print(f"{out}: {ws.max_row - 1} 行")


if __name__ == "__main__":
    main()
