"""What the citizens package reads from the configuration, as plain values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geoservice.config import DEFAULTS  # the citizens' defaults live with all others


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
