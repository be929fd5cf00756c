"""What field work reads from the configuration, as plain values (defaults here, so the
configuration file needs no entry: FIELD_* keys override them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class FieldSettings:
    tz: ZoneInfo
    # A check-in farther than this from the place is accepted and flagged (metres).
    checkin_radius_m: float = 200.0
    # A photo whose EXIF position is farther than this from its place/issue is flagged.
    photo_distance_m: float = 300.0
    # A photo taken this long before (or after) the time claimed is flagged (hours).
    photo_time_tolerance_h: float = 24.0
    # Hamming distance between dHashes at or under which two pictures are "the same".
    dhash_max_distance: int = 6
    # A visit uploaded this long after it was made is flagged `late_upload` (hours).
    late_upload_h: float = 72.0
    patrol_source: str = "自查"
    inspection_source: str = "暗访督查"
    watermark_font: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> FieldSettings:
        return cls(
            tz=ZoneInfo(config.get("TIMEZONE", "Asia/Shanghai")),
            checkin_radius_m=float(config.get("FIELD_CHECKIN_RADIUS_M", 200)),
            photo_distance_m=float(config.get("FIELD_PHOTO_DISTANCE_M", 300)),
            photo_time_tolerance_h=float(config.get("FIELD_PHOTO_TIME_TOLERANCE_H", 24)),
            # At most 7: the band index finds every pair within 7 bits (evidence.dhash_probes).
            dhash_max_distance=min(7, int(config.get("FIELD_DHASH_MAX_DISTANCE", 6))),
            late_upload_h=float(config.get("FIELD_LATE_UPLOAD_H", 72)),
            patrol_source=str(config.get("FIELD_PATROL_SOURCE", "自查")),
            inspection_source=str(config.get("FIELD_INSPECTION_SOURCE", "暗访督查")),
            watermark_font=config.get("FIELD_WATERMARK_FONT"),
        )
