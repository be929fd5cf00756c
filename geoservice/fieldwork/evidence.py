"""Evidence that holds: every photo (visit photos, issue report photos, after-photos) is
checked against what it claims, and flagged — never refused.

Flags (`FLAGS`): taken before dispatch (an after-photo), taken long before/after the claimed
time, taken far from the place or issue, the same picture seen on another issue or visit
(identical SHA-256 of the stored file, or a dHash within a few bits: re-saved, recompressed
or resized copies), and informational ones (no EXIF time/position, picked from the gallery).

Issue photos (report photos, after-photos) are written by the issue services
(geoservice/issues/photos.py `add_photos`, which lists them in the session); `install` hooks
the session's commit so they are checked, in id order, at upload, after everything the
transaction links to them (the visit or 暗访 that raised the issue, its 包保 attribution) is in
place: in a request once its answer has been sent, in a transaction of their own (the uploader
does not wait for the check); elsewhere in the transaction that stores them. The dHash comes
from the thumbnail already made, so no photo is decoded twice. Photos stored outside the
application (scripts, imports) or whose check failed are checked by `scan_pending` (run before
any evidence answer and by `flask fieldwork scan-photos`). "Seen before" always means "by an
earlier checked photo". Visit photos are checked when the visit is stored.

The display copy carries a watermark drawn by the server (time, place, coordinates); the
stored original never changes.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import event, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from geoservice.fieldwork.models import (
    FieldPhoto,
    PatrolVisit,
    PatrolVisitIssue,
    PhotoCheck,
    PhotoHash,
)
from geoservice.fieldwork.places import distance_m
from geoservice.fieldwork.settings import FieldSettings
from geoservice.issues.photos import PHOTOS_TO_CHECK, PhotoStore, PreparedPhoto
from geoservice.models import Issue, IssueEvent, Leader, Photo
from geoservice.registry import LayerRegistry

FLAGS: dict[str, str] = {
    "before_dispatch": "整改后照片拍摄于交办之前",
    "time_mismatch": "拍摄时间与所称时间相差过大",
    "far": "拍摄位置距点位/问题过远",
    "reused_exact": "与其他问题或巡查的照片完全相同",
    "reused_similar": "与其他问题或巡查的照片高度相似（疑似翻拍或另存）",
    "no_exif_time": "照片无拍摄时间",
    "no_exif_gps": "照片无拍摄位置",
    "gallery": "从相册选取（非现场拍摄）",
}
SUSPICIOUS = frozenset(
    {"before_dispatch", "time_mismatch", "far", "reused_exact", "reused_similar"}
)
log = logging.getLogger(__name__)


# --- storing field photos --------------------------------------------------------


def add_field_photos(
    session: Session,
    store: PhotoStore | None,
    photos: Sequence[PreparedPhoto],
    captures: Sequence[str | None],
    visit_id: int | None = None,
    plan_id: int | None = None,
    place_id: int | None = None,
) -> list[FieldPhoto]:
    """Rows, then files (content-addressed, like issue photos). The caller commits."""
    if not photos:
        return []
    if store is None:
        raise RuntimeError("UPLOAD_DIR is not configured")
    rows = [
        FieldPhoto(
            visit_id=visit_id,
            plan_id=plan_id,
            place_id=place_id,
            capture=c,
            **p.stored_columns(),
        )
        for p, c in zip(photos, captures, strict=True)
    ]
    session.add_all(rows)
    session.flush()
    for p in photos:
        store.save(p)
    return rows


# --- hashes --------------------------------------------------------


def dhash(image: Image.Image) -> int:
    """64-bit difference hash (signed, to fit a bigint): a 9×8 grey thumbnail, one bit per
    horizontally adjacent pair. Survives recompression, resizing and small edits."""
    small = image.convert("L").resize((9, 8), Image.Resampling.LANCZOS)
    pixels = small.tobytes()
    value = 0
    for row in range(8):
        for col in range(8):
            left, right = pixels[row * 9 + col], pixels[row * 9 + col + 1]
            value = (value << 1) | (1 if left > right else 0)
    return value - (1 << 64) if value >= 1 << 63 else value


BAND_BITS = 16  # 4 bands of 16 bits (see PhotoCheck.dhash_bands)


def dhash_bands(value: int) -> list[int]:
    """The hash's four 16-bit quarters as position × 65536 + quarter (what a check stores)."""
    unsigned = value & ((1 << 64) - 1)
    return [i * 65536 + ((unsigned >> (BAND_BITS * i)) & 0xFFFF) for i in range(4)]


def dhash_probes(value: int) -> list[int]:
    """The bands a hash within 7 bits must share at least one of: each quarter as it is and
    with any one bit flipped (4 × 17 keys). Two hashes within 7 bits differ by at most 1 bit
    in some quarter (4 quarters × 2 bits would be 8), so the index finds every candidate, and
    each key matches about 1/65536 of the checks (1/256 with byte bands: 50× slower at 1M)."""
    out = []
    for band in dhash_bands(value):
        quarter = band & 0xFFFF
        base = band - quarter
        out.append(band)
        out.extend(base + (quarter ^ (1 << bit)) for bit in range(BAND_BITS))
    return out


def dhash_of_file(path: Path) -> int | None:
    try:
        with Image.open(path) as image:
            image.draft("RGB", (64, 64))
            return dhash(image)
    except (OSError, ValueError):
        return None


def dhash_of_bytes(data: bytes) -> int | None:
    """The dHash of an encoded image (a thumbnail: decoded at a reduced size)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (64, 64))
            return dhash(image)
    except (OSError, ValueError):
        return None


def _stored_dhash(store: PhotoStore | None, sha256: str, content_type: str) -> int | None:
    if store is None:
        return None
    thumb = store.thumb_path(sha256)
    return dhash_of_file(thumb if thumb.exists() else store.path(sha256, content_type))


# --- checks --------------------------------------------------------


def _far(
    session: Session, lon: float | None, lat: float | None, target_sql: str, params: dict
) -> float | None:
    if lon is None or lat is None:
        return None
    return session.execute(
        text(
            f"SELECT ST_Distance(({target_sql})::geography,"
            " ST_SetSRID(ST_MakePoint(:plon, :plat), 4326)::geography)"
        ),
        {**params, "plon": lon, "plat": lat},
    ).scalar_one_or_none()


NEAR_FILES_READ = 500


def _reuse(
    session: Session,
    settings: FieldSettings,
    sha256: str,
    value: int | None,
    exclude_subjects: Sequence[str],
) -> dict[str, Any]:
    """Earlier checked photos of other subjects with the same file or a near dHash."""
    found: dict[str, Any] = {}
    same = session.execute(
        text(
            "SELECT id, subject FROM photo_checks WHERE sha256 = :sha"
            " AND NOT (subject = ANY(:excl)) ORDER BY id LIMIT 5"
        ),
        {"sha": sha256, "excl": list(exclude_subjects)},
    ).all()
    if same:
        found["reused_exact"] = [_named(r.subject) for r in same]
    if value is not None:
        # Candidate files share a probed band (every hash within 7 bits does); each near file
        # is named by its first check of another subject. At most NEAR_FILES_READ near files
        # are ranked: featureless pictures (dark, blank) hash alike in any number.
        similar = session.execute(
            text(
                "SELECT c.id, c.subject, h.d FROM (SELECT sha256, d FROM (SELECT sha256,"
                " length(replace(((dhash # :h)::bit(64))::text, '0', '')) AS d"
                " FROM photo_hashes WHERE dhash_bands && CAST(:bands AS integer[])"
                " AND sha256 <> :sha) f WHERE d <= :maxd LIMIT :files) h"
                " CROSS JOIN LATERAL (SELECT id, subject FROM photo_checks"
                " WHERE sha256 = h.sha256 AND NOT (subject = ANY(:excl)) ORDER BY id LIMIT 1) c"
                " ORDER BY h.d, c.id LIMIT 5"
            ),
            {
                "h": value,
                "bands": dhash_probes(value),
                "sha": sha256,
                "excl": list(exclude_subjects),
                "maxd": settings.dhash_max_distance,
                "files": NEAR_FILES_READ,
            },
        ).all()
        if similar:
            found["reused_similar"] = [f"{_named(r.subject)}（差 {r.d} 位）" for r in similar]
    return found


def _named(subject: str) -> str:
    """Another photo as a check names it. A 暗访's (`plan:<id>:<place>`) is named without its
    plan and place: the check is shown to the person photographed and their unit, and a
    plan is secret from them until done (docs/field.md, 保密)."""
    return "暗访照片" if subject.startswith("plan:") else subject


def _time_flag(
    taken: datetime | None, claimed: datetime | None, settings: FieldSettings
) -> dict[str, Any]:
    if taken is None or claimed is None:
        return {}
    hours = abs((claimed - taken).total_seconds()) / 3600
    if hours > settings.photo_time_tolerance_h:
        return {"time_mismatch": {"taken_at": taken.isoformat(), "claimed": claimed.isoformat()}}
    return {}


def _store_check(
    session: Session,
    *,
    photo_id: int | None = None,
    field_photo_id: int | None = None,
    subject: str,
    sha256: str,
    value: int | None,
    found: dict[str, Any],
    unit_id: int | None,
    leader_id: int | None,
) -> PhotoCheck:
    flags = [f for f in FLAGS if f in found]
    check = PhotoCheck(
        photo_id=photo_id,
        field_photo_id=field_photo_id,
        subject=subject,
        sha256=sha256,
        dhash=value,
        dhash_bands=dhash_bands(value) if value is not None else None,
        flags=flags,
        details={k: v for k, v in found.items() if v is not True},
        suspicious=bool(SUSPICIOUS & set(flags)),
        unit_id=unit_id,
        leader_id=leader_id,
    )
    session.add(check)
    if value is not None:
        session.execute(
            pg_insert(PhotoHash)
            .values(sha256=sha256, dhash=value, dhash_bands=dhash_bands(value))
            .on_conflict_do_nothing()
        )
    session.flush()
    return check


def _leader_unit(session: Session, leader_id: int | None) -> int | None:
    if leader_id is None:
        return None
    leader = session.get(Leader, leader_id)
    return leader.unit_id if leader else None


def check_field_photo(
    session: Session,
    registry: LayerRegistry,
    settings: FieldSettings,
    store: PhotoStore | None,
    photo: FieldPhoto,
) -> PhotoCheck:
    """Checks a visit's (or a 暗访 result's) photo against the visit's time and place."""
    found: dict[str, Any] = {}
    exclude: list[str] = []
    claimed = None
    leader_id = None
    if photo.visit_id is not None:
        visit = session.get(PatrolVisit, photo.visit_id)
        subject = f"visit:{photo.visit_id}"
        claimed, leader_id = visit.visited_at, visit.leader_id
        issue_ids = session.scalars(
            select(PatrolVisitIssue.issue_id).where(PatrolVisitIssue.visit_id == visit.id)
        ).all()
        exclude = [subject, *(f"issue:{i}:before" for i in issue_ids)]
    else:
        subject = f"plan:{photo.plan_id}:{photo.place_id}"
        exclude = [subject]
        claimed = photo.created_at
    if photo.taken_at is None:
        found["no_exif_time"] = True
    found |= _time_flag(photo.taken_at, claimed, settings)
    if photo.exif_lon is None:
        found["no_exif_gps"] = True
    elif photo.place_id is not None:
        d = distance_m(session, registry, photo.place_id, photo.exif_lon, photo.exif_lat)
        if d is not None and d > settings.photo_distance_m:
            found["far"] = {"distance_m": round(d, 1)}
    if photo.capture == "gallery":
        found["gallery"] = True
    value = _stored_dhash(store, photo.sha256, photo.content_type)
    found |= _reuse(session, settings, photo.sha256, value, exclude)
    return _store_check(
        session,
        field_photo_id=photo.id,
        subject=subject,
        sha256=photo.sha256,
        value=value,
        found=found,
        unit_id=_leader_unit(session, leader_id),
        leader_id=leader_id,
    )


def check_issue_photo(
    session: Session,
    settings: FieldSettings,
    store: PhotoStore | None,
    photo: Photo,
    thumb: bytes | None = None,
) -> PhotoCheck:
    """Checks an issue photo: a report photo against the report time and the issue point, an
    after-photo against the dispatch (交办) and its own event time. `thumb`: the thumbnail in
    hand (at upload), else the stored one is read."""
    issue = session.get(Issue, photo.issue_id)
    subject = f"issue:{issue.id}:{photo.kind}"
    exclude = [subject]
    if photo.kind == "before":
        visits = session.scalars(
            select(PatrolVisitIssue.visit_id).where(PatrolVisitIssue.issue_id == issue.id)
        ).all()
        exclude += [f"visit:{v}" for v in visits]
        plans = session.execute(
            text("SELECT plan_id, place_id FROM inspection_places WHERE issue_id = :i"),
            {"i": issue.id},
        ).all()
        exclude += [f"plan:{r.plan_id}:{r.place_id}" for r in plans]
    found: dict[str, Any] = {}
    claimed = issue.reported_at  # a report photo: when the issue was seen
    if photo.kind == "after" and photo.event_id is not None:  # an after-photo: its event
        event = session.get(IssueEvent, photo.event_id)
        if event is not None:
            claimed = event.at
    if photo.taken_at is None:
        found["no_exif_time"] = True
    else:
        if photo.kind == "after":
            dispatched = session.scalar(
                select(IssueEvent.at)
                .where(IssueEvent.issue_id == issue.id, IssueEvent.to_status == "dispatched")
                .order_by(IssueEvent.at)
                .limit(1)
            )
            line = dispatched or issue.reported_at
            if photo.taken_at < line:
                found["before_dispatch"] = {
                    "taken_at": photo.taken_at.isoformat(),
                    "dispatched_at": line.isoformat(),
                }
        found |= _time_flag(photo.taken_at, claimed, settings)
    if photo.exif_lon is None:
        found["no_exif_gps"] = True
    else:
        d = _far(
            session,
            photo.exif_lon,
            photo.exif_lat,
            "SELECT geom FROM issues WHERE id = :iid",
            {"iid": issue.id},
        )
        if d is not None and d > settings.photo_distance_m:
            found["far"] = {"distance_m": round(d, 1)}
    if thumb is not None:
        value = dhash_of_bytes(thumb)
    else:
        value = _stored_dhash(store, photo.sha256, photo.content_type)
    found |= _reuse(session, settings, photo.sha256, value, exclude)
    return _store_check(
        session,
        photo_id=photo.id,
        subject=subject,
        sha256=photo.sha256,
        value=value,
        found=found,
        unit_id=issue.unit_id,
        leader_id=issue.leader_id,
    )


def check_new_photos(session: Session, settings: FieldSettings) -> int:
    """Checks the issue photos added in this transaction (listed by add_photos), in id order,
    inside a savepoint: a check that fails leaves the photo to `scan_pending` and never the
    upload failing. Returns how many were checked."""
    pending = session.info.pop(PHOTOS_TO_CHECK, None)
    if not pending:
        return 0
    done = 0
    try:
        with session.begin_nested():
            for photo_id, thumb in sorted(pending, key=lambda p: p[0]):
                photo = session.get(Photo, photo_id)
                if photo is None or session.scalar(
                    select(PhotoCheck.id).where(PhotoCheck.photo_id == photo_id)
                ):
                    continue
                check_issue_photo(session, settings, None, photo, thumb=thumb)
                done += 1
    except Exception:
        log.exception("photo evidence check failed; left to scan_pending")
        return 0
    return done


# Photos of a committed request transaction, checked once its answer is sent (see
# `_before_commit`): the request's list, in `flask.g`.
_AFTER_ANSWER = "evidence_after_answer"
_COMMITTED = "issue_photos_committed"


def _before_commit(session: Session) -> None:
    """Issue photos added in this transaction are checked before it commits — except in a
    request (an upload through the API or a form), where they are checked once the answer has
    been sent, in a transaction of their own (`_check_after_answer`): the uploader does not
    wait for the ~8 statements of the check (config FIELD_EVIDENCE_AFTER_ANSWER, default on). A
    check that does not happen (the worker stopped, the check failed) leaves the photo to
    `scan_pending`, which runs before any evidence answer."""
    if not session.info.get(PHOTOS_TO_CHECK):
        return
    from flask import current_app, has_app_context, has_request_context

    if not has_app_context():  # outside the application: left to scan_pending
        session.info.pop(PHOTOS_TO_CHECK, None)
        return
    if has_request_context() and current_app.config.get("FIELD_EVIDENCE_AFTER_ANSWER", True):
        session.info[_COMMITTED] = session.info.pop(PHOTOS_TO_CHECK)
        return
    check_new_photos(session, FieldSettings.from_config(current_app.config))


def _after_commit(session: Session) -> None:
    pending = session.info.pop(_COMMITTED, None)
    if not pending:
        return
    from flask import after_this_request, current_app, g

    queued = g.get(_AFTER_ANSWER)
    if queued is None:
        queued = []
        setattr(g, _AFTER_ANSWER, queued)
        app = current_app._get_current_object()  # type: ignore[attr-defined]

        def when_answered(response: Any) -> Any:
            response.call_on_close(lambda: _check_after_answer(app, queued))
            return response

        try:
            after_this_request(when_answered)
        except (AssertionError, RuntimeError):  # the response is already made: scan_pending
            return
    queued.extend(pending)


def _check_after_answer(app: Any, pending: list[tuple[int, bytes | None]]) -> None:
    """Checks the photos of a request's committed transactions, in id order, in a transaction
    of its own (the same check as at commit: `check_new_photos`)."""
    if not pending:
        return
    from geoservice.db import database

    with app.app_context():
        session = database().session()
        try:
            session.info[PHOTOS_TO_CHECK] = list(pending)
            session.commit()  # _before_commit checks them (no request here)
        except Exception:
            log.exception("photo evidence check after the answer failed; left to scan_pending")
            session.rollback()
        finally:
            session.close()


def _after_rollback(session: Session, _previous: Any = None) -> None:
    session.info.pop(PHOTOS_TO_CHECK, None)
    session.info.pop(_COMMITTED, None)


def install() -> None:
    """Checks issue photos at upload: hooks every session's commit (once per process)."""
    if not event.contains(Session, "before_commit", _before_commit):
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_soft_rollback", _after_rollback)


def scan_pending(
    session: Session,
    registry: LayerRegistry,
    settings: FieldSettings,
    store: PhotoStore | None,
    limit: int = 500,
) -> int:
    """Checks photos (issue and field) that have no check yet, oldest first. Returns how many."""
    issue_photos = session.scalars(
        select(Photo)
        .where(~select(PhotoCheck.id).where(PhotoCheck.photo_id == Photo.id).exists())
        .order_by(Photo.id)
        .limit(limit)
    ).all()
    done = 0
    for photo in issue_photos:
        done += _once(session, lambda p=photo: check_issue_photo(session, settings, store, p))
    field = session.scalars(
        select(FieldPhoto)
        .where(~select(PhotoCheck.id).where(PhotoCheck.field_photo_id == FieldPhoto.id).exists())
        .order_by(FieldPhoto.id)
        .limit(limit)
    ).all()
    for photo in field:
        done += _once(
            session, lambda p=photo: check_field_photo(session, registry, settings, store, p)
        )
    return done


def _once(session: Session, check: Any) -> bool:
    """Runs one photo's check in a savepoint: a photo checked meanwhile by another transaction
    (an upload's check after its answer, another reader's scan) makes the check's insert
    conflict on the photo's unique check — it is skipped, not an error. False then."""
    try:
        with session.begin_nested():
            check()
    except IntegrityError:
        return False
    return True


# --- answers --------------------------------------------------------


def check_json(check: PhotoCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "flags": check.flags,
        "flag_titles": [FLAGS[f] for f in check.flags],
        "suspicious": check.suspicious,
        "details": check.details,
        "checked_at": check.checked_at.isoformat() if check.checked_at else None,
    }


def field_photo_json(session: Session, photo: FieldPhoto, photo_url=None) -> dict[str, Any]:
    check = session.scalar(select(PhotoCheck).where(PhotoCheck.field_photo_id == photo.id))
    out = {
        "id": photo.id,
        "sha256": photo.sha256,
        "taken_at": photo.taken_at.isoformat() if photo.taken_at else None,
        "capture": photo.capture,
        "check": check_json(check),
    }
    if photo_url is not None:
        out |= {
            "url": photo_url(photo.id, "display"),
            "thumb_url": photo_url(photo.id, "thumb"),
            "original_url": photo_url(photo.id, "original"),
        }
    return out


def suspicious_rows(
    session: Session,
    within: tuple[str, dict[str, Any]] | None = None,
    limit: int = 200,
    offset: int = 0,
) -> tuple[int, list[dict[str, Any]]]:
    """The 存疑 list, newest first: each flagged photo with what it is evidence for.
    `within`: an SQL condition on `photo_checks c` (the account's scope)."""
    where = "c.suspicious"
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if within:
        where += f" AND {within[0]}"
        params.update(within[1])
    total = session.execute(
        text(f"SELECT count(*) FROM photo_checks c WHERE {where}"), params
    ).scalar_one()
    rows = session.execute(
        text(f"""
SELECT c.id, c.photo_id, c.field_photo_id, c.subject, c.flags, c.details, c.checked_at,
       c.unit_id, u.name AS unit, c.leader_id, l.name AS leader,
       coalesce(p.taken_at, f.taken_at) AS taken_at, p.issue_id, p.kind, f.visit_id, f.plan_id
FROM photo_checks c
LEFT JOIN units u ON u.id = c.unit_id
LEFT JOIN leaders l ON l.id = c.leader_id
LEFT JOIN photos p ON p.id = c.photo_id
LEFT JOIN field_photos f ON f.id = c.field_photo_id
WHERE {where}
ORDER BY c.id DESC LIMIT :limit OFFSET :offset"""),
        params,
    ).mappings()
    out = []
    for r in rows:
        out.append(
            {
                **{k: r[k] for k in ("id", "photo_id", "field_photo_id", "subject", "flags")},
                "flag_titles": [FLAGS[f] for f in r["flags"]],
                "details": r["details"],
                "checked_at": r["checked_at"].isoformat(),
                "taken_at": r["taken_at"].isoformat() if r["taken_at"] else None,
                "unit_id": r["unit_id"],
                "unit": r["unit"],
                "leader_id": r["leader_id"],
                "leader": r["leader"],
                "issue_id": r["issue_id"],
                "kind": r["kind"],
                "visit_id": r["visit_id"],
                "plan_id": r["plan_id"],
            }
        )
    return total, out


def counts_per_unit(
    session: Session, within: tuple[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    where, params = (f"WHERE {within[0]}", within[1]) if within else ("", {})
    rows = session.execute(
        text(f"""
SELECT c.unit_id, coalesce(u.name, '（未归属）') AS unit, count(*) AS checked,
       count(*) FILTER (WHERE c.suspicious) AS suspicious,
       count(*) FILTER (WHERE c.flags ? 'reused_exact' OR c.flags ? 'reused_similar') AS reused,
       count(*) FILTER (WHERE c.flags ? 'before_dispatch') AS before_dispatch,
       count(*) FILTER (WHERE c.flags ? 'far') AS far
FROM photo_checks c LEFT JOIN units u ON u.id = c.unit_id {where}
GROUP BY c.unit_id, u.name ORDER BY suspicious DESC, unit"""),
        params,
    ).mappings()
    return [dict(r) for r in rows]


# --- the watermarked display copy --------------------------------------------------------

_CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
_LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def _font(path: str | None, size: int) -> tuple[Any, bool]:
    """(font, draws Chinese)."""
    for candidate in (path, *_CJK_FONTS):
        if candidate and Path(candidate).exists():
            try:
                return ImageFont.truetype(candidate, size), True
            except OSError:
                continue
    if Path(_LATIN_FONT).exists():
        return ImageFont.truetype(_LATIN_FONT, size), False
    return ImageFont.load_default(), False


def watermark_lines(
    at: datetime | None, place_name: str, place_code: str, lon: float | None, lat: float | None
) -> list[str]:
    lines = [at.strftime("%Y-%m-%d %H:%M:%S %z") if at else "time unknown"]
    lines.append(place_name or place_code)
    if lon is not None and lat is not None:
        lines.append(f"{lon:.6f}E {lat:.6f}N" if lon >= 0 else f"{-lon:.6f}W {lat:.6f}N")
    return lines


def watermarked(data: bytes, lines: Sequence[str], font_path: str | None = None) -> bytes:
    """A JPEG copy with the lines drawn in a dark band along the bottom edge."""
    with Image.open(io.BytesIO(data)) as source:
        source.draft("RGB", (1600, 1600))
        image = source.convert("RGB")
    image.thumbnail((1600, 1600))
    width, height = image.size
    size = max(12, width // 40)
    font, cjk = _font(font_path, size)
    shown = [line if cjk or line.isascii() else _ascii(line) for line in lines]
    band = (size + 6) * len(shown) + 10
    draw = ImageDraw.Draw(image, "RGBA")
    draw.rectangle((0, height - band, width, height), fill=(0, 0, 0, 150))
    y = height - band + 5
    for line in shown:
        draw.text((10, y), line, font=font, fill=(255, 255, 255, 255))
        y += size + 6
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _ascii(line: str) -> str:
    kept = "".join(c for c in line if c.isascii()).strip()
    return kept or "-"


def display_copy(
    store: PhotoStore, sha256: str, content_type: str, lines: Sequence[str], font: str | None
) -> Path:
    """The watermarked copy on disk (made once per photo and text)."""
    key = hashlib.sha256(("\n".join(lines) + sha256).encode()).hexdigest()[:32]
    path = store.root / "display" / key[:2] / f"{key}.jpg"
    if not path.exists():
        data = store.path(sha256, content_type).read_bytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(watermarked(data, lines, font))
        tmp.replace(path)
    return path
