"""System tables (SQLAlchemy 2.0 ORM). Every schema change here ships an Alembic revision.

User tables are *not* here: each is a real SQL table created at run time by
``storage.ddl`` from the metadata rows below (``UserTable`` / ``Field``).
Tenant-owned rows carry ``tenant_id`` through ``TenantOwned``; the filter that keeps one
tenant out of another's rows is applied in one place, ``tenancy.py``.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Naive UTC: every timestamp is stored in UTC and shown in the tenant's timezone."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


# BigInteger ids on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TenantOwned:
    """Mixin: rows that belong to one tenant. See tenancy.py for the enforcement."""

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:
        return mapped_column(BigId, ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    locale: Mapped[str] = mapped_column(String(16), default="zh-CN")
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    #: changes with every metadata change of the tenant (platform/metagen.py)
    meta_stamp: Mapped[str | None] = mapped_column(String(16), nullable=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_superuser: Mapped[bool] = mapped_column(Boolean, default=False)
    locale: Mapped[str | None] = mapped_column(String(16), nullable=True)
    #: the whole account is disabled (instance administrators, user_status.py): no login, session or token
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


ROLES = ("owner", "admin", "builder", "member", "viewer")


class Membership(TenantOwned, Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id", name="uq_memberships_tenant_user"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    # Attributes used by row-level data scopes, e.g. {"region": "华东", "warehouse": "HZ"}.
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    #: set while a workspace admin has disabled this membership (user_status.py); nothing is deleted
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ApiToken(TenantOwned, Base):
    """Tokens are shown once; only their SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)  # cap below the user's role
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class App(TenantOwned, Base):
    __tablename__ = "apps"
    __table_args__ = (UniqueConstraint("tenant_id", "api_name", name="uq_apps_tenant_api_name"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    api_name: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class UserTable(TenantOwned, Base):
    """A user-defined table; its rows live in the physical table ``t_<id>``."""

    __tablename__ = "user_tables"
    __table_args__ = (UniqueConstraint("tenant_id", "api_name", name="uq_user_tables_tenant_api_name"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    app_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("apps.id", ondelete="SET NULL"), nullable=True)
    api_name: Mapped[str] = mapped_column(String(64))
    # Sub-tables are child tables of a parent table (rows carry parent_id + position).
    parent_table_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("user_tables.id"), nullable=True)
    definition: Mapped[dict] = mapped_column(JSON, default=dict)
    schema_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    @property
    def physical_name(self) -> str:
        return f"t_{self.id}"


class Field(TenantOwned, Base):
    __tablename__ = "fields"
    __table_args__ = (
        Index("ix_fields_table_api_name", "table_id", "api_name"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    table_id: Mapped[int] = mapped_column(BigId, ForeignKey("user_tables.id", ondelete="CASCADE"), index=True)
    api_name: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    definition: Mapped[dict] = mapped_column(JSON, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # The column holding the values: f_<id>, or f_<id>_r<n> after a type change (the old
    # column is kept for the retention period so that nothing is lost).
    physical: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Soft-deleted fields keep their column until the retention period ends.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    @property
    def column_name(self) -> str:
        return self.physical or f"f_{self.id}"


class View(TenantOwned, Base):
    __tablename__ = "views"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    table_id: Mapped[int] = mapped_column(BigId, ForeignKey("user_tables.id", ondelete="CASCADE"), index=True)
    api_name: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    definition: Mapped[dict] = mapped_column(JSON, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Dashboard(TenantOwned, Base):
    __tablename__ = "dashboards"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    app_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("apps.id", ondelete="SET NULL"), nullable=True)
    api_name: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AuditLog(TenantOwned, Base):
    """Who changed which definition, when, and how (metadata changes, logins, tokens)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class RecordHistory(TenantOwned, Base):
    """One row per change of a user record: the values before and after."""

    __tablename__ = "record_history"
    __table_args__ = (Index("ix_record_history_record", "table_id", "record_id", "version"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    table_id: Mapped[int] = mapped_column(BigId)
    record_id: Mapped[int] = mapped_column(BigId)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))  # create / update / delete / restore
    changes: Mapped[dict] = mapped_column(JSON, default=dict)  # {api_name: [old, new]}
    user_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AutonumberCounter(Base):
    """Sequence per autonumber field and period (the date part of the pattern)."""

    __tablename__ = "autonumber_counters"
    field_id: Mapped[int] = mapped_column(BigId, ForeignKey("fields.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)


class LoginAttempt(Base):
    """Failed logins, for throttling (per account and address, sliding window)."""

    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(320), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Attachment(TenantOwned, Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TemplateInstall(TenantOwned, Base):
    """A template installed into a tenant: the definitions as installed (the base of a later
    three-way merge when a newer version is applied) and what was created from them."""

    __tablename__ = "template_installs"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_template_installs_tenant_name"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    manifest: Mapped[dict] = mapped_column(JSON, default=dict)
    #: {"tables": {api_name: definition}, "views": {...}, "rules": {...}, "dashboards": {...}, "pages": {...}}
    installed: Mapped[dict] = mapped_column(JSON, default=dict)
    #: conflicts left for the admin after an upgrade
    conflicts: Mapped[list] = mapped_column(JSON, default=list)
    installed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class PublicPage(TenantOwned, Base):
    """A page reachable without login (e.g. the customer's order tracking page), configured
    by a JSON definition that says exactly which records and fields it may show."""

    __tablename__ = "public_pages"
    __table_args__ = (UniqueConstraint("tenant_id", "slug", name="uq_public_pages_tenant_slug"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class UserSession(Base):
    """A browser login. The signed cookie carries only a random id whose hash is stored here,
    so logging out (or an admin disabling the user) ends the session even for a copied
    cookie."""

    __tablename__ = "user_sessions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(255), nullable=True)


class RecordComment(TenantOwned, Base):
    """A comment on a record (the conversation next to its history in the record form)."""

    __tablename__ = "record_comments"
    __table_args__ = (Index("ix_record_comments_record", "tenant_id", "table_id", "record_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    table_id: Mapped[int] = mapped_column(BigId, ForeignKey("user_tables.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(BigId)
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
