"""Outbound: the ``connector.action`` outbox handler.

Payload ``{"install": "<api_name>", "action": "<name>", "input": {...}}``. The job's
idempotency key is passed to the connector (stable across retries). Errors are raised as
the connector error classes so the worker decides: :class:`RetryableError` → retry with
backoff (``retry_after`` honoured), :class:`PermanentError` → dead letter.
A ``credentials_update`` (token refresh) is merged into the stored credentials and
re-encrypted.
"""
from __future__ import annotations

import logging

from sqlalchemy import select

from zhongshu.connectors.api import ConfigError, PermanentError, RetryableError, run_action
from zhongshu.runtime.models import ConnectorInstall
from zhongshu.runtime.outbox import PRIORITY_NOTIFY, enqueue, handler

from . import keys
from .installs import connector_for

log = logging.getLogger("zhongshu.connectors.actions")


def enqueue_action(conn, *, tenant_id: int, install: str, action: str, input: dict, key: str,
                   priority: int = PRIORITY_NOTIFY) -> int | None:
    """Queue a connector action in the caller's transaction (rules use this)."""
    return enqueue(conn, tenant_id=tenant_id, kind="connector.action",
                   payload={"install": install, "action": action, "input": input or {}}, key=key, priority=priority)


def _install_connectors(records) -> dict:
    """install api_name -> connector name of the tenant; once per metadata stamp (a saved
    install changes the stamp), else once per transaction."""
    cache = records.cache.meta.for_tenant(records.session, records.tenant_id)
    if cache is None:
        cache = records.session.info.setdefault("zs_rules", {})
    hit = cache.get("install_connectors")
    if hit is None:
        hit = cache["install_connectors"] = dict(records.session.execute(
            select(ConnectorInstall.api_name, ConnectorInstall.connector)
            .where(ConnectorInstall.tenant_id == records.tenant_id)).all())
    return hit


_PROBES: dict = {}  # (registry, connector name) -> an instance asked for text_formats


def text_escapes(records, install: str, action: str, input: dict, default=frozenset({"html"})) -> dict:
    """For a rule's notify: input key -> how its template is rendered (the ``html``
    argument of the renderer: True for HTML, an escape function for a markdown), from the
    connector's :meth:`~zhongshu.connectors.api.Connector.text_formats`. Keys in ``default``
    are HTML when the install or its connector is unknown here."""
    from zhongshu.connectors.api.textformat import escape_for

    from .installs import registry

    name = _install_connectors(records).get(install)
    reg = registry(None)
    if name is None or name not in reg:
        return {k: True for k in default}
    try:
        probe = _PROBES.get((id(reg), name))
        if probe is None:
            probe = _PROBES[(id(reg), name)] = reg.create(name)
        formats = probe.text_formats(action, input)
    except Exception:  # a plugin's bug must not stop the rule; its texts go out unescaped as before
        log.exception("text_formats of connector %s failed", name)
        return {k: True for k in default}
    return {k: escape_for(f) for k, f in (formats or {}).items() if escape_for(f)}


def _load(platform, tenant_id: int, api_name: str) -> ConnectorInstall:
    with platform.tenant_session(tenant_id) as s:
        inst = s.scalar(select(ConnectorInstall).where(ConnectorInstall.tenant_id == tenant_id,
                                                       ConnectorInstall.api_name == api_name))
    if inst is None:
        raise PermanentError(f"no connector install named {api_name!r}", code="install_missing")
    if not inst.enabled:
        raise PermanentError(f"connector install {api_name!r} is disabled", code="install_disabled")
    return inst


def save_credentials_update(platform, tenant_id: int, install_id: int, update: dict) -> None:
    """Merge a token refresh into the stored credentials (re-read under the write lock so a
    concurrent admin edit is not lost)."""
    c = keys.cipher(platform)
    with platform.tenant_session(tenant_id, write=True) as s:
        inst = s.scalar(select(ConnectorInstall).where(ConnectorInstall.tenant_id == tenant_id,
                                                       ConnectorInstall.id == install_id))
        if inst is None:
            return
        current = c.decrypt(inst.credentials) if inst.credentials else {}
        current.update({k: v for k, v in update.items() if v is not None})
        inst.credentials = c.encrypt(current)


def execute(platform, tenant_id: int, payload: dict, *, idempotency_key: str) -> dict:
    for k in ("install", "action"):
        if not isinstance(payload.get(k), str) or not payload[k]:
            raise PermanentError(f"connector.action payload needs '{k}'", code="bad_payload")
    inst = _load(platform, tenant_id, payload["install"])
    connector = connector_for(platform, inst.connector)  # UnknownConnector: permanent
    credentials = keys.cipher(platform).decrypt(inst.credentials) if inst.credentials else {}  # DecryptionError: permanent
    outcome = run_action(connector, payload["action"], payload.get("input") or {}, inst.config or {},
                         credentials, idempotency_key=idempotency_key)
    if not outcome.ok:
        err, d = outcome.error or {}, outcome.decision
        message = err.get("message") or (d.message if d else "action failed")
        code = err.get("code")
        if d is not None and d.action == "retry":
            raise RetryableError(message, retry_after=d.retry_after, code=code, details=err)
        if err.get("error") == "ConfigError":
            raise ConfigError(message, details=err)
        raise PermanentError(message, code=code, details=err)
    result = outcome.result
    if result.credentials_update:
        save_credentials_update(platform, tenant_id, inst.id, result.credentials_update)
    return {"install": inst.api_name, "action": payload["action"], "output": result.output,
            "credentials_updated": bool(result.credentials_update)}


@handler("connector.action")
def connector_action_job(ctx, payload: dict):
    """Outbox handler: run a connector's outbound action."""
    return execute(ctx.platform, ctx.tenant_id, payload, idempotency_key=ctx.idempotency_key)
