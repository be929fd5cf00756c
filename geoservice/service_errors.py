"""Errors raised by services (no Flask here); geoservice.errors turns them into responses
(JSON for the API, the error page for browsers), once for the whole app.

Each carries the HTTP status it maps to and a Chinese message a planner understands.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 400

    def __init__(self, error: str, detail: Any = None, field: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.detail = detail
        self.field = field

    @property
    def message(self) -> str:
        return self.error


class InvalidInput(ServiceError):
    status = 422


class Forbidden(ServiceError):
    status = 403


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class TooLarge(ServiceError):
    status = 413


class UnsupportedMedia(ServiceError):
    status = 415
