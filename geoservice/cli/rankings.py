"""flask rankings snapshot: a closed week's or month's per-issue ranking facts, stored once
(geoservice.ranking.snapshot)."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from geoservice.db import database
from geoservice.ranking import ranking
from geoservice.ranking.periods import PeriodError, parse_period
from geoservice.registry import layers


def init_app(app: Flask) -> None:
    app.cli.add_command(rankings)


rankings = AppGroup("rankings", help="督查考核排名的维护命令。")


@rankings.command("snapshot")
@click.option("--week", help="ISO 周（如 2026-W47）或该周内的日期；默认上一个完整周。")
@click.option(
    "--month",
    is_flag=False,
    flag_value="",
    help="月份（如 2026-11）或该月内的日期；只写 --month 为上个月。给出时生成月快照。",
)
@click.option("--force", is_flag=True, help="快照仍有效时也重新生成。")
def snapshot(week: str | None, month: str | None, force: bool) -> None:
    """生成已结束周或月的排名快照（逐件问题的期末事实）。

    快照生成后，该周（月）各排名对象的排名直接由快照汇总。此后凡是写入该周期结束前上报的问题
    或结束前的事件（补录、更正、改动网格或类别等），或写入其他数据表（领导、网格、规则等），
    快照即失效，排名改按原流程计算，直到再次生成快照；周期结束后的新上报不影响快照。
    """
    if week and month is not None:
        raise click.ClickException("--week 与 --month 只能选一个")
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    try:
        if month is not None:
            period = parse_period("month", month, None, tz, date.today())
        else:
            period = parse_period("week", week, None, tz, date.today())
    except PeriodError as exc:
        raise click.ClickException(exc.message) from exc
    session = database().session()
    try:
        try:
            done = ranking.ensure_snapshot(session, layers(), period, force=force)
        except ranking.RankingError as exc:
            raise click.ClickException(exc.message) from exc
        session.commit()
    finally:
        session.close()
    if done["built"]:
        click.echo(
            f"已生成{period.title}排名快照：{done['rows']:,} 行，用时 {done['seconds']:.1f} 秒"
        )
    else:
        click.echo(f"{period.title}排名快照仍有效（{done['rows']:,} 行），未重新生成")
