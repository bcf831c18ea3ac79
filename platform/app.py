"""The Flask app factory."""
from __future__ import annotations

import logging
from pathlib import Path
from datetime import timedelta

from flask import Flask, jsonify
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException

from .config import load_config
from .core import Platform
from .json_provider import ZhongshuJSON


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building a signing serializer for requests
    that carry no session cookie (API clients with a token): they get the empty session
    Flask would give them, and the signer is built once per secret key, not per request."""

    def open_session(self, app, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def get_signing_serializer(self, app):
        key = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached = getattr(self, "_signer", None)
        if cached is None or cached[0] != key:
            cached = self._signer = (key, super().get_signing_serializer(app))
        return cached[1]


def create_app(config: dict | None = None, platform: Platform | None = None) -> Flask:
    cfg = load_config(config)
    # `zhongshu` is a namespace package, so Flask is told where this app lives.
    app = Flask("zhongshu.platform", static_folder=None, root_path=str(Path(__file__).parent),
                instance_path=cfg["DATA_DIR"])
    app.json_provider_class = ZhongshuJSON
    app.session_interface = CookieSessions()
    app.json = ZhongshuJSON(app)
    app.config.update(cfg)
    app.config.update(
        SECRET_KEY=cfg["SECRET_KEY"],
        # Uploads may be as large as an attachment; JSON bodies are held to MAX_CONTENT_LENGTH
        # by the API (JSON_MAX_BYTES).
        MAX_CONTENT_LENGTH=max(cfg["MAX_CONTENT_LENGTH"], cfg["ATTACHMENT_MAX_BYTES"] + 1024 * 1024),
        JSON_MAX_BYTES=cfg["MAX_CONTENT_LENGTH"],
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg["SESSION_COOKIE_SECURE"],
        SESSION_COOKIE_NAME="zhongshu_session",
        PERMANENT_SESSION_LIFETIME=timedelta(days=7),
    )
    zs = platform or Platform(cfg)
    app.extensions["zhongshu"] = zs

    from .api import api
    from .public_pages import public
    app.register_blueprint(api)
    from zhongshu.builder_ui.blueprint import ui
    app.register_blueprint(ui)
    app.register_blueprint(public)
    from .overload import install as _overload; _overload(app)  # noqa: E702  (503/429 before timeouts)
    from .memory import install as _memory; _memory(app)  # noqa: E702  (free pages back after bulk requests)

    @app.get("/api/v1/health")
    def health():
        return jsonify({"ok": True})

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        # Routing errors (404, 405) happen before any blueprint: answer JSON all the same.
        words = {404: ("not found", "找不到页面"), 405: ("this method is not allowed here", "此接口不支持该请求方法"),
                 413: ("the request body is too large", "请求内容过大")}
        en, zh = words.get(e.code, (e.name, e.name))
        resp = jsonify({"error": {"code": e.name.lower().replace(" ", "_"), "message": en, "message_zh": zh}})
        resp.status_code = e.code or 500
        if e.code == 405 and getattr(e, "valid_methods", None):
            resp.headers["Allow"] = ", ".join(e.valid_methods)
        return resp

    @app.after_request
    def security_headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        return resp

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run is noise
    return app
