"""Server-side browser sessions (table ``user_sessions``).

The signed cookie carries a random token; only its SHA-256 is stored. Every request looks
the token up together with its user in one indexed query, so logging out, revoking a
session from another device, disabling the user or changing the password ends the session
even for a copy of the cookie made before.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from .models import User, UserSession, utcnow

#: last_seen_at is written at most this often per session (a write per request would turn
#: every page view into a write transaction)
TOUCH_EVERY = timedelta(minutes=1)
#: ended sessions are kept this long after their expiry (to answer "where was I logged in"), then deleted
KEEP_ENDED = timedelta(days=30)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def password_fingerprint(user: User) -> str:
    """A short digest of the password hash, kept in the cookie: a password changed by any
    means (API, CLI, SQL) no longer matches it. A digest, so no part of the hash leaves."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


def start(s: Session, user: User, lifetime: timedelta, ip: str | None, user_agent: str | None) -> tuple[str, UserSession]:
    """A new session row; returns (the raw token for the cookie, the row)."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    row = UserSession(user_id=user.id, token_hash=_hash(raw), created_at=now, last_seen_at=now,
                      expires_at=now + lifetime, ip=(ip or None) and ip[:64], user_agent=(user_agent or None) and user_agent[:255])
    s.add(row)
    s.execute(delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at < now - KEEP_ENDED))
    s.flush()
    return raw, row


def find(s: Session, raw: str) -> tuple[UserSession, User] | None:
    """The session and its user, whatever their state (one query on the unique hash)."""
    row = s.execute(select(UserSession, User).join(User, User.id == UserSession.user_id)
                    .where(UserSession.token_hash == _hash(raw))).first()
    return (row[0], row[1]) if row else None


def is_live(us: UserSession, now: datetime | None = None) -> bool:
    return us.revoked_at is None and us.expires_at > (now or utcnow())


def needs_touch(us: UserSession, now: datetime | None = None) -> bool:
    return (now or utcnow()) - us.last_seen_at >= TOUCH_EVERY


def touch(s: Session, session_id: int) -> None:
    s.execute(update(UserSession).where(UserSession.id == session_id).values(last_seen_at=utcnow()))


def revoke(s: Session, session_id: int) -> None:
    s.execute(update(UserSession).where(UserSession.id == session_id, UserSession.revoked_at.is_(None))
              .values(revoked_at=utcnow()))


def revoke_token(s: Session, raw: str) -> None:
    s.execute(update(UserSession).where(UserSession.token_hash == _hash(raw), UserSession.revoked_at.is_(None))
              .values(revoked_at=utcnow()))


def revoke_all(s: Session, user_id: int, keep: int | None = None) -> int:
    """Ends every live session of a user (but ``keep``); call it when the user is disabled
    or their password changes. Returns how many were ended."""
    q = update(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
    if keep is not None:
        q = q.where(UserSession.id != keep)
    return s.execute(q.values(revoked_at=utcnow())).rowcount or 0


def live_sessions(s: Session, user_id: int) -> list[UserSession]:
    now = utcnow()
    return list(s.scalars(select(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None),
                                                    UserSession.expires_at > now).order_by(UserSession.id.desc())))
