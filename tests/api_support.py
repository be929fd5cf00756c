"""Helpers for the API tests: accounts with tokens, features and issues inserted by SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geoservice.accounts.auth import create_user, issue_token


def auth(
    session: Session,
    role: str = "planner",
    username: str | None = None,
    scopes: list[str] | None = None,
    area_code: str | None = None,
) -> dict[str, str]:
    user = create_user(session, username or f"{role}_user", role, area_code=area_code)
    return {"Authorization": f"Bearer {issue_token(session, user, scopes=scopes)}"}


def insert_place(session: Session, spec: Any, code: str, name: str, wkt: str, **attrs: Any) -> int:
    place_id = session.execute(
        text("INSERT INTO places (layer, code, name) VALUES (:l, :c, :n) RETURNING id"),
        {"l": spec.name, "c": code, "n": name},
    ).scalar_one()
    columns = ["id", "geom", *attrs]
    values = [":id", "ST_GeomFromText(:wkt, 4326)", *(f":{k}" for k in attrs)]
    session.execute(
        text(f"INSERT INTO {spec.table} ({', '.join(columns)}) VALUES ({', '.join(values)})"),
        {"id": place_id, "wkt": wkt, **attrs},
    )
    return place_id


def insert_leader(session: Session, name: str, unit: str | None = None, title: str = "") -> int:
    unit_id = None
    if unit is not None:
        unit_id = session.execute(
            text("INSERT INTO units (name) VALUES (:n) RETURNING id"), {"n": unit}
        ).scalar_one()
    return session.execute(
        text(
            "INSERT INTO leaders (name, title, unit_id, level) VALUES (:n, :t, :u, '县级')"
            " RETURNING id"
        ),
        {"n": name, "t": title, "u": unit_id},
    ).scalar_one()


def assign(
    session: Session, leader_id: int, place_id: int, role: str = "包保责任人",
    primary: bool = True, ended: bool = False,
) -> int:  # fmt: skip
    return session.execute(
        text(
            "INSERT INTO assignments (leader_id, place_id, role, is_primary, valid_from, valid_to)"
            " VALUES (:l, :p, :r, :pr, now() - interval '30 days',"
            " CASE WHEN :ended THEN now() - interval '1 day' END) RETURNING id"
        ),
        {"l": leader_id, "p": place_id, "r": role, "pr": primary, "ended": ended},
    ).scalar_one()


def insert_issue(session: Session, lon: float, lat: float, **values: Any) -> int:
    row = {
        "category": "环境卫生",
        "source": "自查",
        "status": "reported",
        **values,
    }
    columns = ["geom", *row]
    params = ["ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)", *(f":{k}" for k in row)]
    return session.execute(
        text(
            f"INSERT INTO issues ({', '.join(columns)}) VALUES ({', '.join(params)}) RETURNING id"
        ),
        {"lon": lon, "lat": lat, **row},
    ).scalar_one()
