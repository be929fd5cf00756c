"""The proof-of-work a public write carries instead of a captcha (works offline).

The server issues `nonce.difficulty.expires.signature` (HMAC-SHA256 with the app's secret);
the browser (static/js/pow.js, our own SHA-256) finds a `solution` such that
SHA-256(challenge + ":" + solution) starts with `difficulty` zero bits. Verifying is one hash
and one HMAC; a challenge is good once (its nonce is recorded as spent in the write's
transaction) and until it expires.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from geoservice.citizens.models import SpentChallenge
from geoservice.service_errors import Forbidden

MAX_SOLUTION_LENGTH = 32


@dataclass(frozen=True)
class Challenge:
    token: str
    difficulty: int
    expires_at: datetime

    def as_json(self) -> dict:
        return {
            "challenge": self.token,
            "difficulty": self.difficulty,
            "expires_at": self.expires_at.isoformat(),
        }


def _sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()[:32]


def issue(secret: str, difficulty: int, ttl_s: int, now: datetime | None = None) -> Challenge:
    now = now or datetime.now(UTC)
    expires = now + timedelta(seconds=ttl_s)
    payload = f"{secrets.token_hex(16)}.{difficulty}.{int(expires.timestamp())}"
    return Challenge(f"{payload}.{_sign(secret, payload)}", difficulty, expires)


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        return bits + 8 - byte.bit_length()
    return bits


def solves(token: str, solution: str, difficulty: int) -> bool:
    digest = hashlib.sha256(f"{token}:{solution}".encode()).digest()
    return leading_zero_bits(digest) >= difficulty


def solve(token: str, difficulty: int) -> str:
    """The first solution (for tests and scripts; browsers run static/js/pow.js)."""
    n = 0
    while not solves(token, str(n), difficulty):
        n += 1
    return str(n)


FAILED = "安全校验未通过，请刷新页面后重新提交"


def check(
    secret: str,
    token: str | None,
    solution: str | None,
    min_difficulty: int,
    now: datetime | None = None,
) -> str:
    """Checks a solved challenge without touching the database; returns its nonce. Raises
    Forbidden (403) when missing, forged, expired, too easy or unsolved."""
    now = now or datetime.now(UTC)
    token, solution = str(token or ""), str(solution or "")
    parts = token.split(".")
    if len(parts) != 4 or not solution or len(solution) > MAX_SOLUTION_LENGTH:
        raise Forbidden(FAILED, field="challenge")
    nonce, raw_difficulty, raw_expires, signature = parts
    payload = f"{nonce}.{raw_difficulty}.{raw_expires}"
    if not hmac.compare_digest(signature, _sign(secret, payload)):
        raise Forbidden(FAILED, field="challenge")
    difficulty, expires = int(raw_difficulty), int(raw_expires)
    if difficulty < min_difficulty:
        raise Forbidden(FAILED, field="challenge")
    if expires < now.timestamp():
        raise Forbidden("安全校验已过期，请重新提交", field="challenge")
    if not solves(token, solution, difficulty):
        raise Forbidden(FAILED, field="challenge")
    return token


def spend(session: Session, token: str, now: datetime | None = None) -> None:
    """Records a checked challenge as used, in the caller's transaction (so a write that
    fails leaves it unspent); 403 if it was used before."""
    now = now or datetime.now(UTC)
    nonce, _, raw_expires, _ = token.split(".")
    spent = session.execute(
        text(
            "INSERT INTO spent_challenges (nonce, expires_at) VALUES (:nonce, :expires)"
            " ON CONFLICT DO NOTHING RETURNING nonce"
        ),
        {"nonce": nonce, "expires": datetime.fromtimestamp(int(raw_expires), UTC)},
    ).first()
    if spent is None:
        raise Forbidden("该安全校验已使用过，请重新提交", field="challenge")
    if secrets.randbelow(100) == 0:
        session.execute(delete(SpentChallenge).where(SpentChallenge.expires_at < now))


def verify(
    session: Session,
    secret: str,
    token: str | None,
    solution: str | None,
    min_difficulty: int,
    now: datetime | None = None,
) -> None:
    """check() then spend()."""
    spend(session, check(secret, token, solution, min_difficulty, now), now)
