"""Values 包保 accepts: names, titles, phone numbers, notes, choices, instants (plain functions).

Each normaliser returns the cleaned value or raises `Invalid` naming the field.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from geoservice.input_values import EARLIEST, LATEST
from geoservice.service_errors import ServiceError


class Invalid(ServiceError):
    status = 400


# ---------------------------------------------------------------------------------------------
# Validation of names and phone numbers.

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
# For the OpenAPI patterns: the BMP ranges only (request generators cannot take the others).
HAN_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_DOT = "·"
# 2–25 Han characters; names of some ethnic groups join parts with a middle dot (买买提·艾力).
PERSON_NAME = re.compile(rf"^[{_HAN}]+(?:{_DOT}[{_HAN}]+)*$")
PERSON_NAME_LENGTH = (2, 25)
UNIT_NAME = re.compile(rf"^[{_HAN}0-9A-Za-z（）·、\-—]+$")
UNIT_NAME_LENGTH = (2, 60)
TITLE_MAX_LENGTH = 100
NOTE_MAX_LENGTH = 500

MOBILE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE = re.compile(r"^(0\d{2,3})-?(\d{7,8})(?:(?:-|转|#|ext\.?)(\d{1,6}))?$", re.IGNORECASE)
PHONE_HINT = (
    "手机号为以1开头的11位数字（如13812345678）；"
    "固定电话为区号+号码（如0515-88881234，可带分机号如0515-88881234-801）"
)


def clean_text(value: Any) -> str:
    if value is None:
        return ""
    return unicodedata.normalize("NFKC", str(value)).strip()


# Full-width letters and digits (Ａ１) and the ideographic space made plain; nothing else.
_PLAIN = {
    c: unicodedata.normalize("NFKC", chr(c))
    for first, last in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
    for c in range(first, last + 1)
} | {0x3000: " "}


def clean_words(value: Any) -> str:
    """Free text (a title, a note): full-width letters and digits made plain, while its
    Chinese punctuation （，：；） stays as typed — NFKC made it half-width."""
    if value is None:
        return ""
    return str(value).translate(_PLAIN).strip()


def normalise_person_name(value: Any, field_name: str = "name") -> str:
    """A leader's name: Chinese characters, 2–25 of them (middle dot allowed between parts)."""
    name = re.sub(r"\s+", "", clean_text(value))
    name = re.sub("[・•‧∙]", _DOT, name)
    if not name:
        raise Invalid("姓名不能为空", field=field_name)
    low, high = PERSON_NAME_LENGTH
    if not PERSON_NAME.match(name):
        raise Invalid(f"姓名“{name}”应为中文（少数民族姓名可用“·”分隔）", field=field_name)
    if not (low <= len(name.replace(_DOT, "")) and len(name) <= high):
        raise Invalid(f"姓名“{name}”长度应为 {low}–{high} 个字", field=field_name)
    return name


def normalise_unit_name(value: Any, field_name: str = "name") -> str:
    """A unit's name: Chinese text (digits, Latin letters and brackets allowed), 2–60 chars."""
    # Chinese names take full-width brackets; NFKC made them half-width, so one spelling wins.
    name = re.sub(r"\s+", "", clean_text(value)).replace("(", "（").replace(")", "）")
    if not name:
        raise Invalid("单位名称不能为空", field=field_name)
    low, high = UNIT_NAME_LENGTH
    if not low <= len(name) <= high:
        raise Invalid(f"单位名称“{name}”长度应为 {low}–{high} 个字", field=field_name)
    if not UNIT_NAME.match(name) or not re.search(f"[{_HAN}]", name):
        raise Invalid(
            f"单位名称“{name}”应为中文（可含数字、字母、括号、顿号、横线）", field=field_name
        )
    return name


def normalise_title(value: Any, field_name: str = "title") -> str:
    title = re.sub(r"\s+", " ", clean_words(value))
    if len(title) > TITLE_MAX_LENGTH:
        raise Invalid(f"职务不能超过 {TITLE_MAX_LENGTH} 个字", field=field_name)
    return title


def normalise_phone(value: Any, field_name: str = "phone") -> str | None:
    """A mainland mobile (13812345678) or landline (0515-88881234[-801]) number, normalised.

    Empty means no phone (None). Spaces, full-width digits and a +86 prefix are accepted.
    """
    raw = clean_text(value)
    if isinstance(value, float) and value.is_integer():  # Excel stores numbers as floats
        raw = str(int(value))
    phone = re.sub(r"[\s()（）]", "", raw)
    if not phone:
        return None
    mobile = re.sub(r"^(?:\+?86|0086)", "", phone.replace("-", ""))
    if MOBILE.match(mobile):
        return mobile
    match = LANDLINE.match(phone)
    if match:
        area, number, ext = match.groups()
        # Without a hyphen the area code's length is ambiguous (010-1234 5678 / 0101-234 5678).
        joiner = "-" if phone[len(area)] == "-" else ""
        return f"{area}{joiner}{number}" + (f"-{ext}" if ext else "")
    raise Invalid(f"电话号码“{raw}”格式不正确：{PHONE_HINT}", field=field_name)


def normalise_choice(value: Any, choices: Sequence[str], what: str, field_name: str) -> str:
    text = clean_text(value)
    if text not in choices:
        raise Invalid(
            f"未知{what}“{text}”，可选：{'、'.join(choices)}",
            detail={"allowed": list(choices)},
            field=field_name,
        )
    return text


def normalise_note(value: Any, field_name: str = "note") -> str | None:
    note = clean_words(value)
    if len(note) > NOTE_MAX_LENGTH:
        raise Invalid(f"备注不能超过 {NOTE_MAX_LENGTH} 个字", field=field_name)
    return note or None


# ---------------------------------------------------------------------------------------------
# Time.


def now() -> datetime:
    return datetime.now(UTC)


def day_start(day: date, timezone: str) -> datetime:
    """00:00 of `day` in `timezone`: a bare date means the state at the start of that day."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(timezone))


def parse_instant(value: Any, timezone: str, field_name: str) -> datetime | None:
    """ "2026-03-01" (00:00 that day in `timezone`) or an ISO 8601 date-time (naive = local);
    empty → None. Within 2000–2099, as every time the service keeps (1888 in Beijing time was
    stored with the local mean time offset +08:05:43)."""
    found = _parse_instant(value, timezone, field_name)
    if found is not None and not EARLIEST <= found < LATEST:
        raise Invalid(f"时间“{clean_text(value)}”须在 2000–2099 年之间", field=field_name)
    return found


def _parse_instant(value: Any, timezone: str, field_name: str) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        return day_start(value, timezone)
    else:
        text = clean_text(value)
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                return day_start(date.fromisoformat(text), timezone)
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(
                f"时间“{text}”格式不正确，应如 2026-03-01 或 2026-03-01T08:30:00+08:00",
                field=field_name,
            ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(timezone))
    return parsed


# Allow for clocks of different machines disagreeing a little.
_CLOCK_SLACK = timedelta(minutes=5)


def not_future(at: datetime, what: str, field_name: str) -> datetime:
    if at.tzinfo is None:
        raise Invalid(f"{what}缺少时区", field=field_name)
    if at > now() + _CLOCK_SLACK:
        raise Invalid(f"{what}不能晚于当前时间", field=field_name)
    return at
