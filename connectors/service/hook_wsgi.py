"""``POST /api/v1/hooks/<token>`` answered in front of Flask.

Webhook intake is the platform's hot path: a burst of orders is thousands of small signed
POSTs a second. Through Flask each one paid for a request context, URL matching, the API
blueprint's hooks (request id, session cookie and API-token lookup, tenant resolution), the
overload guard's hook and the response object — about as much CPU as intake's own work, and
none of it applies: the webhook token and the connector's signature are the credentials,
intake is exempt from the overload guard, and no cookie or API token is looked at.

:class:`HookRoute` wraps the Flask app's WSGI callable. A ``POST`` whose path is exactly
``/api/v1/hooks/<token>`` (one segment) is answered here with the same checks and answers as
the Flask route in routes.py (size limit → 413, then ``handle_webhook``: signature, parsing,
durable store, the connector's acknowledgement), with the app's security headers and
``Cache-Control: no-store``. Everything else — other methods, other paths — goes to Flask
unchanged (which still has the route, e.g. for ``app.test_request_context``).
"""
from __future__ import annotations

import logging
from http import HTTPStatus

from werkzeug.datastructures import EnvironHeaders
from werkzeug.wsgi import get_input_stream

from zhongshu.platform.memory import BIG_REQUEST_BYTES, trim

from .intake import HookResult, handle_webhook, unavailable, webhook_max_bytes

log = logging.getLogger("zhongshu.connectors.intake")

HOOK_PREFIX = "/api/v1/hooks/"
#: what the app's after_request hook adds to every answer (platform/app.py)
SECURITY_HEADERS = [("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
                    ("Referrer-Policy", "same-origin"), ("Cache-Control", "no-store")]
_REASONS = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}


def read_body(environ, limit: int) -> bytes | None:
    """The request body, or None when it is larger than ``limit`` bytes (read no further)."""
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            if int(length) > limit:
                return None
        except ValueError:
            pass  # werkzeug treats it as absent
    stream = get_input_stream(environ, max_content_length=None)  # honours Content-Length / chunked
    parts, size = [], 0
    while size <= limit:
        chunk = stream.read(limit + 1 - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return None if size > limit else b"".join(parts)


class HookRoute:
    """WSGI middleware: webhook intake without Flask; everything else to ``app``."""

    def __init__(self, app, flask_app):
        self.app, self.flask_app = app, flask_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(HOOK_PREFIX) or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        token = path[len(HOOK_PREFIX):]
        if not token or "/" in token:
            return self.app(environ, start_response)  # not this route: Flask answers (404)
        try:
            res = self.handle(environ, token)
        except Exception:  # noqa: BLE001 - never a 500: nothing was acknowledged, the sender retries
            log.exception("webhook intake failed unexpectedly")
            res = unavailable()
        headers = [("Content-Type", res.content_type), ("Content-Length", str(len(res.body))), *SECURITY_HEADERS]
        headers += list((res.headers or {}).items())
        start_response(_REASONS.get(res.status, f"{res.status} Status"), headers)
        return [res.body]

    def handle(self, environ, token: str) -> HookResult:
        platform = self.flask_app.extensions["zhongshu"]
        limit = webhook_max_bytes(platform)
        body = read_body(environ, limit)
        if body is None:
            return HookResult.error(413, "too_large", f"the body exceeds {limit} bytes")
        try:
            return handle_webhook(platform, token, EnvironHeaders(environ), body)
        finally:
            if len(body) >= BIG_REQUEST_BYTES:
                trim()  # as the app does after big requests (platform/memory.py)


def install(flask_app) -> None:
    """Put the webhook route in front of ``flask_app`` (once)."""
    if not isinstance(flask_app.wsgi_app, HookRoute):
        flask_app.wsgi_app = HookRoute(flask_app.wsgi_app, flask_app)
