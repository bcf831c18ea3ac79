"""Passwords (Argon2id), API tokens (stored as SHA-256), login throttling, input checks."""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select

from .errors import ValidationFailed, field_error
from .models import LoginAttempt, utcnow

def _make_hasher() -> PasswordHasher:
    # Argon2id with the library's recommended parameters (RFC 9106, low-memory profile).
    # Test suites may set ZHONGSHU_ARGON2_PROFILE=test for cheap hashes; never in production.
    if os.environ.get("ZHONGSHU_ARGON2_PROFILE") == "test":
        from argon2.profiles import CHEAPEST

        return PasswordHasher.from_parameters(CHEAPEST)
    return PasswordHasher()


_hasher = _make_hasher()
TOKEN_PREFIX = "zs_"
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
# A fixed hash to verify against when the user does not exist, so both paths take as long.
_DUMMY = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def validate_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < 8 or len(password) > 256:
        raise ValidationFailed("the password needs 8 to 256 characters", message_zh="密码需要 8 到 256 个字符",
                               errors=[field_error("/password", "8 to 256 characters", "8 到 256 个字符")])


def validate_email(email: str) -> None:
    if not isinstance(email, str) or not EMAIL_RE.match(email):
        raise ValidationFailed(f"{email!r} is not an email address", message_zh=f"{email!r} 不是有效的邮箱",
                               errors=[field_error("/email", "not an email address", "不是有效的邮箱")])


def validate_slug(slug: str) -> None:
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        raise ValidationFailed("the tenant id needs 2-63 lower-case letters, digits or '-'",
                               message_zh="租户标识需要 2-63 个小写字母、数字或 '-'",
                               errors=[field_error("/slug", "2-63 lower-case letters, digits or '-'", "2-63 个小写字母、数字或 '-'")])


def new_token() -> tuple[str, str, str]:
    """Returns (token shown once, prefix kept for display, sha256 kept for lookup)."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return raw, raw[:10], token_hash(raw)


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


WINDOW = timedelta(minutes=15)


def login_blocked(session, key: str, limit: int) -> bool:
    since = utcnow() - WINDOW
    n = session.scalar(select(func.count()).select_from(LoginAttempt).where(LoginAttempt.key == key, LoginAttempt.at >= since))
    return n >= limit


def record_failure(session, key: str) -> None:
    session.add(LoginAttempt(key=key))
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < utcnow() - WINDOW * 4))


def clear_failures(session, key: str) -> None:
    session.execute(delete(LoginAttempt).where(LoginAttempt.key == key))
