"""Inbound intake: webhook → durable inbox → ``inbox.process`` → records.

The rules that make intake lose nothing:

* A webhook is verified first (a wrong signature stores **nothing** and answers 401).
* Every accepted event is written raw to ``inbox`` (unique per tenant on ``dedupe_key``, so
  a re-sent identical event is acknowledged but not stored twice) **together with** its
  ``inbox.process`` outbox job, in one transaction; only then is the sender acknowledged.
  Concurrent webhooks share that transaction (group commit, see ``AcceptedWebhook``); each
  still answers only after the commit. If the database cannot take it, the sender gets
  503 and retries.
* A verified body that cannot be understood (garbage, not JSON, a connector bug) is stored
  raw with status ``error`` and the reason: reviewable, and retryable once fixed.
* Processing maps the event to records (as the system actor, so rules and computed fields
  run). An order whose global id (sha256(channel:external_id)) already exists is a
  duplicate: the row becomes ``duplicate`` with error "重复推送" and nothing is written,
  except that status-type events (paid, status changed, updated, ...) update the existing
  order. Mapping and validation problems make the row ``error`` with the reason (not
  retried forever); database trouble raises so that the worker retries.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any, Mapping

from sqlalchemy import JSON, DateTime, LargeBinary, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from zhongshu.connectors.api import (ConfigError, ConnectorError, DecryptionError, InboundEvent, MappingError,
                                     SignatureError, UnknownConnector, WebhookResponse, event_key)
from zhongshu.platform.errors import ApiError, NotFound
from zhongshu.platform.models import Tenant, utcnow
from zhongshu.platform.storage.access import Actor
from zhongshu.runtime.models import ConnectorInstall, InboxEvent
from zhongshu.runtime.outbox import PRIORITY_ORDER, enqueue, handler
from zhongshu.runtime.wakeup import jobs_committed

from . import keys
from .group_commit import GroupCommitter
from .installs import connector_for

log = logging.getLogger("zhongshu.connectors.intake")

DEFAULT_WEBHOOK_MAX_BYTES = 1024 * 1024
DUPLICATE_REASON = "重复推送"
SYSTEM_ACTOR = Actor(user_id=None, role="owner", is_system=True)
#: request headers never kept in the inbox
DROP_HEADERS = {"authorization", "cookie", "proxy-authorization", "x-csrf-token"}
#: event types that create an object; a second one for an existing order is a duplicate push.
#: Every other type (paid, status changed, updated, address changed, logistics) updates it.
CREATE_EVENTS = {"order.created"}
#: fields the platform fills from the event when the table has them and the mapping left them empty
IDENTITY_FIELDS = ("global_id", "channel", "external_id")
DB_DOWN = (OperationalError, PoolTimeout)


def webhook_max_bytes(platform) -> int:
    v = platform.config.get("WEBHOOK_MAX_BYTES") or os.environ.get("ZHONGSHU_WEBHOOK_MAX_BYTES")
    return int(v) if v else DEFAULT_WEBHOOK_MAX_BYTES


def clean_headers(headers: Mapping[str, str] | Any) -> dict:
    items = headers.items() if hasattr(headers, "items") else headers
    return {str(k): str(v) for k, v in items if str(k).lower() not in DROP_HEADERS}


def _insert(conn):
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def _job_key(inbox_id: int, attempt: int = 0) -> str:
    return f"inbox:{inbox_id}" if not attempt else f"inbox:{inbox_id}:retry:{attempt}"


def _enqueue_process(conn, tenant_id: int, inbox_id: int, attempt: int = 0) -> None:
    enqueue(conn, tenant_id=tenant_id, kind="inbox.process", payload={"inbox_id": inbox_id},
            key=_job_key(inbox_id, attempt), priority=PRIORITY_ORDER)


class StaleInstall(Exception):
    """The install changed (disabled, deleted, new token or credentials) after this process
    read it: nothing was stored; look it up again."""


@dataclass(frozen=True)
class InstallGuard:
    """What a webhook's insert re-checks in the database: the install is still enabled, has
    this token and these (encrypted) credentials. Lets intake trust a briefly cached copy."""
    install_id: int
    tenant_id: int
    token: str
    credentials: str | None

    def params(self) -> dict:
        return {"g_token": self.token, "g_creds": self.credentials or ""}

    def still_valid(self, conn) -> bool:
        return bool(conn.execute(_GUARD_SELECT, {"install_id": self.install_id, "tenant_id": self.tenant_id,
                                                 **self.params()}).scalar())


# The intake statements are written once as SQL (no per-request statement building: that was
# most of intake's CPU). On PostgreSQL one statement stores the inbox row and its
# inbox.process job; the guard makes the insert conditional on the install being unchanged.
_GUARD = ("EXISTS (SELECT 1 FROM connector_installs ci WHERE ci.id = :install_id AND ci.tenant_id = :tenant_id "
          "AND ci.webhook_token = :g_token AND ci.enabled AND COALESCE(ci.credentials, '') = :g_creds)")
_GUARD_SELECT = text(f"SELECT 1 WHERE {_GUARD}")
_INBOX_COLUMNS = ("tenant_id, install_id, dedupe_key, global_id, event_type, external_id, headers, body, payload, "
                  "status, received_at")
_INBOX_VALUES = {
    "postgresql": ("CAST(:tenant_id AS BIGINT), CAST(:install_id AS BIGINT), CAST(:dedupe_key AS VARCHAR), "
                   "CAST(:global_id AS VARCHAR), CAST(:event_type AS VARCHAR), CAST(:external_id AS VARCHAR), "
                   "CAST(:headers AS JSON), CAST(:body AS BYTEA), CAST(:payload AS JSON), 'received', "
                   "CAST(:now AS TIMESTAMP)"),
    "sqlite": ":tenant_id, :install_id, :dedupe_key, :global_id, :event_type, :external_id, :headers, :body, "
              ":payload, 'received', :now",
}
_ON_CONFLICT = "ON CONFLICT (tenant_id, dedupe_key) DO NOTHING RETURNING id"
_TYPES = [bindparam("headers", type_=JSON), bindparam("payload", type_=JSON), bindparam("body", type_=LargeBinary),
          bindparam("now", type_=DateTime)]


def _statement(dialect: str, guarded: bool, cache={}):  # noqa: B006 - the cache is the point
    key = (dialect, guarded)
    if key not in cache:
        values = _INBOX_VALUES["postgresql" if dialect == "postgresql" else "sqlite"]
        where = _GUARD if guarded else "1 = 1"  # SQLite needs a WHERE before ON CONFLICT in INSERT … SELECT
        inbox = f"INSERT INTO inbox ({_INBOX_COLUMNS}) SELECT {values} WHERE {where} {_ON_CONFLICT}"
        if dialect == "postgresql":
            sql = (f"WITH ins AS ({inbox}) INSERT INTO outbox (tenant_id, kind, payload, idempotency_key, status, "
                   f"priority, attempts, max_attempts, run_at, created_at) "
                   f"SELECT CAST(:tenant_id AS BIGINT), 'inbox.process', json_build_object('inbox_id', ins.id), "
                   f"'inbox:' || ins.id, 'pending', {PRIORITY_ORDER}, 0, 8, CAST(:now AS TIMESTAMP), "
                   f"CAST(:now AS TIMESTAMP) FROM ins "
                   f"ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING CAST(payload->>'inbox_id' AS BIGINT)")
        else:
            sql = inbox
        cache[key] = text(sql).bindparams(*_TYPES)
    return cache[key]


def _insert_event(conn, values: dict, guard: InstallGuard | None) -> int | None:
    """Store one inbox row and its ``inbox.process`` job unless the dedupe key is there (and,
    with a guard, only while the install is unchanged). Returns the new row's id or None."""
    params = dict(values, **(guard.params() if guard else {}))
    new_id = conn.execute(_statement(conn.dialect.name, guard is not None), params).scalar()
    if new_id is not None and conn.dialect.name != "postgresql":
        _enqueue_process(conn, values["tenant_id"], new_id)
    return new_id


def store_events(conn, tenant_id: int, install_id: int | None, events: list[InboundEvent], *,
                 headers: dict | None = None, body: bytes | None = None,
                 guard: InstallGuard | None = None) -> list[int]:
    """Insert events into the inbox (skipping ones already there by ``dedupe_key``) and
    enqueue one ``inbox.process`` job per new row, in the caller's transaction.
    Returns the ids of the new rows. With ``guard``, raises :class:`StaleInstall` (and the
    caller rolls back) when the install changed meanwhile."""
    new_ids = []
    now = utcnow()
    for ev in events:
        new_id = _insert_event(conn, dict(
            tenant_id=tenant_id, install_id=install_id, dedupe_key=ev.dedupe_key, global_id=ev.global_id,
            event_type=ev.event_type[:100], external_id=ev.external_id[:200], headers=headers or {},
            body=body if len(events) == 1 else None, payload=ev.to_dict(), now=now), guard)
        if new_id is not None:
            new_ids.append(new_id)
        elif guard is not None and not guard.still_valid(conn):
            raise StaleInstall()  # not a duplicate: the install is no longer what we read
    return new_ids


# -- group commit of accepted webhooks ----------------------------------------------------------
#
# Concurrent webhooks are stored together (group_commit.py): one transaction, and on
# PostgreSQL one statement, for every webhook waiting at that moment; each request answers
# only after that transaction committed. Rows keep their per-request guarantees: each is
# guarded by its own install check, a dedupe key already stored (or stored earlier in the
# same batch) is a duplicate, and a request whose install changed gets StaleInstall alone.

# All rows travel as one JSON parameter (json_to_recordset): one cheap serialisation in
# Python instead of a dozen typed arrays; the body goes as hex (it need not be UTF-8). It is
# run on the driver's cursor (psycopg placeholders), prepared on the server after a few uses.
_BATCH_INSERT_PG = (
    "WITH v AS (SELECT * FROM json_to_recordset(CAST(%(rows)s AS JSON)) AS v(n INT, tenant_id BIGINT, "
    "install_id BIGINT, dedupe_key VARCHAR, global_id VARCHAR, event_type VARCHAR, external_id VARCHAR, "
    "headers JSON, body TEXT, payload JSON, g_token VARCHAR, g_creds TEXT)), "
    f"ins AS (INSERT INTO inbox ({_INBOX_COLUMNS}) "
    "SELECT v.tenant_id, v.install_id, v.dedupe_key, v.global_id, v.event_type, v.external_id, "
    "v.headers, decode(v.body, 'hex'), v.payload, 'received', CAST(%(now)s AS TIMESTAMP) FROM v "
    "WHERE EXISTS (SELECT 1 FROM connector_installs ci WHERE ci.id = v.install_id AND ci.tenant_id = v.tenant_id "
    "AND ci.webhook_token = v.g_token AND ci.enabled AND COALESCE(ci.credentials, '') = v.g_creds) "
    "ORDER BY v.n ON CONFLICT (tenant_id, dedupe_key) DO NOTHING RETURNING id, tenant_id, dedupe_key), "
    "jobs AS (INSERT INTO outbox (tenant_id, kind, payload, idempotency_key, status, priority, attempts, "
    "max_attempts, run_at, created_at) SELECT ins.tenant_id, 'inbox.process', json_build_object('inbox_id', ins.id), "
    f"'inbox:' || ins.id, 'pending', {PRIORITY_ORDER}, 0, 8, CAST(%(now)s AS TIMESTAMP), CAST(%(now)s AS TIMESTAMP) "
    "FROM ins ON CONFLICT (tenant_id, idempotency_key) DO NOTHING) "
    "SELECT id, tenant_id, dedupe_key FROM ins")


def _json_text(value) -> str:
    # as the engine's JSON serializer writes it (platform/db.py): Chinese text kept readable
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass
class AcceptedWebhook:
    """One verified, parsed webhook waiting to be stored (an item of a group commit)."""
    platform: Any
    guard: InstallGuard
    events: list
    headers: dict
    body: bytes | None

    def rows(self) -> list[dict]:
        body = self.body if len(self.events) == 1 else None
        return [dict(tenant_id=self.guard.tenant_id, install_id=self.guard.install_id, dedupe_key=ev.dedupe_key,
                     global_id=ev.global_id, event_type=ev.event_type[:100], external_id=ev.external_id[:200],
                     headers=self.headers, body=body, payload=ev.to_dict()) for ev in self.events]


def write_accepted(conn, items: list[AcceptedWebhook]) -> list:
    """Store the events of ``items`` with their jobs in the caller's transaction. Outcome per
    item: the list of its new inbox ids (empty: all already there), or StaleInstall."""
    now = utcnow()
    rows = [(i, r) for i, item in enumerate(items) for r in item.rows()]
    # one lock order for every batch (concurrent batches never wait on each other in a cycle)
    rows.sort(key=lambda x: (x[1]["tenant_id"], x[1]["dedupe_key"]))
    new: list[int | None] = []
    if conn.dialect.name == "postgresql":
        for n, (i, r) in enumerate(rows):
            g = items[i].guard
            r.update(n=n, headers=r["headers"] or {}, body=None if r["body"] is None else r["body"].hex(),
                     g_token=g.token, g_creds=g.credentials or "")
        # the driver's cursor: SQLAlchemy's statement machinery cost as much as the insert
        with conn.connection.driver_connection.cursor() as cur:
            cur.execute(_BATCH_INSERT_PG, {"rows": _json_text([r for _, r in rows]), "now": now})
            got = {(t, k): id_ for id_, t, k in cur.fetchall()}
        for _, r in rows:
            new.append(got.pop((r["tenant_id"], r["dedupe_key"]), None))  # a key twice in the batch: the first
    else:
        for i, r in rows:
            new.append(_insert_event(conn, dict(r, now=now), items[i].guard))
    outcomes: list = [[] for _ in items]
    checked: dict[InstallGuard, bool] = {}
    for (i, _), new_id in zip(rows, new):
        if new_id is not None:
            if isinstance(outcomes[i], list):
                outcomes[i].append(new_id)
            continue
        g = items[i].guard
        if g not in checked:
            checked[g] = g.still_valid(conn)
        if not checked[g]:
            outcomes[i] = StaleInstall()  # not a duplicate: the install is no longer what was read
    touched = {}
    for it, out in zip(items, outcomes):
        if isinstance(out, list) and out:
            touched.setdefault((it.guard.tenant_id, it.guard.install_id), it.platform)
    for (tenant_id, install_id), platform in sorted(touched.items(), key=lambda kv: kv[0]):
        touch_last_event(platform, conn, tenant_id, install_id)
    return outcomes


def _wake_workers(items: list[AcceptedWebhook], outcomes: list) -> None:
    """After a batch committed: wake the relay / workers once per platform with new jobs."""
    for platform in {id(it.platform): it.platform for it, out in zip(items, outcomes)
                     if isinstance(out, list) and out}.values():
        jobs_committed(platform)


def group_commit_enabled(platform) -> bool:
    v = platform.config.get("WEBHOOK_GROUP_COMMIT")
    if v is None:
        v = os.environ.get("ZHONGSHU_WEBHOOK_GROUP_COMMIT", "1")
    return str(v).strip().lower() not in ("0", "false", "no", "off", "")


#: write engine -> its committer (the committer holds the engine weakly, so a disposed
#: platform's engine is not kept alive by it)
_committers: "weakref.WeakKeyDictionary[Any, GroupCommitter]" = weakref.WeakKeyDictionary()
_committers_lock = threading.Lock()
#: how long a request waits for its batch to commit before answering 503 (the sender retries;
#: if the batch commits after all, the resend is a duplicate and stored once)
COMMIT_WAIT_SECONDS = 30.0


def _committer(platform) -> GroupCommitter | None:
    bind = platform.WriteSession.kw.get("bind")
    if bind is None or not group_commit_enabled(platform):
        return None
    with _committers_lock:
        c = _committers.get(bind)
        if c is None:
            ref = weakref.ref(bind)

            def connect():
                engine = ref()
                if engine is None:
                    raise OperationalError("connect", {}, Exception("the database engine was disposed"))
                return engine.connect()
            c = _committers[bind] = GroupCommitter(connect, write_accepted, fatal=DB_DOWN + (InterfaceError,),
                                                   after_commit=_wake_workers, name="webhook-group-commit")
        return c


def _store_accepted(platform, accepted: AcceptedWebhook) -> int:
    """Store a verified webhook's events durably; returns how many were new. Raises
    StaleInstall, database errors, TimeoutError."""
    committer = _committer(platform)
    if committer is not None:
        return len(committer.submit(accepted, timeout=COMMIT_WAIT_SECONDS))
    with _write_transaction(platform) as conn:
        [out] = write_accepted(conn, [accepted])
        if isinstance(out, Exception):
            raise out
    _wake_workers([accepted], [out])
    return len(out)


#: last_event_at is written at most once per second per install and process (never a hot-row
#: UPDATE per webhook); the UPDATE itself only moves it forward
LAST_EVENT_RESOLUTION = 1.0
_touched: "weakref.WeakKeyDictionary[Any, dict[int, float]]" = weakref.WeakKeyDictionary()
_touch_lock = threading.Lock()


def touch_last_event(platform, conn, tenant_id: int, install_id: int) -> bool:
    """Record in ``connector_installs.last_event_at`` that an event was accepted now (in the
    caller's transaction), unless this process did so less than a second ago."""
    mono = time.monotonic()
    with _touch_lock:
        seen = _touched.setdefault(platform, {})
        if mono - seen.get(install_id, -1e9) < LAST_EVENT_RESOLUTION:
            return False
        seen[install_id] = mono
    now = utcnow()
    ci = ConnectorInstall.__table__
    conn.execute(update(ci).where(ci.c.id == install_id, ci.c.tenant_id == tenant_id,
                                  (ci.c.last_event_at.is_(None))
                                  | (ci.c.last_event_at <= now - timedelta(seconds=LAST_EVENT_RESOLUTION)))
                 .values(last_event_at=now))
    return True


def store_error(conn, tenant_id: int, install_id: int | None, reason: str, *, headers: dict | None = None,
                body: bytes | None = None, payload: dict | None = None, key_parts: tuple = ()) -> int | None:
    """Keep something that could not be taken in (raw) with status ``error`` and the reason.
    The same thing twice (same body / same parts) is kept once."""
    digest = hashlib.sha256(body or b"").hexdigest()
    key = event_key("error", install_id, digest, *key_parts)
    t = InboxEvent.__table__
    stmt = _insert(conn)(t).values(
        tenant_id=tenant_id, install_id=install_id, dedupe_key=key, headers=headers or {}, body=body,
        payload=payload, status="error", error=reason[:4000], received_at=utcnow(),
    ).on_conflict_do_nothing(index_elements=["tenant_id", "dedupe_key"]).returning(t.c.id)
    return conn.execute(stmt).scalar()


# -- the webhook endpoint (Flask-free) --------------------------------------------------------

@dataclass
class HookResult:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict | None = None
    stored: int = 0

    @classmethod
    def from_response(cls, r: WebhookResponse, stored: int = 0) -> "HookResult":
        return cls(r.status, r.body, r.content_type, None, stored)

    @classmethod
    def error(cls, status: int, code: str, message: str, message_zh: str | None = None, **headers) -> "HookResult":
        import json
        zh = message_zh or {"not_found": "没有这个 webhook 地址", "unavailable": "暂时无法保存,请稍后重试"}.get(code, message)
        return cls(status, json.dumps({"ok": False, "error": {"code": code, "message": message, "message_zh": zh}},
                                      ensure_ascii=False).encode(), "application/json", headers or None)


def unavailable(message: str = "the order hub cannot store this right now; please retry") -> HookResult:
    return HookResult.error(503, "unavailable", message, **{"Retry-After": "5"})


def find_install_by_token(platform, token: str) -> ConnectorInstall | None:
    if not token or len(token) > 64:
        return None
    with platform.tenant_session(None) as s:
        return s.scalar(select(ConnectorInstall).where(ConnectorInstall.webhook_token == token))


@dataclass(frozen=True)
class HookTarget:
    """What intake needs of an install, read once and kept for HOOK_CACHE_SECONDS."""
    guard: InstallGuard
    connector: str
    config: dict
    credentials: dict
    loaded_at: float


#: how long a process keeps an install's webhook settings (saves a query and a decryption per
#: webhook). Safe because every insert re-checks the install (InstallGuard): a disabled,
#: deleted, re-keyed or re-tokened install is never accepted from the cached copy. Only a
#: change of config (channel, paths) is seen up to this many seconds late by other processes.
HOOK_CACHE_SECONDS = 5.0
_hook_cache: "weakref.WeakKeyDictionary[Any, dict[str, HookTarget]]" = weakref.WeakKeyDictionary()
_hook_lock = threading.Lock()


def forget_hook(platform, token: str | None = None) -> None:
    """Drop the cached settings of one webhook token (or all) in this process."""
    with _hook_lock:
        cache = _hook_cache.get(platform)
        if cache is not None:
            cache.clear() if token is None else cache.pop(token, None)


def _load_target(platform, token: str) -> HookTarget | HookResult:
    try:
        inst = find_install_by_token(platform, token)
    except DB_DOWN + (DBAPIError,) as e:
        log.warning("webhook: database unavailable while looking up the install: %s", e)
        return unavailable()
    if inst is None or not inst.enabled:
        return HookResult.error(404, "not_found", "no such webhook")
    try:
        credentials = keys.cipher(platform).decrypt(inst.credentials) if inst.credentials else {}
    except DecryptionError as e:
        log.error("webhook for install %s: %s", inst.id, e)
        return unavailable("the install's credentials cannot be read; the administrator must fix them")
    target = HookTarget(InstallGuard(inst.id, inst.tenant_id, inst.webhook_token, inst.credentials),
                        inst.connector, inst.config or {}, credentials, time.monotonic())
    with _hook_lock:
        cache = _hook_cache.setdefault(platform, {})
        if len(cache) > 10000:
            cache.clear()
        cache[token] = target
    return target


def _cached_target(platform, token: str) -> HookTarget | None:
    with _hook_lock:
        target = (_hook_cache.get(platform) or {}).get(token)
    if target is not None and time.monotonic() - target.loaded_at < HOOK_CACHE_SECONDS:
        return target
    return None


def handle_webhook(platform, token: str, headers, body: bytes) -> HookResult:
    """Everything ``POST /api/v1/hooks/<token>`` does, given the raw request: verify, parse,
    store (one transaction), acknowledge."""
    if not token or len(token) > 64:
        return HookResult.error(404, "not_found", "no such webhook")
    target = _cached_target(platform, token)
    if target is not None:
        result = _handle(platform, target, headers, body, cached=True)
        if result is not None:
            return result
        forget_hook(platform, token)  # stale copy: read the install again
    target = _load_target(platform, token)
    if isinstance(target, HookResult):
        return target
    return _handle(platform, target, headers, body, cached=False) or unavailable()


def _write_transaction(platform):
    """A write transaction straight on the write engine: intake runs only Core statements (all
    naming the tenant), so the ORM session's bookkeeping would be pure overhead."""
    bind = platform.WriteSession.kw.get("bind")
    return bind.begin() if bind is not None else _session_transaction(platform)


@contextmanager
def _session_transaction(platform):
    with platform.tenant_session(None, write=True) as s:
        yield s.connection()


def _handle(platform, target: HookTarget, headers, body: bytes, *, cached: bool) -> HookResult | None:
    """None: the cached install is out of date (nothing was stored); the caller reloads it."""
    guard = target.guard
    inst_id, tenant_id, config = guard.install_id, guard.tenant_id, target.config
    try:
        connector = connector_for(platform, target.connector)
    except UnknownConnector as e:
        log.error("webhook for install %s: %s", inst_id, e)
        return unavailable(f"connector {target.connector} is not available on this server")
    if not connector.manifest.supports_webhook:
        return HookResult.error(404, "not_found", "this connector does not receive webhooks")
    hdrs = clean_headers(headers)

    # 1. authenticity: nothing is stored for a request that is not authentic
    try:
        connector.verify_webhook(headers, body, config, target.credentials)
    except SignatureError as e:
        if cached:
            return None  # the secret may have changed since it was cached: check with the stored one
        log.info("webhook for install %s rejected: %s", inst_id, e)
        return HookResult.from_response(connector.webhook_error_response(e, config))
    except ConfigError as e:  # the install cannot verify anything: let the sender retry later
        log.warning("webhook for install %s cannot be verified: %s", inst_id, e)
        return unavailable(f"the install is not configured to verify webhooks: {e}")
    except Exception as e:  # noqa: BLE001 - a connector bug must not accept unverified data
        log.exception("webhook verification crashed for install %s", inst_id)
        return unavailable(f"verification failed unexpectedly: {type(e).__name__}")

    # 2. understanding: a verified but unreadable body is kept as an error
    try:
        events = connector.parse_webhook(headers, body, config)
        error = None
    except ConnectorError as e:
        events, error = None, e
    except Exception as e:  # noqa: BLE001 - connector bug: keep the body, answer 4xx, no 500
        log.exception("webhook parsing crashed for install %s", inst_id)
        events, error = None, e

    # 3. durability: store (committed, with concurrent webhooks), then acknowledge
    try:
        if error is not None:
            with _write_transaction(platform) as conn:
                if not guard.still_valid(conn):
                    raise StaleInstall()
                reason = str(error) if isinstance(error, ConnectorError) else f"{type(error).__name__}: {error}"
                store_error(conn, tenant_id, inst_id, reason, headers=hdrs, body=body)
            stored = 0
        else:
            # wakes the relay / workers after the commit (runtime/wakeup.py)
            stored = _store_accepted(platform, AcceptedWebhook(platform, guard, events, hdrs, body))
    except StaleInstall:
        return None if cached else unavailable()  # changed while we stored: the sender retries
    except DB_DOWN + (DBAPIError,) as e:
        log.warning("webhook for install %s: database unavailable: %s", inst_id, e)
        return unavailable()
    except TimeoutError:
        log.warning("webhook for install %s: not committed within %s s", inst_id, COMMIT_WAIT_SECONDS)
        return unavailable()
    except Exception:  # noqa: BLE001 - not stored: the sender must retry
        log.exception("webhook for install %s could not be stored", inst_id)
        return unavailable()
    if error is not None:
        try:
            return HookResult.from_response(connector.webhook_error_response(error, config))
        except Exception:  # noqa: BLE001
            return HookResult.error(400, "bad_payload", str(error))
    return HookResult.from_response(connector.webhook_response(events, config), stored)


# -- processing ---------------------------------------------------------------------------------

class _Failed(Exception):
    """Processing cannot succeed for this row (mapping, validation): mark it ``error``."""


def _select_options(schema) -> dict:
    out = {}
    for name, spec in schema.fields.items():
        if spec.type.name in ("single_select", "multi_select"):
            out[name] = [{"value": c.get("label"), "label": c.get("label")}
                         for c in (spec.options or {}).get("choices", [])]
    return out


def _empty(v) -> bool:
    return v is None or v == "" or v == []


def _guard(session, tenant_id: int, key: str) -> None:
    """Serialise work on one (tenant, global id): a transaction-scoped advisory lock on
    PostgreSQL; SQLite writers are serialised by BEGIN IMMEDIATE already."""
    if session.get_bind().dialect.name == "postgresql":
        n = int.from_bytes(hashlib.sha256(f"{tenant_id}:{key}".encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": n})


def _find(recs, schema, key_values: dict):
    """(id, deleted) of the record with these key values, deleted ones included (a unique
    index covers them too), or None."""
    t = schema.table
    conds = []
    for name, value in key_values.items():
        spec = schema.fields[name]
        conds.append(t.c[spec.column_name] == spec.type.to_storage(value, spec, recs.ctx))
    row = recs.conn.execute(select(t.c.id, t.c.deleted_at).where(*conds).order_by(t.c.id).limit(1)).first()
    return None if row is None else (row.id, row.deleted_at is not None)


def _describe(e: Exception) -> str:
    if isinstance(e, ApiError):
        msg = e.message
        if e.errors:
            msg += " [" + "; ".join(f"{x.get('pointer')}: {x.get('message')}" for x in e.errors[:10]) + "]"
        return msg
    return str(e)


def apply_event(platform, session, tenant: Tenant, connector, inst: ConnectorInstall, event: InboundEvent) -> tuple[str, int | None, str | None]:
    """Map one event to records. Returns (status, record_id, note)."""
    try:
        maps = connector.mappings(inst.config or {}, event.event_type)
    except MappingError as e:
        raise _Failed(f"the install's mapping is invalid: {e}") from None
    if not maps:
        return "processed", None, f"no mapping for event type {event.event_type}; nothing written"
    recs = platform.records(session, tenant, SYSTEM_ACTOR)
    tz = tenant.timezone or platform.config.get("TIMEZONE") or "UTC"
    _guard(session, tenant.id, event.global_id)
    first_id, notes, results = None, [], []
    for n, fm in enumerate(maps):
        try:
            schema = recs.schema(fm.table)
        except NotFound:
            raise _Failed(f"table '{fm.table}' does not exist (mapping {n}); create it or change the mapping") from None
        try:
            mapped = fm.apply(event.payload, tz=tz, select_options=_select_options(schema))
        except MappingError as e:
            raise _Failed(f"mapping to {fm.table} failed: {e}") from None
        values = dict(mapped.values)
        ident = {"global_id": event.global_id, "channel": event.channel, "external_id": event.external_id}
        for name in IDENTITY_FIELDS:
            if name in schema.fields and _empty(values.get(name)):
                values[name] = ident[name]
        key_fields = list(fm.doc.get("key") or (["global_id"] if "global_id" in schema.fields else []))
        missing = [k for k in key_fields if k not in schema.fields or _empty(values.get(k))]
        if missing:
            raise _Failed(f"mapping to {fm.table}: key field(s) {', '.join(missing)} missing in the table or the event")
        existing = _find(recs, schema, {k: values[k] for k in key_fields}) if key_fields else None
        creating = existing is None
        if creating:
            create_values = dict(values)
            for sub, rows in mapped.subtables.items():
                create_values[sub] = rows
            try:
                with session.begin_nested():
                    rec = recs.create(schema, create_values)
                record_id = rec["id"]
                results.append("created")
            except IntegrityError as e:
                # a concurrent delivery of the same object won the race (unique key)
                existing = _find(recs, schema, {k: values[k] for k in key_fields}) if key_fields else None
                if existing is None:
                    raise _Failed(f"{fm.table}: a unique value is already taken "
                                  f"({str(e.orig).splitlines()[0][:300]})") from None
                creating = False
        if not creating:
            record_id, deleted = existing
            if event.event_type in CREATE_EVENTS or deleted:
                if n == 0:
                    return "duplicate", record_id, DUPLICATE_REASON
                results.append("duplicate")
            else:
                changes = {k: v for k, v in mapped.values.items() if k not in key_fields and not _empty(v)}
                if changes:
                    with session.begin_nested():
                        recs.update(schema, record_id, changes)
                results.append("updated")
                notes.append(f"updated {fm.table} {record_id}")
        if first_id is None:
            first_id = record_id
    return "processed", first_id, ("; ".join(notes) or None)


def _reparse(platform, session, row: InboxEvent, connector, inst: ConnectorInstall) -> tuple[str, str | None]:
    """A raw row (kept because it could not be parsed): parse it again with the current
    connector and config; its events become new inbox rows."""
    try:
        events = connector.parse_webhook(row.headers or {}, row.body or b"", inst.config or {})
    except ConnectorError as e:
        raise _Failed(str(e)) from None
    except Exception as e:  # noqa: BLE001
        raise _Failed(f"{type(e).__name__}: {e}") from None
    new = store_events(session.connection(), row.tenant_id, inst.id, events, headers=row.headers, body=row.body)
    return "processed", f"parsed into {len(events)} event(s), {len(new)} new inbox row(s): {new}"


def process_inbox(platform, tenant_id: int, inbox_id: int) -> dict:
    """Process one inbox row (idempotent: a row that is no longer ``received`` is left alone)."""
    with platform.tenant_session(tenant_id, write=True) as s:
        row = s.scalar(select(InboxEvent).where(InboxEvent.tenant_id == tenant_id, InboxEvent.id == inbox_id))
        if row is None:
            return {"inbox_id": inbox_id, "status": "missing"}
        if row.status != "received":
            return {"inbox_id": inbox_id, "status": row.status, "skipped": True}
        record_id, note = None, None
        try:
            inst = s.scalar(select(ConnectorInstall).where(ConnectorInstall.tenant_id == tenant_id,
                                                           ConnectorInstall.id == row.install_id)) \
                if row.install_id else None
            if inst is None:
                raise _Failed("the connector install of this event was deleted")
            try:
                connector = connector_for(platform, inst.connector)
            except UnknownConnector as e:
                raise _Failed(str(e)) from None
            if row.payload is None:
                status, note = _reparse(platform, s, row, connector, inst)
            else:
                try:
                    event = InboundEvent.from_dict(row.payload)
                except (KeyError, TypeError, ValueError) as e:
                    raise _Failed(f"stored event is unreadable: {type(e).__name__}: {e}") from None
                tenant = s.get(Tenant, tenant_id)
                with s.begin_nested():  # all records of one event, or none
                    status, record_id, note = apply_event(platform, s, tenant, connector, inst, event)
        except _Failed as e:
            status, note = "error", str(e)
        except ApiError as e:
            if e.status in (409, 429, 503):
                raise  # transient (concurrent edit, busy): the worker retries
            status, note = "error", _describe(e)
        except ConnectorError as e:
            status, note = "error", str(e)
        row.status, row.record_id, row.error = status, record_id, note
        row.processed_at = utcnow()
        log.info("inbox %s (tenant %s): %s %s", inbox_id, tenant_id, status, note or "")
        return {"inbox_id": inbox_id, "status": status, "record_id": record_id, "note": note}


@handler("inbox.process")
def inbox_process_job(ctx, payload: dict):
    """Outbox handler: ``{"inbox_id": N}`` → process that row."""
    return process_inbox(ctx.platform, ctx.tenant_id, int(payload["inbox_id"]))


def retry_inbox(session, inbox_id: int) -> InboxEvent:
    """Put an ``error`` row back to ``received`` and enqueue it again (in ``session``)."""
    from zhongshu.platform.errors import Conflict
    tenant_id = session.info.get("tenant_id")
    row = session.scalar(select(InboxEvent).where(InboxEvent.tenant_id == tenant_id, InboxEvent.id == inbox_id))
    if row is None:
        raise NotFound(f"inbox entry {inbox_id}", f"收件箱记录 {inbox_id}")
    if row.status != "error":
        raise Conflict(f"only entries with status error can be retried (this one is {row.status})",
                       message_zh=f"只有状态为 error 的记录可以重试(当前为 {row.status})")
    row.status, row.error, row.processed_at = "received", None, None
    session.flush()
    attempt = int(utcnow().replace(tzinfo=timezone.utc).timestamp() * 1000)
    _enqueue_process(session.connection(), tenant_id, row.id, attempt)
    return row


def inbox_json(row: InboxEvent, *, with_body: bool = True) -> dict:
    def iso(dt):
        return None if dt is None else dt.replace(tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")
    out = {"id": row.id, "install_id": row.install_id, "status": row.status, "error": row.error,
           "event_type": row.event_type, "external_id": row.external_id, "global_id": row.global_id,
           "record_id": row.record_id, "received_at": iso(row.received_at), "processed_at": iso(row.processed_at),
           "payload": row.payload}
    if with_body and row.payload is None and row.body is not None:
        out["body"] = row.body[:65536].decode("utf-8", errors="replace")
        out["body_bytes"] = len(row.body)
        out["headers"] = row.headers or {}
    return out
