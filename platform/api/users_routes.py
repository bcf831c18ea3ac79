"""User accounts across the installation (instance administrators): find them, disable and
enable them. Disabling an account ends its sessions and refuses its tokens everywhere; nothing
is deleted (user_status.py)."""
from __future__ import annotations

from flask import g, request
from sqlalchemy import or_, select

from ..errors import Forbidden, NotFound
from ..models import User
from ..user_status import disable_account, enable_account
from .auth_routes import iso_utc, reason_body, user_json
from .base import api, int_arg, ok, platform


def account_json(u: User) -> dict:
    return {**user_json(u), "disabled": bool(u.disabled), "created_at": iso_utc(u.created_at)}


def _require_instance_admin() -> None:
    if not g.user.is_superuser:
        raise Forbidden("only an instance administrator may manage user accounts", message_zh="只有实例管理员可以管理用户账号")


def _account(s, user_id: int) -> User:
    u = s.get(User, user_id) if user_id < 2**63 else None  # past 64 bits: names nothing
    if u is None:
        raise NotFound("user", "用户")
    return u


@api.get("/users")
def list_users():
    _require_instance_admin()
    limit = int_arg("limit", 100, 1, 1000)
    before = int_arg("before", None, 1)
    text = (request.args.get("q") or "").strip()[:200]
    q = select(User).order_by(User.id.desc()).limit(limit)
    if before:
        q = q.where(User.id < before)
    if text:
        q = q.where(or_(User.email.contains(text.lower(), autoescape=True), User.name.contains(text, autoescape=True)))
    with platform().tenant_session(None) as s:
        return ok({"users": [account_json(u) for u in s.scalars(q)]})


@api.post("/users/<int:user_id>/disable")
def disable_user(user_id):
    """No login, every session ends now, every API token is refused; nothing is deleted."""
    _require_instance_admin()
    reason = reason_body()
    with platform().tenant_session(None, write=True) as s:
        u = _account(s, user_id)
        out = disable_account(s, u, actor_id=g.user.id, reason=reason)
        body = {"user": account_json(u), "ended_sessions": out["ended_sessions"],
                "workspaces_without_owner": out["workspaces_without_owner"]}
    return ok(body)


@api.post("/users/<int:user_id>/enable")
def enable_user(user_id):
    _require_instance_admin()
    reason = reason_body()
    with platform().tenant_session(None, write=True) as s:
        u = _account(s, user_id)
        enable_account(s, u, actor_id=g.user.id, reason=reason)
        body = {"user": account_json(u)}
    return ok(body)
