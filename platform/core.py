"""The platform object: database, schema cache, write hooks, and the services built on them.

One instance per process (``app.extensions["zhongshu"]``); the CLI, the worker and the
tests use it without Flask as well::

    zs = Platform(load_config())
    with zs.tenant_session(tenant_id, write=True) as s:
        recs = zs.records(s, tenant, actor)
        recs.create(recs.schema("orders"), {...})
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import event, select

from .config import load_config
from . import metagen
from .db import make_engine, make_sessionmaker, writer
from .fields.base import Ctx
from .metadata import Metadata
from .models import Base, Membership, Tenant, User
from .storage.access import Actor
from .storage.records import Hooks, Records
from .storage.schema import SchemaCache
from .tenancy import tenant_session


class Platform:
    def __init__(self, config: dict | None = None):
        self.config = load_config(config)
        pool = {k: int(self.config[c]) for k, c in (("pool_size", "DB_POOL_SIZE"), ("max_overflow", "DB_MAX_OVERFLOW"))
                if self.config.get(c) not in (None, "") and not self.config["DATABASE_URL"].startswith("sqlite")}
        self.engine = make_engine(self.config["DATABASE_URL"], **pool)
        self.Session = make_sessionmaker(self.engine)
        self.WriteSession = make_sessionmaker(writer(self.engine))
        self.cache = SchemaCache(int(self.config["SCHEMA_CACHE_TABLES"]), int(self.config["METADATA_CACHE_TENANTS"]),
                                 int(self.config.get("SCHEMA_CACHE_COLUMNS") or 0) or None)
        self.cache.advisor.enabled = bool(self.config.get("AUTO_INDEX", True))
        self.cache.advisor.min_rows = int(self.config.get("AUTO_INDEX_MIN_ROWS", 20000))
        #: The platform's clock (naive UTC). Tests replace it to make time pass.
        self.clock = lambda: datetime.now(timezone.utc).replace(tzinfo=None)
        cache = self.cache

        @event.listens_for(self.Session, "after_rollback")
        @event.listens_for(self.WriteSession, "after_rollback")
        def _forget_cached(session):
            metagen.end_of_transaction(session)
            keys = session.info.pop("zs_cached_keys", None)
            if keys:
                cache.forget(keys)

        @event.listens_for(self.Session, "after_commit")
        @event.listens_for(self.WriteSession, "after_commit")
        def _keep_cached(session):
            metagen.end_of_transaction(session)
            session.info.pop("zs_cached_keys", None)

        self.hooks = Hooks()
        self.dialect = self.engine.dialect.name
        #: Started services (worker, scheduler) register a stop function here.
        self.stoppers: list = []
        # The runtime hooks computed fields and rules into the write path.
        from zhongshu.runtime.setup import install

        install(self)

    # -- schema ----------------------------------------------------------------------
    def create_all(self) -> None:
        """Creates the system tables directly (tests); production uses ``zhongshu migrate``."""
        import zhongshu.runtime.models  # noqa: F401  (registers the runtime's tables)

        Base.metadata.create_all(self.engine)

    def migrate(self) -> None:
        from .migrations import upgrade

        upgrade(self.engine)

    # -- sessions --------------------------------------------------------------------
    @contextmanager
    def tenant_session(self, tenant_id: int | None, *, write: bool = False):
        """A session whose queries see only this tenant's rows; commits on success."""
        s = tenant_session(self.WriteSession if write else self.Session, tenant_id)
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def open_session(self, tenant_id: int | None, *, write: bool = False):
        """A tenant-scoped session the caller commits and closes (one per API request)."""
        return tenant_session(self.WriteSession if write else self.Session, tenant_id)

    def ctx(self, tenant: Tenant, actor: Actor, now: datetime | None = None) -> Ctx:
        return Ctx(tz=ZoneInfo(tenant.timezone or self.config["TIMEZONE"]), user_id=actor.user_id,
                   now=now or self.clock(), locale=tenant.locale,
                   user_attributes=actor.attributes, dialect=self.dialect,
                   base_url=str(self.config.get("PUBLIC_URL") or "http://127.0.0.1:5000").rstrip("/"), tenant_slug=tenant.slug)

    def records(self, session, tenant: Tenant, actor: Actor, *, now: datetime | None = None) -> Records:
        return Records(session, tenant_id=tenant.id, actor=actor, ctx=self.ctx(tenant, actor, now), cache=self.cache, hooks=self.hooks)

    def metadata(self, session, tenant: Tenant, actor: Actor) -> Metadata:
        return Metadata(session, tenant_id=tenant.id, user_id=actor.user_id, cache=self.cache, ctx=self.ctx(tenant, actor))

    # -- tenants and users -----------------------------------------------------------
    def tenant_by_slug(self, slug: str) -> Tenant | None:
        with self.tenant_session(None) as s:
            return s.scalar(select(Tenant).where(Tenant.slug == slug))

    def create_tenant(self, slug: str, name: str, *, timezone_name: str | None = None, locale: str | None = None,
                      owner_email: str | None = None) -> Tenant:
        from .auth import validate_slug
        from .errors import Conflict, ValidationFailed, field_error

        validate_slug(slug)
        if timezone_name is not None:
            try:
                ZoneInfo(timezone_name)
            except Exception:
                raise ValidationFailed(f"unknown time zone {timezone_name!r}", message_zh=f"未知时区 {timezone_name!r}",
                                       errors=[field_error("/timezone", "unknown time zone", "未知时区")]) from None
        if self.tenant_by_slug(slug) is not None:
            raise Conflict(f"a tenant {slug} already exists", message_zh=f"租户 {slug} 已存在")
        with self.tenant_session(None, write=True) as s:
            t = Tenant(slug=slug, name=name, timezone=timezone_name or self.config["TIMEZONE"],
                       locale=locale or self.config["LOCALE"], settings={})
            s.add(t)
            s.flush()
            if owner_email:
                u = s.scalar(select(User).where(User.email == owner_email.lower()))
                if u is None:
                    raise ValueError(f"no user {owner_email}")
                s.add(Membership(tenant_id=t.id, user_id=u.id, role="owner", attributes={}))
            return t

    def create_user(self, email: str, password: str | None, *, name: str = "", superuser: bool = False) -> User:
        from .auth import hash_password, validate_email, validate_password

        validate_email(email)
        if password is not None:
            validate_password(password)
        with self.tenant_session(None, write=True) as s:
            if s.scalar(select(User).where(User.email == email.lower())) is not None:
                from .errors import Conflict

                raise Conflict(f"a user {email} already exists", message_zh=f"用户 {email} 已存在")
            u = User(email=email.lower(), name=name or email.split("@")[0],
                     password_hash=hash_password(password) if password else None, is_superuser=superuser)
            s.add(u)
            s.flush()
            return u

    def add_member(self, tenant_id: int, user_id: int, role: str, attributes: dict | None = None) -> None:
        with self.tenant_session(tenant_id, write=True) as s:
            s.add(Membership(tenant_id=tenant_id, user_id=user_id, role=role, attributes=attributes or {}))

    def close(self) -> None:
        self.cache.advisor.drain(30)
        for stop in reversed(self.stoppers):
            try:
                stop()
            except Exception:  # pragma: no cover - best effort on shutdown
                pass
        self.engine.dispose()
