"""Builders for issue tests: accounts with tokens, photos of every kind, a constructed layout."""

from __future__ import annotations

import base64
import io
import uuid
from datetime import datetime

from geoalchemy2.shape import from_shape
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geoservice.accounts.auth import create_user, issue_token
from geoservice.models import AdminArea, Issue, IssueEvent, Leader, Photo, User
from tests.factories import metres, rect

# An integration token does only what its scopes list (a 12345 hotline bridge grades its
# tickets: issues.set_report_meta).
INTEGRATION_SCOPES = ["issues.report", "issues.read", "issues.set_report_meta"]


def account(
    session: Session,
    role: str,
    leader: Leader | None = None,
    area_code: str | None = None,
    scopes: list[str] | None = None,
) -> tuple[User, dict[str, str]]:
    user = create_user(
        session,
        f"{role}-{uuid.uuid4().hex[:8]}",
        role,
        area_code=area_code,
        leader_id=leader.id if leader else None,
        display_name=f"测试{role}",
    )
    if scopes is None and role == "integration":
        scopes = INTEGRATION_SCOPES
    token = issue_token(session, user, scopes=scopes)
    return user, {"Authorization": f"Bearer {token}"}


def add_area(session: Session, code: str, geom, level: str = "county") -> AdminArea:
    area = AdminArea(level=level, code=code, name="测试县", geom=from_shape(geom, srid=4326))
    session.add(area)
    session.flush()
    return area


def _rational(value: float) -> tuple[int, int]:
    return round(value * 1_000_000), 1_000_000


def image_bytes(
    fmt: str = "JPEG",
    size: tuple[int, int] = (64, 48),
    color: tuple[int, int, int] = (200, 30, 30),
    gps: tuple[float, float] | None = None,
    taken: str | None = None,
    orientation: int | None = None,
) -> bytes:
    """An image in `fmt` (JPEG, PNG, HEIF, GIF, WEBP), optionally with EXIF GPS (lon, lat) and
    DateTimeOriginal ("YYYY:MM:DD HH:MM:SS")."""
    image = Image.new("RGB", size, color)
    exif = Image.Exif()
    if gps is not None:
        lon, lat = gps
        gps_ifd = exif.get_ifd(0x8825)

        def dms(value: float):
            degrees = int(value)
            minutes_full = (value - degrees) * 60
            minutes = int(minutes_full)
            seconds = (minutes_full - minutes) * 60
            return (degrees, minutes, seconds)

        gps_ifd[1] = "N" if lat >= 0 else "S"
        gps_ifd[2] = dms(abs(lat))
        gps_ifd[3] = "E" if lon >= 0 else "W"
        gps_ifd[4] = dms(abs(lon))
    if taken is not None:
        exif.get_ifd(0x8769)[36867] = taken
    if orientation is not None:
        exif[274] = orientation
    buffer = io.BytesIO()
    kwargs = {"exif": exif.tobytes()} if (gps or taken or orientation) else {}
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def counts(session: Session) -> tuple[int, int, int]:
    return tuple(
        session.scalar(select(func.count()).select_from(model))
        for model in (Issue, IssueEvent, Photo)
    )


def files_in(path) -> list[str]:
    return sorted(str(p) for p in path.rglob("*") if p.is_file()) if path.exists() else []


def at(x: float, y: float) -> dict[str, float]:
    lon, lat = metres(x, y)
    return {"lon": lon, "lat": lat}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


__all__ = ["account", "add_area", "at", "b64", "counts", "files_in", "image_bytes", "rect", "when"]
