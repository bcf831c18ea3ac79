"""Disabling and enabling people: reversible, and nothing is deleted.

* **The account** (instance administrators; ``zhongshu user disable EMAIL``): no login, every
  browser session ends at once, every API token is refused, in every workspace.
* **One membership** (a workspace's owners and admins; ``--tenant``): no access to that
  workspace, its API tokens included. The person's browser sessions end at once unless they
  still have another active workspace, where they keep working.

Records, history, comments, tokens and the membership stay as they are; enabling again gives
the access back (ended sessions stay ended: the person logs in again). Every change is written
to the audit log: a membership's to its workspace's log, an account's to the log of every
workspace the person belongs to (and to the ``zhongshu.audit`` server log).

The rules: nobody disables themselves; only an owner disables or enables an owner; the last
active owner of a workspace cannot be disabled there; an instance administrator's access
does not depend on a membership, so only their account can be disabled, and not the last
active one.
"""
from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import user_sessions
from .errors import Conflict, Forbidden, ValidationFailed, field_error
from .models import AuditLog, Membership, Tenant, User, utcnow

log = logging.getLogger("zhongshu.audit")
REASON_MAX = 500


def check_reason(reason) -> str | None:
    """The optional reason kept in the audit log."""
    if reason is None:
        return None
    if not isinstance(reason, str) or len(reason) > REASON_MAX:
        raise ValidationFailed(f"reason must be text of at most {REASON_MAX} characters",
                               message_zh=f"reason 应为不超过 {REASON_MAX} 个字符的文本",
                               errors=[field_error("/reason", f"at most {REASON_MAX} characters", f"不超过 {REASON_MAX} 个字符")])
    return reason.strip() or None


def active_owner_ids(s: Session, tenant_id: int) -> set[int]:
    """Owners of the workspace whose membership and account are both enabled."""
    return set(s.scalars(select(Membership.user_id).join(User, User.id == Membership.user_id).where(
        Membership.tenant_id == tenant_id, Membership.role == "owner", Membership.disabled_at.is_(None),
        User.disabled.is_(False))))


def keep_an_active_owner(s: Session, m: Membership) -> None:
    """A workspace never loses its last active owner (role change, removal, disabling)."""
    if m.role == "owner" and active_owner_ids(s, m.tenant_id) == {m.user_id}:
        raise Conflict("this is the last active owner of the workspace; make someone else owner first",
                       message_zh="这是工作区最后一位有效的所有者；请先指定其他所有者", code="last_owner")


def has_other_active_workspace(s: Session, user_id: int, tenant_id: int) -> bool:
    """Needs a session that sees every tenant."""
    return s.scalar(select(func.count()).select_from(Membership).where(
        Membership.user_id == user_id, Membership.tenant_id != tenant_id, Membership.disabled_at.is_(None))) > 0


def _detail(reason: str | None, via: str) -> dict:
    return {"via": via, **({"reason": reason} if reason else {})}


# -- one membership ------------------------------------------------------------------------

def disable_membership(s: Session, m: Membership, user: User, *, actor_id: int | None, actor_role: str,
                       reason: str | None = None, end_sessions: bool, via: str = "api") -> bool:
    """Disables ``user``'s membership ``m``; ``end_sessions`` when this was their last active
    workspace. Returns False when it was disabled already (nothing changes, nothing logged)."""
    if actor_id == user.id:
        raise Conflict("you cannot disable yourself", message_zh="不能停用自己", code="cannot_disable_self")
    if m.role == "owner" and actor_role != "owner":
        raise Forbidden("only an owner can disable an owner", message_zh="只有所有者可以停用所有者")
    if user.is_superuser:
        raise Conflict("an instance administrator's access does not depend on a membership; an instance "
                       "administrator can disable the account", message_zh="实例管理员的访问不依赖成员身份；请由实例管理员停用该账号",
                       code="instance_admin")
    if m.disabled_at is not None:
        return False
    keep_an_active_owner(s, m)
    m.disabled_at = utcnow()
    if end_sessions:
        user_sessions.revoke_all(s, user.id)
    s.add(AuditLog(tenant_id=m.tenant_id, user_id=actor_id, action="disable_member", object_type="member",
                   object_id=user.id, detail=_detail(reason, via)))
    return True


def enable_membership(s: Session, m: Membership, user: User, *, actor_id: int | None, actor_role: str,
                      reason: str | None = None, via: str = "api") -> bool:
    if m.role == "owner" and actor_role != "owner":
        raise Forbidden("only an owner can enable an owner", message_zh="只有所有者可以启用所有者")
    if m.disabled_at is None:
        return False
    m.disabled_at = None
    s.add(AuditLog(tenant_id=m.tenant_id, user_id=actor_id, action="enable_member", object_type="member",
                   object_id=user.id, detail=_detail(reason, via)))
    return True


# -- the whole account (a session that sees every tenant) ----------------------------------

def _audit_everywhere(s: Session, user: User, action: str, actor_id: int | None, detail: dict) -> None:
    tenant_ids = s.scalars(select(Membership.tenant_id).where(Membership.user_id == user.id)).all()
    for tid in tenant_ids:
        s.add(AuditLog(tenant_id=tid, user_id=actor_id, action=action, object_type="user", object_id=user.id, detail=detail))
    log.info("%s %s (user %s) by %s: %s", action, user.email, user.id, actor_id if actor_id is not None else detail["via"], detail)


def sole_owner_of(s: Session, user_id: int) -> list[str]:
    """Slugs of the workspaces where this user is the only active owner."""
    slugs = s.execute(select(Tenant.id, Tenant.slug).join(Membership, Membership.tenant_id == Tenant.id).where(
        Membership.user_id == user_id, Membership.role == "owner", Membership.disabled_at.is_(None))).all()
    return [slug for tid, slug in slugs if active_owner_ids(s, tid) == {user_id}]


def disable_account(s: Session, user: User, *, actor_id: int | None, reason: str | None = None, via: str = "api") -> dict:
    """Returns ``changed``, ``ended_sessions`` and ``workspaces_without_owner`` (slugs whose
    only active owner this was: an instance administrator should appoint one)."""
    if actor_id == user.id:
        raise Conflict("you cannot disable yourself", message_zh="不能停用自己", code="cannot_disable_self")
    if user.disabled:
        return {"changed": False, "ended_sessions": 0, "workspaces_without_owner": []}
    if user.is_superuser and not s.scalar(select(func.count()).select_from(User).where(
            User.is_superuser.is_(True), User.disabled.is_(False), User.id != user.id)):
        raise Conflict("this is the last active instance administrator", message_zh="这是最后一位有效的实例管理员",
                       code="last_instance_admin")
    orphaned = sole_owner_of(s, user.id)
    user.disabled = True
    ended = user_sessions.revoke_all(s, user.id)
    _audit_everywhere(s, user, "disable_user", actor_id, _detail(reason, via))
    return {"changed": True, "ended_sessions": ended, "workspaces_without_owner": orphaned}


def enable_account(s: Session, user: User, *, actor_id: int | None, reason: str | None = None, via: str = "api") -> bool:
    if not user.disabled:
        return False
    user.disabled = False
    _audit_everywhere(s, user, "enable_user", actor_id, _detail(reason, via))
    return True
