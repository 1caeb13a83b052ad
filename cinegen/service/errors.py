"""Errors the service raises; api/errors.py renders each in the Google envelope."""

from __future__ import annotations


class ServiceError(Exception):
    def __init__(self, message: str, code: int = 400, status: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


def not_found(message: str) -> ServiceError:
    return ServiceError(message, 404, "NOT_FOUND")


def invalid(message: str) -> ServiceError:
    return ServiceError(message, 400, "INVALID_ARGUMENT")
