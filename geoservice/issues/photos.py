"""Issue photos: sniffed with Pillow (never trusting the declared type), normalised, stored on
disk by content hash with a thumbnail.

Accepted: JPEG, PNG and HEIC/HEIF (iPhones), the last converted to JPEG. Stored files carry no
metadata (a photo can carry the reporter's home location): an upright JPEG keeps its pixels
and loses its EXIF/XMP/IPTC segments losslessly; anything else (PNG, HEIC, a rotated JPEG) is
re-encoded with the EXIF orientation applied. The EXIF location and time are kept as columns of
the photo row, and the original file's hash, name and type in its `exif` JSON.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener
from sqlalchemy import event
from sqlalchemy.orm import Session

from geoservice.models import Photo
from geoservice.service_errors import InvalidInput, TooLarge, UnsupportedMedia

register_heif_opener()

# Pillow format → the content type we store (HEIF is converted to JPEG).
ACCEPTED = {"JPEG": "image/jpeg", "PNG": "image/png", "HEIF": "image/jpeg"}
FORMAT_TITLES = {"JPEG": "JPEG", "PNG": "PNG", "HEIF": "HEIC"}
_DECLARED_TYPES = {
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/pjpeg": "JPEG",
    "image/png": "PNG",
    "image/heic": "HEIF",
    "image/heif": "HEIF",
    "image/heic-sequence": "HEIF",
    "image/heif-sequence": "HEIF",
}
_EXTENSIONS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".png": "PNG",
    ".heic": "HEIF",
    ".heif": "HEIF",
}
_EXTENSION_OF = {"image/jpeg": ".jpg", "image/png": ".png"}

_GPS_IFD = 0x8825
_EXIF_IFD = 0x8769
_TAG_MAKE, _TAG_MODEL, _TAG_ORIENTATION, _TAG_DATETIME = 271, 272, 274, 306
_TAG_DATETIME_ORIGINAL, _TAG_OFFSET_ORIGINAL = 36867, 36881


@dataclass(frozen=True)
class PhotoLimits:
    max_bytes: int = 10 * 1024 * 1024
    max_count: int = 9
    max_pixels: int = 50_000_000
    thumb_px: int = 320
    jpeg_quality: int = 88


@dataclass
class PreparedPhoto:
    """A validated photo, ready to be stored (nothing is written yet)."""

    data: bytes
    sha256: str
    content_type: str
    width: int
    height: int
    thumb: bytes
    taken_at: datetime | None = None
    exif_lon: float | None = None
    exif_lat: float | None = None
    exif: dict[str, Any] = field(default_factory=dict)
    # The decoded pixels at thumbnail size (upright; mode as decoded), not stored: a step that
    # needs pixels (an evidence hash) takes them from here instead of decoding the file again.
    pixels: Image.Image | None = field(default=None, repr=False, compare=False)

    @property
    def extension(self) -> str:
        return _EXTENSION_OF[self.content_type]

    def stored_columns(self) -> dict[str, Any]:
        """The columns every photo row keeps of it (issue photos and field photos alike)."""
        return {
            "sha256": self.sha256,
            "content_type": self.content_type,
            "size_bytes": len(self.data),
            "width": self.width,
            "height": self.height,
            "taken_at": self.taken_at,
            "exif_lon": self.exif_lon,
            "exif_lat": self.exif_lat,
            "exif": self.exif,
        }


@dataclass(frozen=True)
class Upload:
    """One uploaded file as received: bytes, the client's file name and declared type."""

    data: bytes
    filename: str = ""
    content_type: str | None = None


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def _claimed_format(upload: Upload) -> str | None:
    """The format the client claims (declared type, else file extension), None if no claim."""
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    if declared in _DECLARED_TYPES:
        return _DECLARED_TYPES[declared]
    if declared.startswith("image/") and declared != "image/*":
        return declared  # an image type we do not take, e.g. image/gif
    return _EXTENSIONS.get(Path(upload.filename or "").suffix.lower())


def _sniff(upload: Upload, name: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(upload.data))
    except UnidentifiedImageError:
        raise UnsupportedMedia(
            f"文件「{name}」不是图片（只接受 JPEG、PNG 或 HEIC 照片）", field="photos"
        ) from None
    except Image.DecompressionBombError:
        raise TooLarge(f"照片「{name}」像素过多", field="photos") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedMedia(f"照片「{name}」已损坏，无法读取", str(exc), "photos") from None
    if image.format not in ACCEPTED:
        raise UnsupportedMedia(
            f"照片「{name}」是 {image.format} 格式，只接受 JPEG、PNG 或 HEIC",
            {"format": image.format},
            "photos",
        )
    return image


def _rational(value: Any) -> float:
    return float(value)


def _dms(values: Any, ref: Any, negative: str) -> float | None:
    try:
        d, m, s = (_rational(v) for v in values)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    degrees = d + m / 60 + s / 3600
    if isinstance(ref, bytes):
        ref = ref.decode(errors="ignore")
    return -degrees if str(ref).strip().upper() == negative else degrees


def _exif_time(value: Any, offset: Any, tz: ZoneInfo) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        naive = datetime.strptime(value.strip().rstrip("\x00"), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if isinstance(offset, str):
        try:
            sign = -1 if offset.startswith("-") else 1
            hours, minutes = offset.strip("+-").split(":")
            delta = timedelta(hours=int(hours), minutes=int(minutes))
            return naive.replace(tzinfo=timezone(sign * delta))
        except ValueError:
            pass
    return naive.replace(tzinfo=tz)


def _metadata(image: Image.Image, tz: ZoneInfo) -> dict[str, Any]:
    """EXIF camera, time and GPS position (WGS-84 as phones write it), when present."""
    exif = image.getexif()
    out: dict[str, Any] = {}
    for tag, key in ((_TAG_MAKE, "make"), (_TAG_MODEL, "model")):
        if isinstance(exif.get(tag), str):
            out[key] = exif[tag].strip("\x00 ")[:100]
    if exif.get(_TAG_ORIENTATION):
        out["orientation"] = int(exif[_TAG_ORIENTATION])
    details = exif.get_ifd(_EXIF_IFD)
    original = details.get(_TAG_DATETIME_ORIGINAL) or exif.get(_TAG_DATETIME)
    taken = _exif_time(original, details.get(_TAG_OFFSET_ORIGINAL), tz)
    if taken is not None:
        out["taken_at"] = taken
        out["datetime_original"] = str(original).strip("\x00")
    gps = exif.get_ifd(_GPS_IFD)
    gps_tags = ExifTags.GPS
    if gps.get(gps_tags.GPSLatitude) and gps.get(gps_tags.GPSLongitude):
        lat = _dms(gps[gps_tags.GPSLatitude], gps.get(gps_tags.GPSLatitudeRef, "N"), "S")
        lon = _dms(gps[gps_tags.GPSLongitude], gps.get(gps_tags.GPSLongitudeRef, "E"), "W")
        if lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180:
            out["lat"], out["lon"] = lat, lon
    return out


# JPEG segments dropped from stored files: APP1 (EXIF, XMP), APP13 (IPTC), COM (comments),
# and APP2 when it is an MPF index (it points at images appended after the end marker).
_JPEG_DROPPED = {0xE1, 0xED, 0xFE}
_RST = range(0xD0, 0xD8)


def _dropped(marker: int, payload: bytes) -> bool:
    return marker in _JPEG_DROPPED or (marker == 0xE2 and payload.startswith(b"MPF\x00"))


def strip_jpeg_metadata(data: bytes) -> bytes | None:
    """The JPEG without its metadata segments (pixels untouched) and cut at its end marker
    (EOI): whatever follows — a motion photo's video, a second image with its own EXIF/GPS —
    is not kept. None if the file's structure is not the sequence of segments and scans this
    expects (the caller then re-encodes the pixels)."""
    if data[:2] != b"\xff\xd8":
        return None
    out = bytearray(data[:2])
    i, n = 2, len(data)
    while i + 2 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:  # end of image: nothing after it is kept
            out += b"\xff\xd9"
            return bytes(out)
        if i + 4 > n:
            return None
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if length < 2 or i + 2 + length > n:
            return None
        if not _dropped(marker, data[i + 4 : i + 2 + length]):
            out += data[i : i + 2 + length]
        i += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            start = i
            while True:
                i = data.find(b"\xff", i)
                if i < 0 or i + 1 >= n:
                    return None  # no end marker
                following = data[i + 1]
                if following == 0x00 or following in _RST:
                    i += 2
                    continue
                break
            out += data[start:i]
    return None


def _encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    if fmt == "PNG":
        image.save(buffer, format="PNG")
    else:
        if image.mode not in ("RGB", "L"):
            image = _flatten(image)
        image.save(buffer, format="JPEG", quality=quality, optimize=False)
    return buffer.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """RGB on a white background (JPEG has no alpha)."""
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def prepare(
    upload: Upload, limits: PhotoLimits, tz: ZoneInfo, name: str | None = None
) -> PreparedPhoto:
    """Validates and normalises one upload; raises a 413/415/422 ServiceError on bad input."""
    name = name or upload.filename or "未命名"
    size = len(upload.data)
    if size == 0:
        raise InvalidInput(f"照片「{name}」是空文件", field="photos")
    if size > limits.max_bytes:
        # (Uploads are read only up to the limit and a byte: `size` may be that, not the file's.)
        raise TooLarge(
            f"照片「{name}」超过大小上限 {_mb(limits.max_bytes)}，请压缩或换一张后重新上传",
            {"size_bytes": size, "max_bytes": limits.max_bytes},
            "photos",
        )
    image = _sniff(upload, name)
    actual = image.format
    claimed = _claimed_format(upload)
    if claimed is not None and claimed != actual:
        claimed_title = FORMAT_TITLES.get(claimed, claimed)
        raise UnsupportedMedia(
            f"照片「{name}」声称是 {claimed_title}，实际内容是 {FORMAT_TITLES[actual]}",
            {"declared": claimed_title, "actual": FORMAT_TITLES[actual]},
            "photos",
        )
    width, height = image.size
    if width * height > limits.max_pixels:
        raise TooLarge(
            f"照片「{name}」像素 {width}×{height} 过大",
            {"max_pixels": limits.max_pixels},
            "photos",
        )
    # The file is decoded once: the stored bytes, the thumbnail and `pixels` all come from
    # this one decode (a reduced one for upright JPEGs).
    try:
        meta = _metadata(image, tz)
        stripped = None
        if actual == "JPEG" and meta.get("orientation", 1) == 1:
            stripped = strip_jpeg_metadata(upload.data)
        if stripped is not None:
            # Upright JPEG: keep the camera's pixels, drop the metadata blocks losslessly, and
            # decode only a reduced version (JPEG DCT scaling) to check it and make the thumbnail.
            data = stripped
            image.draft("RGB", (limits.thumb_px * 2, limits.thumb_px * 2))
            image.load()
        else:
            image.load()
            image = ImageOps.exif_transpose(image)
            width, height = image.size
            data = _encode(image, "PNG" if actual == "PNG" else "JPEG", limits.jpeg_quality)
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedMedia(f"照片「{name}」已损坏，无法读取", str(exc), "photos") from None
    image.thumbnail((limits.thumb_px, limits.thumb_px))  # in place: the full image is done with
    thumb = _encode(image, "JPEG", 80)
    exif: dict[str, Any] = {
        k: v for k, v in meta.items() if k not in ("taken_at", "lon", "lat")
    } | {
        "original": {
            "filename": (upload.filename or "")[:200],
            "format": FORMAT_TITLES[actual],
            "size_bytes": size,
            "sha256": hashlib.sha256(upload.data).hexdigest(),
        }
    }
    return PreparedPhoto(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        content_type=ACCEPTED[actual],
        width=width,
        height=height,
        thumb=thumb,
        taken_at=meta.get("taken_at"),
        exif_lon=meta.get("lon"),
        exif_lat=meta.get("lat"),
        exif=exif,
        pixels=image,
    )


def prepare_all(
    uploads: Sequence[Upload], limits: PhotoLimits, tz: ZoneInfo, min_count: int = 0
) -> list[PreparedPhoto]:
    """Validates a whole upload (count first, then every file) before anything is stored."""
    if len(uploads) > limits.max_count:
        raise InvalidInput(
            f"一次最多上传 {limits.max_count} 张照片，收到 {len(uploads)} 张",
            {"count": len(uploads), "max": limits.max_count},
            "photos",
        )
    if len(uploads) < min_count:
        raise InvalidInput(f"请至少上传 {min_count} 张照片", field="photos")
    return [prepare(u, limits, tz, u.filename or f"第{i + 1}张") for i, u in enumerate(uploads)]


# session.info key: [(photo id, thumbnail JPEG)] of the issue photos added in the transaction.
PHOTOS_TO_CHECK = "issue_photos_to_check"


class PhotoStore:
    """Files under `root`: ab/<sha256>.<ext> and thumbs/ab/<sha256>.jpg (content-addressed,
    so the same photo is stored once and a file never changes).

    A photo is durable before the transaction that records it commits: its files are written
    at once and flushed to disk (fsync of the file and its folder) by a background thread while
    the request goes on with its statements; every commit in the writing thread first waits
    for those flushes (`_await_files`, a Session before_commit hook), and fails if one failed.
    The API also makes a thumbnail again from the photo when its file is missing or empty
    (`thumbnail`)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, sha256: str, content_type: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}{_EXTENSION_OF.get(content_type, '.bin')}"

    def thumb_path(self, sha256: str) -> Path:
        return self.root / "thumbs" / sha256[:2] / f"{sha256}.jpg"

    def save(self, photo: PreparedPhoto) -> None:
        _write_once(self.path(photo.sha256, photo.content_type), photo.data, durable=True)
        _write_once(self.thumb_path(photo.sha256), photo.thumb, durable=True)

    def thumbnail(self, sha256: str, content_type: str, size_px: int = 320) -> Path | None:
        """The thumbnail's file, made again from the photo if it is missing or empty (a crash
        before the system wrote it out); None without the photo itself."""
        thumb = self.thumb_path(sha256)
        if thumb.is_file() and thumb.stat().st_size > 0:
            return thumb
        original = self.path(sha256, content_type)
        if not original.is_file():
            return None
        with Image.open(original) as image:
            image.draft("RGB", (size_px * 2, size_px * 2))
            image.thumbnail((size_px, size_px))
            data = _encode(image, "JPEG", 80)
        thumb.unlink(missing_ok=True)
        _write_once(thumb, data)
        return thumb


# Files written by this thread whose flush to disk is under way: its next commit waits for them.
_unflushed = threading.local()
_flusher = ThreadPoolExecutor(max_workers=4, thread_name_prefix="photo-fsync")


def _flush(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the new name itself
    finally:
        os.close(folder)


def _write_once(path: Path, data: bytes, durable: bool = False) -> None:
    if path.exists() and path.stat().st_size == len(data):
        if durable:  # it may be another request's file whose flush is still under way
            _pending().append(_flusher.submit(_flush, path))
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _pending().append(_flusher.submit(_flush, path))


def _pending() -> list[Future[None]]:
    if not hasattr(_unflushed, "futures"):
        _unflushed.futures = []
    return _unflushed.futures


def _await_files(_session: Session) -> None:
    """Before a commit: the photo files this thread wrote are on disk (raises if not)."""
    futures = getattr(_unflushed, "futures", None)
    if not futures:
        return
    _unflushed.futures = []
    for future in futures:
        future.result()


def _forget_files(_session: Session, _previous: Any = None) -> None:
    _unflushed.futures = []  # rolled back: nothing refers to them


if not event.contains(Session, "before_commit", _await_files):
    event.listen(Session, "before_commit", _await_files)
    event.listen(Session, "after_soft_rollback", _forget_files)


def add_photos(
    session: Session,
    store: PhotoStore,
    issue_id: int,
    event_id: int | None,
    kind: str,
    photos: Sequence[PreparedPhoto],
) -> list[Photo]:
    """Rows for validated photos, then their files (the caller commits).

    Files are content-addressed, so a rolled-back transaction leaves at most an unreferenced
    file behind, never a row without its file.
    """
    rows = [
        Photo(issue_id=issue_id, event_id=event_id, kind=kind, **p.stored_columns()) for p in photos
    ]
    session.add_all(rows)
    session.flush()
    for p in photos:
        store.save(p)
    # Checked as evidence before this transaction commits (geoservice.fieldwork.evidence):
    # the id and the thumbnail already made, so no photo is decoded again.
    pending = session.info.setdefault(PHOTOS_TO_CHECK, [])
    pending.extend((row.id, p.thumb) for row, p in zip(rows, photos, strict=True))
    return rows
