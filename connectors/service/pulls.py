"""Scheduled pulls: for every enabled install whose connector can pull and whose interval
has passed, fetch pages with :func:`zhongshu.connectors.api.runner.pull_pages`.

Each page is stored in ONE transaction: its events go into the inbox (with their
``inbox.process`` jobs), items the connector had to skip go into the inbox as ``error`` rows
(reviewable), and the install's cursor moves on. A crash between pages therefore resumes
from the last stored page: no gaps, no duplicates. No transaction is held open while the
remote service is called.
"""
from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta

from sqlalchemy import select, update

from zhongshu.connectors.api import ConnectorError, DecryptionError, UnknownConnector, pull_pages
from zhongshu.platform.models import utcnow
from zhongshu.runtime.models import ConnectorInstall

from . import keys
from .installs import connector_for, pull_interval
from .intake import store_error, store_events, touch_last_event

log = logging.getLogger("zhongshu.connectors.pulls")

#: how often the scheduler calls run_pulls (each install still has its own interval)
TICK_SECONDS = 60
MAX_PAGES_PER_RUN = 100
#: longest reason kept in connector_installs.last_pull_error
MAX_REASON = 300
MASK = "••••••"
#: query parameters and header-like words whose values are secrets in any error text
SECRET_PARAM = re.compile(r"(?i)\b(access_token|refresh_token|token|sign|signature|key|secret|app_secret|password|"
                          r"authorization|x-shopify-access-token)(\s*[=:]\s*)(bearer\s+)?([^\s&,;'\"]+)")


class _CapturePage:
    """Wraps a connector so that the store callback also sees ``PullPage.errors``."""

    def __init__(self, connector):
        self.connector = connector
        self.errors: list[dict] = []

    @property
    def name(self):
        return self.connector.name

    def pull(self, config, credentials, cursor):
        page = self.connector.pull(config, credentials, cursor)
        self.errors = list(page.errors or [])
        return page


def _claim(platform, inst_id: int, tenant_id: int, seen: datetime | None, now: datetime) -> bool:
    """Mark the install as being pulled now, unless another scheduler/process just did."""
    with platform.tenant_session(tenant_id, write=True) as s:
        t = ConnectorInstall.__table__
        cond = t.c.last_pull_at.is_(None) if seen is None else t.c.last_pull_at == seen
        res = s.connection().execute(update(t).where(t.c.id == inst_id, t.c.tenant_id == tenant_id, cond)
                                     .values(last_pull_at=now))
        return res.rowcount == 1


def _secret_values(value) -> list[str]:
    if isinstance(value, str):
        return [value] if len(value) >= 4 else []
    if isinstance(value, dict):
        return [v for x in value.values() for v in _secret_values(x)]
    if isinstance(value, (list, tuple)):
        return [v for x in value for v in _secret_values(x)]
    return []


def short_reason(error: str, credentials: dict | None = None) -> str:
    """An error text fit for the admin list: the install's credential values and anything that
    looks like a token/signature parameter masked, cut to MAX_REASON characters."""
    text = str(error)
    for secret in sorted(_secret_values(credentials or {}), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = SECRET_PARAM.sub(lambda m: m.group(1) + m.group(2) + (m.group(3) or "") + MASK, text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 1] + "…"


def _record_outcome(platform, tenant_id: int, install_id: int, error: str | None) -> None:
    """last_pull_error: the short reason of a failed pull, cleared by a successful one."""
    try:
        with platform.tenant_session(tenant_id, write=True) as s:
            t = ConnectorInstall.__table__
            s.connection().execute(update(t).where(t.c.id == install_id, t.c.tenant_id == tenant_id)
                                   .values(last_pull_error=error))
    except Exception:  # noqa: BLE001 - the status line must not break the pull loop
        log.exception("could not record the pull outcome of install %s", install_id)


def pull_install(platform, inst: ConnectorInstall, *, max_pages: int = MAX_PAGES_PER_RUN) -> dict:
    """Pull one install now (no interval check). Returns a summary; connector errors are
    reported in it, not raised (the cursor keeps what was stored)."""
    summary = {"tenant_id": inst.tenant_id, "install": inst.api_name, "pages": 0, "events": 0, "new": 0,
               "skipped_items": 0, "error": None}
    try:
        connector = connector_for(platform, inst.connector)
        credentials = keys.cipher(platform).decrypt(inst.credentials) if inst.credentials else {}
    except (UnknownConnector, DecryptionError) as e:
        summary["error"] = short_reason(str(e))
        _record_outcome(platform, inst.tenant_id, inst.id, summary["error"])
        return summary
    wrapped = _CapturePage(connector)
    tenant_id, install_id = inst.tenant_id, inst.id

    def store(events, next_cursor):
        with platform.tenant_session(tenant_id, write=True) as s:
            conn = s.connection()
            new = store_events(conn, tenant_id, install_id, events)
            for item in wrapped.errors:
                raw = json.dumps(item, ensure_ascii=False, sort_keys=True, default=str)
                store_error(conn, tenant_id, install_id, f"pull: {item.get('error') or raw}",
                            body=raw.encode(), payload=None, key_parts=("pull", raw))
            t = ConnectorInstall.__table__
            conn.execute(update(t).where(t.c.id == install_id, t.c.tenant_id == tenant_id)
                         .values(cursor=next_cursor))
            if new:
                touch_last_event(platform, conn, tenant_id, install_id)
        summary["pages"] += 1
        summary["events"] += len(events)
        summary["new"] += len(new)
        summary["skipped_items"] += len(wrapped.errors)

    try:
        pull_pages(wrapped, inst.config or {}, credentials, inst.cursor, store, max_pages=max_pages)
    except ConnectorError as e:
        summary["error"] = short_reason(f"{type(e).__name__}: {e}", credentials)
        log.warning("pull %s/%s stopped: %s", tenant_id, inst.api_name, summary["error"])
    except Exception as e:  # noqa: BLE001 - one broken install must not stop the others
        summary["error"] = short_reason(f"{type(e).__name__}: {e}", credentials)
        log.exception("pull %s/%s crashed", tenant_id, inst.api_name)
    _record_outcome(platform, tenant_id, install_id, summary["error"])
    return summary


def due_installs(platform, now: datetime | None = None, *, force: bool = False) -> list[ConnectorInstall]:
    now = now or utcnow()
    out = []
    with platform.tenant_session(None) as s:
        rows = s.scalars(select(ConnectorInstall).where(ConnectorInstall.enabled.is_(True))
                         .order_by(ConnectorInstall.id)).all()
    reg_cache: dict[str, object] = {}
    for inst in rows:
        try:
            connector = reg_cache.get(inst.connector) or connector_for(platform, inst.connector)
        except UnknownConnector:
            continue
        reg_cache[inst.connector] = connector
        if not connector.manifest.supports_pull:
            continue
        every = pull_interval(connector, inst.config or {})
        if force or inst.last_pull_at is None or now - inst.last_pull_at >= timedelta(seconds=every):
            out.append(inst)
    return out


def run_pulls(platform, *, now: datetime | None = None, force: bool = False, tenant_id: int | None = None) -> list[dict]:
    """Pull every enabled pull-capable install that is due. Returns one summary per install."""
    now = now or utcnow()
    results = []
    for inst in due_installs(platform, now, force=force):
        if tenant_id is not None and inst.tenant_id != tenant_id:
            continue
        if not _claim(platform, inst.id, inst.tenant_id, inst.last_pull_at, now):
            continue  # someone else is pulling it
        results.append(pull_install(platform, inst))
    return results


def _register_with_scheduler() -> str | None:
    """Register :func:`run_pulls` with the runtime scheduler if it offers ``periodic``."""
    try:
        from zhongshu.runtime import scheduler
    except ImportError:
        return None
    periodic = getattr(scheduler, "periodic", None)
    if periodic is None:
        return None
    try:
        periodic("connectors.pull", TICK_SECONDS)(run_pulls)
    except Exception:  # noqa: BLE001 - the scheduler's API may still change
        log.exception("could not register connectors.pull with the scheduler")
        return None
    return "connectors.pull"


SCHEDULED = _register_with_scheduler()
