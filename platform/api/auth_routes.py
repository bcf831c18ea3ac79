"""Login, the current user, tenants, members, API tokens and the audit log."""
from __future__ import annotations

import re
import secrets
from datetime import timedelta

from flask import current_app, g, request, session
from sqlalchemy import select

from .. import user_sessions
from ..user_status import (check_reason, disable_membership, enable_membership, has_other_active_workspace,
                           keep_an_active_owner)
from ..auth import (clear_failures, hash_password, login_blocked, new_token, record_failure, validate_email,
                    validate_password, verify_password)
from ..errors import ApiError, Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized, ValidationFailed, field_error
from ..models import ROLES, ApiToken, AuditLog, Membership, Tenant, User, UserSession, utcnow
from .base import api, body_object, int_arg, ok, platform, require_role


def user_json(u: User) -> dict:
    return {"id": u.id, "email": u.email, "name": u.name, "is_superuser": u.is_superuser, "locale": u.locale}


def tenant_json(t: Tenant, role: str | None = None) -> dict:
    d = {"id": t.id, "slug": t.slug, "name": t.name, "timezone": t.timezone, "locale": t.locale}
    if role:
        d["role"] = role
    return d


def _my_tenants(user: User) -> list[dict]:
    with platform().tenant_session(None) as s:
        rows = s.execute(select(Tenant, Membership.role).join(Membership, Membership.tenant_id == Tenant.id)
                         .where(Membership.user_id == user.id, Membership.disabled_at.is_(None)).order_by(Tenant.id)).all()
        out = [tenant_json(t, r) for t, r in rows]
        if user.is_superuser:
            seen = {t["id"] for t in out}
            out += [tenant_json(t, "owner") for t in s.scalars(select(Tenant).order_by(Tenant.id)) if t.id not in seen]
    return out


def _throttle_keys(email: str) -> tuple[str, str]:
    """Failed logins are counted per account and address (so an attacker elsewhere cannot
    lock the owner out) and per address across accounts (so one address cannot try a few
    passwords on many accounts)."""
    addr = request.remote_addr or "-"
    return f"acct:{email}|{addr}", f"ip:{addr}"


def _check_throttle(s, acct_key: str, ip_key: str) -> None:
    cfg = current_app.config
    if login_blocked(s, acct_key, cfg["LOGIN_MAX_ATTEMPTS"]):
        raise TooManyRequests("too many failed logins; wait 15 minutes", message_zh="登录失败次数过多,请 15 分钟后再试", retry_after=900)
    if login_blocked(s, ip_key, cfg["LOGIN_MAX_ATTEMPTS_PER_ADDRESS"]):
        raise TooManyRequests("too many failed logins from this address; wait 15 minutes",
                              message_zh="此地址登录失败次数过多,请 15 分钟后再试", retry_after=900)


def _login_refusal(s, user: User) -> Forbidden | None:
    """Why a user with the right password may not log in (said only to someone who knows it)."""
    if user.disabled:
        return Forbidden("this account is disabled; ask an administrator of this installation",
                         message_zh="此账号已停用，请联系系统管理员", code="account_disabled")
    if user.is_superuser:
        return None
    disabled_at = s.scalars(select(Membership.disabled_at).where(Membership.user_id == user.id)).all()
    if disabled_at and all(d is not None for d in disabled_at):
        return Forbidden("your access to your workspace is disabled; ask its owner or an administrator",
                         message_zh="你在工作区的访问已被停用，请联系所有者或管理员", code="member_disabled")
    return None


def _open_browser_session(s, user: User) -> dict:
    """Starts a server-side session and puts its token in the (signed) cookie."""
    old = session.get("sid")
    if isinstance(old, str) and old:
        user_sessions.revoke_token(s, old)  # this browser's previous login ends here
    raw, row = user_sessions.start(s, user, current_app.permanent_session_lifetime, request.remote_addr,
                                   request.user_agent.string)
    session.clear()
    session.permanent = True
    session["sid"] = raw
    session["pw"] = user_sessions.password_fingerprint(user)  # a password change logs out other sessions
    session["csrf"] = secrets.token_urlsafe(24)
    return {"csrf_token": session["csrf"], "session_id": row.id}


@api.post("/auth/login")
def login():
    data = body_object()
    email, password = data.get("email"), data.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        raise ValidationFailed("email and password are required", message_zh="需要邮箱和密码",
                               errors=[field_error("/email", "required", "必填")])
    email = email.lower()
    acct_key, ip_key = _throttle_keys(email)
    with platform().tenant_session(None, write=True) as s:
        _check_throttle(s, acct_key, ip_key)
        user = s.scalar(select(User).where(User.email == email))
        good = verify_password(user.password_hash if user else None, password) and user is not None
        refusal = _login_refusal(s, user) if good else None
        if not good or refusal is not None:
            record_failure(s, acct_key)  # a disabled account counts too: no unthrottled password oracle
            record_failure(s, ip_key)
    if not good:
        raise Unauthorized("wrong email or password", message_zh="邮箱或密码错误")
    if refusal is not None:
        raise refusal
    with platform().tenant_session(None, write=True) as s:
        clear_failures(s, acct_key)  # not the address's count: one good login must not reset a spray
        opened = _open_browser_session(s, user)
    return ok({"user": user_json(user), "csrf_token": opened["csrf_token"], "tenants": _my_tenants(user)})


@api.post("/auth/logout")
def logout():
    if g.browser_session is not None:
        with platform().tenant_session(None, write=True) as s:
            user_sessions.revoke(s, g.browser_session.id)
    session.clear()
    return ok({"ok": True})


@api.get("/auth/me")
def me():
    return ok({"user": user_json(g.user), "csrf_token": session.get("csrf") if g.browser_session else None,
               "tenants": _my_tenants(g.user)})


# -- the user's own browser sessions -------------------------------------------------------

def iso_utc(d):
    return d.isoformat() + "Z" if d else None


def session_json(us: UserSession) -> dict:
    return {"id": us.id, "created_at": iso_utc(us.created_at), "last_seen_at": iso_utc(us.last_seen_at),
            "expires_at": iso_utc(us.expires_at), "ip": us.ip, "user_agent": us.user_agent,
            "current": g.browser_session is not None and us.id == g.browser_session.id}


def _need_browser_session():
    if g.browser_session is None:
        raise Forbidden("browser sessions are managed from a logged-in session, not with an API token",
                        message_zh="浏览器会话只能在登录后的会话中管理,不能使用 API 令牌")


@api.get("/auth/sessions")
def list_sessions():
    _need_browser_session()
    with platform().tenant_session(None) as s:
        rows = user_sessions.live_sessions(s, g.user.id)
    return ok({"sessions": [session_json(us) for us in rows]})


@api.delete("/auth/sessions/<int:session_id>")
def revoke_session(session_id):
    _need_browser_session()
    with platform().tenant_session(None, write=True) as s:
        us = s.get(UserSession, session_id) if session_id < 2**63 else None  # past 64 bits: names nothing
        if us is None or us.user_id != g.user.id:
            raise NotFound("session", "会话")  # another user's session is not even confirmed to exist
        user_sessions.revoke(s, us.id)
    if us.id == g.browser_session.id:
        session.clear()
    return ok({"ok": True})


@api.post("/auth/password")
def change_password():
    """Changes the caller's password; every other session of the user ends."""
    _need_browser_session()
    data = body_object()
    current, new = data.get("current_password"), data.get("new_password")
    if not isinstance(current, str):
        raise ValidationFailed("current_password is required", message_zh="需要当前密码",
                               errors=[field_error("/current_password", "required", "必填")])
    try:
        validate_password(new)
    except ValidationFailed as e:
        e.errors = [field_error("/new_password", "8 to 256 characters", "8 到 256 个字符")]
        raise
    acct_key, ip_key = _throttle_keys(g.user.email)
    with platform().tenant_session(None, write=True) as s:
        _check_throttle(s, acct_key, ip_key)
        user = s.get(User, g.user.id)
        if not verify_password(user.password_hash, current):
            record_failure(s, acct_key)
            record_failure(s, ip_key)
            failed = True
        else:
            failed = False
            user.password_hash = hash_password(new)
            ended = user_sessions.revoke_all(s, user.id, keep=g.browser_session.id)
    if failed:
        raise ValidationFailed("the current password is wrong", message_zh="当前密码错误",
                               errors=[field_error("/current_password", "wrong password", "密码错误")])
    session["pw"] = user_sessions.password_fingerprint(user)  # this session stays logged in
    return ok({"ok": True, "ended_sessions": ended})


@api.get("/tenants")
def list_tenants():
    return ok({"tenants": _my_tenants(g.user)})


@api.post("/tenants")
def create_tenant():
    if not g.user.is_superuser:
        raise Forbidden("only an instance administrator may create tenants", message_zh="只有实例管理员可以创建租户")
    data = body_object()
    slug, name = data.get("slug"), data.get("name") or data.get("slug")
    if platform().tenant_by_slug(slug or ""):
        raise Conflict(f"a tenant {slug} already exists", message_zh=f"租户 {slug} 已存在")
    tz = data.get("timezone")
    if tz is not None:
        _check_tz(tz)
    if data.get("name"):
        _check_name(data["name"])
    if data.get("locale") is not None:
        _check_locale(data["locale"])
    t = platform().create_tenant(slug, name, timezone_name=tz, locale=data.get("locale"), owner_email=g.user.email)
    return ok({"tenant": tenant_json(t, "owner")}, 201)


LOCALE_RE = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")


def _check_name(name):
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ValidationFailed("the tenant name needs 1 to 100 characters", message_zh="租户名称需要 1 到 100 个字符",
                               errors=[field_error("/name", "1 to 100 characters", "1 到 100 个字符")])


def _check_locale(locale):
    # the same form as template manifests (zh-CN, en): exports of the tenant carry it
    if not isinstance(locale, str) or not LOCALE_RE.match(locale):
        raise ValidationFailed(f"{locale!r} is not a locale such as zh-CN or en", message_zh=f"{locale!r} 不是有效的语言区域(如 zh-CN、en)",
                               errors=[field_error("/locale", "a locale such as zh-CN or en", "如 zh-CN、en")])


def _check_tz(tz):
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(tz)
    except Exception:
        raise ValidationFailed(f"unknown time zone {tz!r}", message_zh=f"未知时区 {tz!r}",
                               errors=[field_error("/timezone", "unknown time zone", "未知时区")]) from None


@api.get("/tenants/<tenant>")
def get_tenant():
    return ok({"tenant": tenant_json(g.tenant, g.actor.role)})


@api.patch("/tenants/<tenant>")
def update_tenant():
    require_role("admin")
    data = body_object()
    t = g.db.get(Tenant, g.tenant.id)
    for k in data:
        if k not in ("name", "timezone", "locale"):
            raise ValidationFailed(f"cannot change '{k}'", message_zh=f"不能修改 '{k}'", errors=[field_error(f"/{k}", "not changeable", "不可修改")])
    if "timezone" in data:
        _check_tz(data["timezone"])
    if "name" in data:
        _check_name(data["name"])
    if "locale" in data:
        _check_locale(data["locale"])
    for k, v in data.items():
        setattr(t, k, v)
    g.db.add(AuditLog(tenant_id=t.id, user_id=g.user.id, action="update", object_type="tenant", object_id=t.id, detail=data))
    return ok({"tenant": tenant_json(t, g.actor.role)})


# -- members -------------------------------------------------------------------------------

def member_json(m: Membership, u: User) -> dict:
    return {**user_json(u), "role": m.role, "attributes": m.attributes or {},
            "disabled": m.disabled_at is not None, "disabled_at": iso_utc(m.disabled_at), "account_disabled": bool(u.disabled)}


@api.get("/tenants/<tenant>/members")
def list_members():
    rows = g.db.execute(select(Membership, User).join(User, User.id == Membership.user_id).order_by(User.id)).all()
    if not g.actor.at_least("builder"):
        # Members and viewers see who is in the workspace (names for approvals and
        # assignments), not their colleagues' e-mail addresses or data-scope attributes.
        return ok({"members": [{"id": u.id, "name": u.name, "role": m.role} for m, u in rows]})
    return ok({"members": [member_json(m, u) for m, u in rows]})


@api.post("/tenants/<tenant>/members")
def add_member():
    require_role("admin")
    data = body_object()
    email, role = data.get("email"), data.get("role", "member")
    validate_email(email)
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", message_zh=f"角色只能是 {', '.join(ROLES)}",
                               errors=[field_error("/role", "unknown role", "未知角色")])
    if role == "owner" and g.actor.role != "owner":
        raise Forbidden("only an owner can add an owner", message_zh="只有所有者可以添加所有者")
    attrs = data.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise ValidationFailed("attributes must be an object", message_zh="attributes 应为对象", errors=[field_error("/attributes", "must be an object", "应为对象")])
    user = g.db.scalar(select(User).where(User.email == email.lower()))
    if user is None:
        from ..auth import hash_password, validate_password

        pw = data.get("password")
        if pw is not None:
            validate_password(pw)
        user = User(email=email.lower(), name=data.get("name") or email.split("@")[0], password_hash=hash_password(pw) if pw else None)
        g.db.add(user)
        g.db.flush()
    if g.db.scalar(select(Membership).where(Membership.user_id == user.id)):
        raise Conflict(f"{email} is already a member", message_zh=f"{email} 已是成员")
    m = Membership(tenant_id=g.tenant.id, user_id=user.id, role=role, attributes=attrs)
    g.db.add(m)
    g.db.add(AuditLog(tenant_id=g.tenant.id, user_id=g.user.id, action="add_member", object_type="member", object_id=user.id, detail={"role": role}))
    return ok({"member": member_json(m, user)}, 201)


@api.patch("/tenants/<tenant>/members/<int:user_id>")
def update_member(user_id):
    require_role("admin")
    data = body_object()
    m, _ = _member(user_id)
    if "role" in data:
        if data["role"] not in ROLES:
            raise ValidationFailed("unknown role", message_zh="未知角色", errors=[field_error("/role", "unknown role", "未知角色")])
        if (data["role"] == "owner" or m.role == "owner") and g.actor.role != "owner":
            raise Forbidden("only an owner can change an owner", message_zh="只有所有者可以更改所有者")
        if data["role"] != "owner":
            keep_an_active_owner(g.db, m)
        m.role = data["role"]
    if "attributes" in data:
        if not isinstance(data["attributes"], dict):
            raise ValidationFailed("attributes must be an object", message_zh="attributes 应为对象", errors=[field_error("/attributes", "must be an object", "应为对象")])
        m.attributes = data["attributes"]
    g.db.add(AuditLog(tenant_id=g.tenant.id, user_id=g.user.id, action="update_member", object_type="member", object_id=user_id, detail=data))
    return ok({"ok": True})


@api.delete("/tenants/<tenant>/members/<int:user_id>")
def remove_member(user_id):
    require_role("admin")
    m, _ = _member(user_id)
    if m.role == "owner" and g.actor.role != "owner":
        raise Forbidden("only an owner can remove an owner", message_zh="只有所有者可以移除所有者")
    keep_an_active_owner(g.db, m)
    g.db.delete(m)
    g.db.add(AuditLog(tenant_id=g.tenant.id, user_id=g.user.id, action="remove_member", object_type="member", object_id=user_id, detail={}))
    return ok({"ok": True})


def _member(user_id: int) -> tuple[Membership, User]:
    if user_id >= 2**63:  # past 64 bits: names nothing (and PostgreSQL would refuse the number)
        raise NotFound("member", "成员")
    row = g.db.execute(select(Membership, User).join(User, User.id == Membership.user_id)
                       .where(Membership.user_id == user_id)).first()
    if row is None:
        raise NotFound("member", "成员")
    return row[0], row[1]


def reason_body():
    """The optional body of disable/enable: {"reason": "..."} (kept in the audit log)."""
    data = body_object() if request.data else {}
    for k in data:
        if k != "reason":
            raise ValidationFailed(f"unknown property '{k}'", message_zh=f"未知属性 '{k}'",
                                   errors=[field_error(f"/{k}", "unknown property", "未知属性")])
    return check_reason(data.get("reason"))


@api.post("/tenants/<tenant>/members/<int:user_id>/disable")
def disable_member(user_id):
    """The member loses access to this workspace (tokens included); nothing is deleted."""
    require_role("admin")
    reason = reason_body()
    m, u = _member(user_id)
    with platform().tenant_session(None) as everywhere:
        # their sessions end unless another workspace still needs them
        elsewhere = u.is_superuser or has_other_active_workspace(everywhere, u.id, g.tenant.id)
    disable_membership(g.db, m, u, actor_id=g.user.id, actor_role=g.actor.role, reason=reason, end_sessions=not elsewhere)
    return ok({"member": member_json(m, u)})


@api.post("/tenants/<tenant>/members/<int:user_id>/enable")
def enable_member(user_id):
    require_role("admin")
    reason = reason_body()
    m, u = _member(user_id)
    enable_membership(g.db, m, u, actor_id=g.user.id, actor_role=g.actor.role, reason=reason)
    return ok({"member": member_json(m, u)})


# -- tokens --------------------------------------------------------------------------------

def token_json(t: ApiToken) -> dict:
    iso = lambda d: d.isoformat() + "Z" if d else None  # noqa: E731
    return {"id": t.id, "name": t.name, "prefix": t.prefix, "role": t.role, "created_at": iso(t.created_at),
            "expires_at": iso(t.expires_at), "last_used_at": iso(t.last_used_at), "revoked": t.revoked_at is not None}


@api.get("/tenants/<tenant>/tokens")
def list_tokens():
    q = select(ApiToken).order_by(ApiToken.id)
    if not g.actor.at_least("admin"):
        q = q.where(ApiToken.user_id == g.user.id)
    return ok({"tokens": [token_json(t) for t in g.db.scalars(q)]})


@api.post("/tenants/<tenant>/tokens")
def create_token():
    if g.token is not None:
        raise Forbidden("tokens cannot create tokens; log in", message_zh="令牌不能创建令牌,请登录后操作")
    data = body_object()
    name = data.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 200:
        raise ValidationFailed("a token needs a name", message_zh="令牌需要名称", errors=[field_error("/name", "required", "必填")])
    role = data.get("role")
    if role is not None and role not in ROLES:
        raise ValidationFailed("unknown role", message_zh="未知角色", errors=[field_error("/role", "unknown role", "未知角色")])
    days = data.get("expires_in_days")
    if days is not None and (not isinstance(days, int) or not 1 <= days <= 3650):
        raise ValidationFailed("expires_in_days must be 1-3650", message_zh="expires_in_days 应为 1-3650",
                               errors=[field_error("/expires_in_days", "1-3650", "1-3650")])
    raw, prefix, digest = new_token()
    t = ApiToken(tenant_id=g.tenant.id, user_id=g.user.id, name=name, prefix=prefix, token_hash=digest, role=role,
                 expires_at=utcnow() + timedelta(days=days) if days else None)
    g.db.add(t)
    g.db.flush()
    g.db.add(AuditLog(tenant_id=g.tenant.id, user_id=g.user.id, action="create_token", object_type="token", object_id=t.id, detail={"name": name}))
    return ok({"token": raw, **token_json(t)}, 201)


@api.delete("/tenants/<tenant>/tokens/<int:token_id>")
def revoke_token(token_id):
    t = g.db.get(ApiToken, token_id)
    if t is None or t.tenant_id != g.tenant.id or (t.user_id != g.user.id and not g.actor.at_least("admin")):
        raise NotFound("token", "令牌")
    t.revoked_at = utcnow()
    g.db.add(AuditLog(tenant_id=g.tenant.id, user_id=g.user.id, action="revoke_token", object_type="token", object_id=t.id, detail={}))
    return ok({"ok": True})


@api.get("/tenants/<tenant>/audit")
def audit_log():
    require_role("admin")
    limit = int_arg("limit", 100, 1, 1000)
    before = int_arg("before", None, 1)
    q = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if before:
        q = q.where(AuditLog.id < before)
    rows = g.db.scalars(q).all()
    return ok({"entries": [{"id": a.id, "user_id": a.user_id, "action": a.action, "object_type": a.object_type,
                            "object_id": a.object_id, "detail": a.detail, "at": a.at.isoformat() + "Z"} for a in rows]})
