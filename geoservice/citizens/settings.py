"""What the citizens package reads from the configuration, as plain values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Defaults; geoservice/config.py DEFAULTS carries the same names (README's config table).
DEFAULTS: dict[str, Any] = {
    # One switch for everything anonymous: the 随手拍 page, ticket pages, public map and 曝光台.
    "CITIZENS_PUBLIC": False,
    "CITIZEN_REPORTS_PER_IP_HOUR": 10,
    "CITIZEN_REPORTS_PER_PHONE_DAY": 5,
    "CITIZEN_POW_DIFFICULTY": 16,  # leading zero bits of SHA-256 (≈65 000 tries on average)
    "CITIZEN_POW_TTL_SECONDS": 900,
    "CITIZEN_MAX_PHOTOS": 3,
    "CITIZEN_PHOTO_MAX_BYTES": 8 * 1024 * 1024,
    "CITIZEN_DESCRIPTION_MAX": 500,
    "CITIZEN_SENSITIVE_DECIMALS": 3,  # sensitive issues: public positions rounded (≈100 m)
    "CITIZEN_PUBLIC_DAYS": 90,  # the public map/list shows issues reported this recently
    "CITIZEN_PUBLIC_MAX": 2000,
    "PUBLIC_CACHE_SECONDS": 60,
}


@dataclass(frozen=True)
class CitizenSettings:
    enabled: bool
    secret: str
    per_ip_hour: int
    per_phone_day: int
    pow_difficulty: int
    pow_ttl_s: int
    max_photos: int
    photo_max_bytes: int
    description_max: int
    sensitive_decimals: int
    public_days: int
    public_max: int
    cache_seconds: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CitizenSettings:
        def get(name: str) -> Any:
            return config.get(name, DEFAULTS[name])

        return cls(
            enabled=bool(get("CITIZENS_PUBLIC")),
            secret=str(config.get("SECRET_KEY") or ""),
            per_ip_hour=int(get("CITIZEN_REPORTS_PER_IP_HOUR")),
            per_phone_day=int(get("CITIZEN_REPORTS_PER_PHONE_DAY")),
            pow_difficulty=int(get("CITIZEN_POW_DIFFICULTY")),
            pow_ttl_s=int(get("CITIZEN_POW_TTL_SECONDS")),
            max_photos=int(get("CITIZEN_MAX_PHOTOS")),
            photo_max_bytes=int(get("CITIZEN_PHOTO_MAX_BYTES")),
            description_max=int(get("CITIZEN_DESCRIPTION_MAX")),
            sensitive_decimals=int(get("CITIZEN_SENSITIVE_DECIMALS")),
            public_days=int(get("CITIZEN_PUBLIC_DAYS")),
            public_max=int(get("CITIZEN_PUBLIC_MAX")),
            cache_seconds=int(get("PUBLIC_CACHE_SECONDS")),
        )
