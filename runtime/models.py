"""System tables of the runtime: rules, run log, outbox, timers, approvals, field locks,
the scheduler lease, connector installs and the inbound inbox. They share the platform's
metadata (one Alembic history); tenant-owned rows use the same isolation mixin."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zhongshu.platform.models import Base, BigId, TenantOwned, utcnow


class Rule(TenantOwned, Base):
    """trigger -> condition -> actions, stored as JSON (schema: rule.json)."""

    __tablename__ = "rules"
    __table_args__ = (UniqueConstraint("tenant_id", "api_name", name="uq_rules_tenant_api_name"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    table_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("user_tables.id", ondelete="CASCADE"), nullable=True, index=True)
    api_name: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: why a rule is off when the platform switched it off (e.g. a connector not configured)
    disabled_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    owner_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class RuleRun(TenantOwned, Base):
    """One evaluation of a rule: inputs, condition result, each action's outcome."""

    __tablename__ = "rule_runs"
    __table_args__ = (
        Index("ix_rule_runs_rule", "tenant_id", "rule_id", "id"),
        Index("ix_rule_runs_record", "tenant_id", "table_id", "record_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    table_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    record_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    trigger: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # ok / skipped / rejected / error / dry_run
    condition: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    actions: Mapped[list] = mapped_column(JSON, default=list)
    inputs: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[float] = mapped_column(default=0.0)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class OutboxJob(TenantOwned, Base):
    """A side effect written in the transaction that caused it, run later by a worker."""

    __tablename__ = "outbox"
    # No index on tenant_id alone: the unique (tenant_id, …) index serves lookups and cascades
    # by tenant, and a second one would cost every stored webhook and job one more index write.
    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id", ondelete="CASCADE"))
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_outbox_tenant_key"),
        Index("ix_outbox_due", "status", "priority", "run_at"),
        # the relay's in-flight count (pending under a live publish lease) and expired
        # leases read a handful of rows through it, not every pending row of a deep backlog
        Index("ix_outbox_lease", "status", "locked_until"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    #: pending / running / done / dead (dead = in the dead-letter list)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    #: 0 = order processing ... 9 = deferrable (analytics, low-priority notices)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    run_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    rule_run_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class RuleTimer(TenantOwned, Base):
    """An armed time-based trigger (SLA timer) of one rule for one record."""

    __tablename__ = "rule_timers"
    __table_args__ = (
        UniqueConstraint("rule_id", "record_id", "anchor", name="uq_rule_timers_rule_record_anchor"),
        Index("ix_rule_timers_due", "status", "fire_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[int] = mapped_column(BigId, ForeignKey("rules.id", ondelete="CASCADE"))
    table_id: Mapped[int] = mapped_column(BigId)
    record_id: Mapped[int] = mapped_column(BigId)
    anchor: Mapped[str] = mapped_column(String(64))  # the date value the timer was armed from
    fire_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="armed")  # armed / fired / cancelled
    fired_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class RuleState(TenantOwned, Base):
    """Per rule and record: the last condition value, for edge-triggered rules."""

    __tablename__ = "rule_states"
    __table_args__ = (UniqueConstraint("rule_id", "record_id", name="uq_rule_states_rule_record"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[int] = mapped_column(BigId, ForeignKey("rules.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(BigId)
    value: Mapped[bool] = mapped_column(Boolean, default=False)


class Approval(TenantOwned, Base):
    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_status", "tenant_id", "status"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    table_id: Mapped[int] = mapped_column(BigId)
    record_id: Mapped[int] = mapped_column(BigId)
    title: Mapped[str] = mapped_column(String(500))
    approvers: Mapped[dict] = mapped_column(JSON, default=dict)  # {"roles": [...], "users": [...]}
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending / approved / rejected
    payload: Mapped[dict] = mapped_column(JSON, default=dict)  # what the decision should do
    decided_by: Mapped[int | None] = mapped_column(BigId, nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class FieldLock(TenantOwned, Base):
    """A field of one record that refuses edits (e.g. the address once the waybill is printed)."""

    __tablename__ = "field_locks"
    __table_args__ = (UniqueConstraint("table_id", "record_id", "field", name="uq_field_locks_record_field"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    table_id: Mapped[int] = mapped_column(BigId)
    record_id: Mapped[int] = mapped_column(BigId)
    field: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(String(500))
    rule_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SchedulerLease(Base):
    """Leader election: the holder of an unexpired lease is the one scheduler that fires."""

    __tablename__ = "scheduler_leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class ConnectorInstall(TenantOwned, Base):
    """A connector enabled for a tenant: its config, encrypted credentials, webhook token."""

    __tablename__ = "connector_installs"
    __table_args__ = (UniqueConstraint("tenant_id", "api_name", name="uq_connector_installs_tenant_api_name"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    connector: Mapped[str] = mapped_column(String(100))
    api_name: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    credentials: Mapped[str | None] = mapped_column(Text, nullable=True)  # Fernet token
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    webhook_token: Mapped[str] = mapped_column(String(64), unique=True)
    cursor: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    last_test: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    last_pull_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: why the last scheduled pull failed (None after a successful one)
    last_pull_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: when the last inbound event (webhook or pulled) was accepted for this install
    last_event_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class InboxEvent(TenantOwned, Base):
    """An inbound payload stored raw before anything else happens to it."""

    __tablename__ = "inbox"
    # No index on tenant_id alone: the unique (tenant_id, …) index serves lookups and cascades
    # by tenant, and a second one would cost every stored webhook and job one more index write.
    tenant_id: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.id", ondelete="CASCADE"))
    __table_args__ = (
        UniqueConstraint("tenant_id", "dedupe_key", name="uq_inbox_tenant_dedupe"),
        Index("ix_inbox_status", "status", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    install_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    global_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    event_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    payload: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    #: received / processed / duplicate / error
    status: Mapped[str] = mapped_column(String(16), default="received")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    record_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
