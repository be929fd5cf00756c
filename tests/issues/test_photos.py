"""Photo intake: sniffing, HEIC conversion, EXIF kept as metadata and stripped from the file,
limits, storage by content hash."""

import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from geoservice.issues.photos import PhotoLimits, PhotoStore, Upload, prepare, prepare_all
from geoservice.service_errors import InvalidInput, TooLarge, UnsupportedMedia
from tests.issues.helpers import image_bytes

TZ = ZoneInfo("Asia/Shanghai")
LIMITS = PhotoLimits()


def ready(data: bytes, filename: str = "p.jpg", content_type: str | None = None, **limits):
    return prepare(Upload(data, filename, content_type), PhotoLimits(**limits), TZ)


def test_a_jpeg_keeps_gps_and_time_as_metadata_but_not_in_the_file():
    photo = ready(image_bytes(gps=(120.2612, 33.7803), taken="2026:11:20 08:15:00"))
    assert photo.content_type == "image/jpeg"
    assert photo.exif_lon == pytest.approx(120.2612, abs=1e-6)
    assert photo.exif_lat == pytest.approx(33.7803, abs=1e-6)
    assert photo.taken_at == datetime(2026, 11, 20, 0, 15, tzinfo=UTC)
    stored = Image.open(io.BytesIO(photo.data))
    assert not stored.getexif().get_ifd(0x8825)
    assert photo.exif["original"]["format"] == "JPEG"
    assert len(photo.exif["original"]["sha256"]) == 64


def test_southern_and_western_coordinates_are_negative():
    photo = ready(image_bytes(gps=(-70.5, -33.4)))
    assert (photo.exif_lon, photo.exif_lat) == (pytest.approx(-70.5), pytest.approx(-33.4))


def test_orientation_is_applied_so_the_photo_displays_upright():
    photo = ready(image_bytes(size=(80, 40), orientation=6))  # rotated 90° by the camera
    assert (photo.width, photo.height) == (40, 80)
    assert photo.exif["orientation"] == 6


def test_heic_is_converted_to_jpeg():
    photo = ready(image_bytes("HEIF", size=(64, 48)), "IMG_0001.HEIC", "image/heic")
    assert photo.content_type == "image/jpeg"
    assert Image.open(io.BytesIO(photo.data)).format == "JPEG"
    assert (photo.width, photo.height) == (64, 48)
    assert photo.exif["original"]["format"] == "HEIC"


def test_png_stays_png_and_its_thumbnail_is_small():
    photo = ready(image_bytes("PNG", size=(1000, 500)), "shot.png", "image/png")
    assert photo.content_type == "image/png"
    thumb = Image.open(io.BytesIO(photo.thumb))
    assert thumb.format == "JPEG" and max(thumb.size) == 320


@pytest.mark.parametrize("declared", [None, "", "application/octet-stream", "image/*"])
def test_no_specific_claim_means_the_content_decides(declared):
    assert ready(image_bytes("PNG"), "upload", declared).content_type == "image/png"


@pytest.mark.parametrize(
    ("data", "filename", "declared", "error", "words"),
    [
        (b"%PDF-1.4 not a photo", "a.jpg", "image/jpeg", UnsupportedMedia, "不是图片"),
        (image_bytes("GIF"), "a.gif", "image/gif", UnsupportedMedia, "GIF"),
        (image_bytes("WEBP"), "a.webp", None, UnsupportedMedia, "WEBP"),
        (image_bytes("PNG"), "a.jpg", "image/jpeg", UnsupportedMedia, "声称是 JPEG"),
        (image_bytes(), "a.png", None, UnsupportedMedia, "声称是 PNG"),
        (image_bytes(), "a.heic", None, UnsupportedMedia, "声称是 HEIC"),
        (image_bytes(size=(400, 300))[:300], "cut.jpg", None, UnsupportedMedia, "损坏"),
        (b"", "empty.jpg", None, InvalidInput, "空文件"),
    ],
)
def test_bad_files_are_refused_with_a_clear_reason(data, filename, declared, error, words):
    with pytest.raises(error) as caught:
        ready(data, filename, declared)
    assert words in caught.value.error
    assert caught.value.field == "photos"


def test_too_large_in_bytes_or_pixels():
    with pytest.raises(TooLarge, match="超过大小上限"):
        ready(image_bytes(size=(300, 300)), max_bytes=1000)
    with pytest.raises(TooLarge, match="像素"):
        ready(image_bytes(size=(300, 300)), max_pixels=300 * 299)


def test_at_most_nine_and_at_least_the_minimum():
    uploads = [Upload(image_bytes(), f"{i}.jpg") for i in range(10)]
    with pytest.raises(InvalidInput, match="最多上传 9 张"):
        prepare_all(uploads, LIMITS, TZ)
    assert len(prepare_all(uploads[:9], LIMITS, TZ)) == 9
    with pytest.raises(InvalidInput, match="至少上传 1 张"):
        prepare_all([], LIMITS, TZ, min_count=1)


def test_one_bad_file_refuses_the_whole_upload():
    uploads = [Upload(image_bytes(), "ok.jpg"), Upload(b"text", "bad.jpg")]
    with pytest.raises(UnsupportedMedia, match=r"bad\.jpg"):
        prepare_all(uploads, LIMITS, TZ)


def test_the_store_is_content_addressed(tmp_path):
    store = PhotoStore(tmp_path)
    photo = ready(image_bytes())
    store.save(photo)
    store.save(photo)
    path = store.path(photo.sha256, photo.content_type)
    assert path.read_bytes() == photo.data
    assert path.name == f"{photo.sha256}.jpg" and path.parent.name == photo.sha256[:2]
    assert store.thumb_path(photo.sha256).is_file()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        [f"{photo.sha256}.jpg"] * 2
    )


def test_an_upright_jpeg_keeps_its_pixels_and_loses_only_metadata():
    original = image_bytes(size=(900, 600), gps=(120.26, 33.78), taken="2026:11:20 08:15:00")
    photo = ready(original)
    assert b"Exif" in original and b"Exif" not in photo.data
    assert photo.data.endswith(original[-2000:])  # the compressed image data is untouched
    assert (photo.width, photo.height) == (900, 600)
    assert max(Image.open(io.BytesIO(photo.thumb)).size) == 320


def test_jpeg_stripping_refuses_what_it_does_not_understand():
    from geoservice.issues.photos import strip_jpeg_metadata

    assert strip_jpeg_metadata(b"\xff\xd8\x00garbage") is None
    assert strip_jpeg_metadata(image_bytes("PNG")) is None


@pytest.mark.parametrize("progressive", [False, True])
def test_bytes_after_the_jpeg_end_are_cut(progressive):
    """A motion photo (Samsung/Google/Apple style) appends a video or a second image after
    the JPEG's end marker; it can carry the GPS position. The stored file ends at the end
    marker, keeps the camera's pixels, and holds no appended data or metadata."""
    buffer = io.BytesIO()
    Image.new("RGB", (900, 600), (10, 120, 30)).save(
        buffer, "JPEG", quality=90, progressive=progressive
    )
    jpeg = buffer.getvalue()
    trailer = image_bytes(gps=(120.26, 33.78)) + b"ftypmp42 MotionPhoto_Data GPS 120.26,33.78"
    photo = ready(jpeg + trailer)
    assert photo.data.endswith(b"\xff\xd9")
    assert b"MotionPhoto_Data" not in photo.data and b"Exif" not in photo.data
    assert photo.data.count(b"\xff\xd8") == 1
    assert Image.open(io.BytesIO(photo.data)).size == (900, 600)
    assert photo.data == jpeg  # nothing else to strip: the same bytes as the camera's JPEG


def test_an_mpf_pointer_to_a_trailing_image_is_dropped():
    from geoservice.issues.photos import strip_jpeg_metadata

    base = image_bytes()
    mpf = b"\xff\xe2" + (2 + 8).to_bytes(2, "big") + b"MPF\x00II*\x00"
    with_mpf = base[:2] + mpf + base[2:]
    assert b"MPF\x00" not in strip_jpeg_metadata(with_mpf + image_bytes(gps=(1.0, 2.0)))
