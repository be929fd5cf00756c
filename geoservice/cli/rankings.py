"""flask rankings snapshot: a closed week's, month's or quarter's per-issue ranking facts,
stored once (geoservice.ranking.snapshot)."""

from __future__ import annotations

from datetime import UTC, date, datetime
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
    help="月份（如 2026-11）或该月内的日期；只写 --month 为上个月。",
)
@click.option(
    "--quarter",
    is_flag=False,
    flag_value="",
    help="季度（如 2026-Q3）或该季度内的日期；只写 --quarter 为上个季度。",
)
@click.option("--force", is_flag=True, help="快照仍有效时也重新生成。")
@click.option(
    "--kept",
    is_flag=True,
    help="生成通知进程每小时保持的全部快照（近 8 个完整周、上个月、上个季度），有效的跳过。",
)
def snapshot(
    week: str | None, month: str | None, quarter: str | None, force: bool, kept: bool
) -> None:
    """生成已结束周、月或季度的排名快照（逐件问题的期末事实）。

    快照生成后，该周期各排名对象的排名直接由快照汇总。此后凡是写入该周期结束前上报的问题或
    结束前的事件（补录、更正、改动网格或类别等），或写入其他数据表（领导、网格、规则等），快照
    即失效，排名改按原流程计算，直到再次生成快照；周期结束后的新上报、交办、改派不影响快照。
    """
    given = {
        kind: value
        for kind, value in (("week", week), ("month", month), ("quarter", quarter))
        if value is not None
    }
    if len(given) > 1 or (kept and (given or force)):
        raise click.ClickException(
            "--week、--month、--quarter、--kept 只能选一个（--kept 不与 --force 同用）"
        )
    if kept:
        _keep_all()
        return
    kind, value = next(iter(given.items()), ("week", None))
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    try:
        period = parse_period(kind, value, None, tz, date.today())
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


def _keep_all() -> None:
    """What the notifications worker does every hour (worker.rankings_snapshot), now."""
    from geoservice.notifications.worker import WorkerSettings, rankings_snapshot

    settings = WorkerSettings(tz=ZoneInfo(current_app.config["TIMEZONE"]), registry=layers())
    session = database().session()
    try:
        try:
            done = rankings_snapshot(session, settings, datetime.now(UTC))
        except ranking.RankingError as exc:
            raise click.ClickException(exc.message) from exc
    finally:
        session.close()
    click.echo(f"排名快照：新生成 {done['built']} 个，删除过期 {done['dropped']} 个")
