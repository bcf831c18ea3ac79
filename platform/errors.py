"""Errors that reach the user. Each becomes a JSON response with a status, a code,
a plain-words message (zh-CN and en) and, where it applies, JSON pointers to the part
of the request that caused it."""
from __future__ import annotations


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, message_zh: str | None = None, status: int | None = None,
                 code: str | None = None, errors: list[dict] | None = None, **extra):
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh or message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.errors = errors or []
        self.extra = extra

    def to_dict(self) -> dict:
        body = {"error": {"code": self.code, "message": self.message, "message_zh": self.message_zh}}
        if self.errors:
            body["error"]["errors"] = self.errors
        body["error"].update(self.extra)
        return body


class ValidationFailed(ApiError):
    status = 400
    code = "validation_failed"


class NotFound(ApiError):
    status = 404
    code = "not_found"

    def __init__(self, what: str = "resource", what_zh: str = "资源"):
        super().__init__(f"{what} not found", message_zh=f"找不到{what_zh}")


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class TooManyRequests(ApiError):
    status = 429
    code = "too_many_requests"


def field_error(pointer: str, message: str, message_zh: str | None = None, **extra) -> dict:
    return {"pointer": pointer, "message": message, "message_zh": message_zh or message, **extra}
