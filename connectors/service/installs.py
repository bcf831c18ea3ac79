"""Connector installs of a tenant: validation, encryption, and how they are shown.

Flask-free: the REST routes (``routes.py``), the worker handlers and the scheduler all use
these functions with a tenant-scoped session.
"""
from __future__ import annotations

import copy
import re
import secrets
from datetime import timezone
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy import select

from zhongshu.connectors.api import (DecryptionError, UnknownConnector, apply_defaults, default_registry,
                                     merge_credentials, redact)
from zhongshu.connectors.api.mapping import mapping_problems
from zhongshu.platform.errors import Conflict, NotFound, ValidationFailed, field_error
from zhongshu.runtime.models import ConnectorInstall

from . import keys

API_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
DEFAULT_PULL_EVERY = 600
MIN_PULL_EVERY = 10

#: settings the platform itself reads from an install's config (next to the connector's own)
PLATFORM_CONFIG_SCHEMA = {
    "type": "object",
    "properties": {
        "pull_every_seconds": {"type": "integer", "minimum": MIN_PULL_EVERY},
        "mappings": {"type": "array", "items": {"type": "object"}},
    },
}


def registry(platform):
    """The connector registry (a platform may carry its own, e.g. in tests)."""
    return getattr(platform, "connector_registry", None) or default_registry()


def connector_for(platform, name: str):
    return registry(platform).create(name)


def new_webhook_token() -> str:
    return secrets.token_urlsafe(32)[:43]


def webhook_path(token: str) -> str:
    return f"/api/v1/hooks/{token}"


# -- validation ------------------------------------------------------------------------------

def _pointer(prefix: str, path) -> str:
    return "/" + "/".join([prefix, *(str(p).replace("~", "~0").replace("/", "~1") for p in path)])


def schema_errors(schema: dict, data: Any, prefix: str) -> list[dict]:
    """Every problem of ``data`` against ``schema`` as field errors with JSON pointers
    (``/config/shop_domain``; a missing required property points at itself)."""
    out = []
    for e in sorted(Draft202012Validator(schema).iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = list(e.absolute_path)
        if e.validator == "required":
            m = re.search(r"'([^']+)' is a required property", e.message)
            if m:
                path.append(m.group(1))
                out.append(field_error(_pointer(prefix, path), f"'{m.group(1)}' is required",
                                       f"'{m.group(1)}' 为必填项", code="required"))
                continue
        out.append(field_error(_pointer(prefix, path), e.message, e.message, code="invalid_value"))
    return out


def validate_settings(connector, config: dict, credentials: dict) -> tuple[dict, dict]:
    """Config and credentials with defaults applied; 400 listing every problem otherwise."""
    if not isinstance(config, dict):
        raise ValidationFailed("config must be an object", message_zh="config 应为对象",
                               errors=[field_error("/config", "must be an object", "应为对象")])
    if not isinstance(credentials, dict):
        raise ValidationFailed("credentials must be an object", message_zh="credentials 应为对象",
                               errors=[field_error("/credentials", "must be an object", "应为对象")])
    m = connector.manifest
    own_props = set((m.config_schema.get("properties") or {}))
    platform_part = {k: v for k, v in config.items() if k in PLATFORM_CONFIG_SCHEMA["properties"]}
    connector_part = {k: v for k, v in config.items()
                      if k not in PLATFORM_CONFIG_SCHEMA["properties"] or k in own_props}
    cfg = apply_defaults(m.config_schema, connector_part)
    creds = apply_defaults(m.credential_schema, credentials)
    errors = schema_errors(m.config_schema, cfg, "config")
    errors += schema_errors(PLATFORM_CONFIG_SCHEMA, platform_part, "config")
    for i, doc in enumerate(config.get("mappings") or [] if isinstance(config.get("mappings"), list) else []):
        for problem in mapping_problems(doc):
            where, _, msg = problem.partition(": ")
            errors.append(field_error(f"/config/mappings/{i}", f"{where}: {msg}", f"{where}: {msg}",
                                      code="invalid_mapping"))
    errors += schema_errors(m.credential_schema, creds, "credentials")
    if errors:
        raise ValidationFailed(f"{len(errors)} problem(s) in the connector settings: "
                               f"{errors[0]['pointer']}: {errors[0]['message']}",
                               message_zh=f"连接器设置有 {len(errors)} 处问题: {errors[0]['pointer']}: {errors[0]['message_zh']}",
                               errors=errors)
    cfg.update({k: v for k, v in platform_part.items()})
    return cfg, creds


def pull_interval(connector, config: dict) -> int:
    every = (config or {}).get("pull_every_seconds")
    if not every:
        every = next((i.default_interval_seconds for i in connector.manifest.inbound
                      if i.kind == "pull" and i.default_interval_seconds), None) or DEFAULT_PULL_EVERY
    return max(MIN_PULL_EVERY, int(every))


# -- reading and writing ---------------------------------------------------------------------

def get_install(session, api_name: str) -> ConnectorInstall:
    tenant_id = session.info.get("tenant_id")
    inst = session.scalar(select(ConnectorInstall).where(ConnectorInstall.tenant_id == tenant_id,
                                                         ConnectorInstall.api_name == api_name))
    if inst is None:
        raise NotFound(f"connector install '{api_name}'", f"连接器安装 '{api_name}'")
    return inst


def decrypt(platform, inst: ConnectorInstall) -> dict:
    return keys.cipher(platform).decrypt(inst.credentials) if inst.credentials else {}


def _connector_or_400(platform, name: Any):
    if not isinstance(name, str) or not name:
        raise ValidationFailed("connector is required", message_zh="需要指定 connector",
                               errors=[field_error("/connector", "required", "必填")])
    try:
        return connector_for(platform, name)
    except UnknownConnector as e:
        raise ValidationFailed(str(e), message_zh=f"没有名为 {name} 的连接器(或加载失败)",
                               errors=[field_error("/connector", str(e), f"没有名为 {name} 的连接器")]) from None


def create_install(platform, session, data: dict) -> ConnectorInstall:
    unknown = set(data) - {"connector", "api_name", "config", "credentials", "enabled"}
    if unknown:
        raise ValidationFailed(f"unknown properties: {', '.join(sorted(unknown))}",
                               message_zh=f"未知属性: {', '.join(sorted(unknown))}",
                               errors=[field_error(f"/{k}", "unknown property", "未知属性") for k in sorted(unknown)])
    connector = _connector_or_400(platform, data.get("connector"))
    api_name = data.get("api_name") or connector.name
    if not isinstance(api_name, str) or not API_NAME_RE.match(api_name):
        raise ValidationFailed("api_name must be lower-case letters, digits and _ (starting with a letter)",
                               message_zh="api_name 只能包含小写字母、数字和下划线,且以字母开头",
                               errors=[field_error("/api_name", "bad api name", "api_name 格式不对")])
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValidationFailed("enabled must be true or false", message_zh="enabled 应为 true 或 false",
                               errors=[field_error("/enabled", "must be a boolean", "应为布尔值")])
    cfg, creds = validate_settings(connector, data.get("config") or {}, data.get("credentials") or {})
    tenant_id = session.info.get("tenant_id")
    if session.scalar(select(ConnectorInstall.id).where(ConnectorInstall.tenant_id == tenant_id,
                                                        ConnectorInstall.api_name == api_name)):
        raise Conflict(f"a connector install named '{api_name}' already exists",
                       message_zh=f"已存在名为 '{api_name}' 的连接器安装")
    inst = ConnectorInstall(tenant_id=tenant_id, connector=connector.name, api_name=api_name, config=cfg,
                            credentials=keys.cipher(platform).encrypt(creds), enabled=enabled,
                            webhook_token=new_webhook_token())
    session.add(inst)
    session.flush()
    return inst


def update_install(platform, session, inst: ConnectorInstall, data: dict) -> ConnectorInstall:
    """PATCH: ``config`` keys are merged (``null`` removes a key), ``credentials`` too (an
    omitted or masked secret keeps the stored one, ``null`` removes it), ``enabled``,
    ``rotate_webhook_token: true`` issues a new webhook URL."""
    unknown = set(data) - {"config", "credentials", "enabled", "rotate_webhook_token"}
    if unknown:
        raise ValidationFailed(f"cannot change: {', '.join(sorted(unknown))}",
                               message_zh=f"不能修改: {', '.join(sorted(unknown))}",
                               errors=[field_error(f"/{k}", "cannot be changed here", "不能在此修改") for k in sorted(unknown)])
    connector = _connector_or_400(platform, inst.connector)
    config = copy.deepcopy(inst.config or {})
    if "config" in data:
        if not isinstance(data["config"], dict):
            raise ValidationFailed("config must be an object", message_zh="config 应为对象",
                                   errors=[field_error("/config", "must be an object", "应为对象")])
        for k, v in data["config"].items():
            if v is None:
                config.pop(k, None)
            else:
                config[k] = v
    try:
        stored = decrypt(platform, inst)
    except DecryptionError:
        stored = {}  # lost key: the admin is entering the credentials again
    creds = dict(stored)
    if "credentials" in data:
        sub = data["credentials"]
        if not isinstance(sub, dict):
            raise ValidationFailed("credentials must be an object", message_zh="credentials 应为对象",
                                   errors=[field_error("/credentials", "must be an object", "应为对象")])
        creds = merge_credentials(stored, {k: v for k, v in sub.items() if v is not None})
        for k, v in sub.items():
            if v is None:
                creds.pop(k, None)
    cfg, creds = validate_settings(connector, config, creds)
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            raise ValidationFailed("enabled must be true or false", message_zh="enabled 应为 true 或 false",
                                   errors=[field_error("/enabled", "must be a boolean", "应为布尔值")])
        inst.enabled = data["enabled"]
    inst.config = cfg
    if creds != stored or not inst.credentials:
        inst.credentials = keys.cipher(platform).encrypt(creds)
    if data.get("rotate_webhook_token") is True:
        inst.webhook_token = new_webhook_token()
    session.flush()
    return inst


def recheck_rules(platform, session, api_name: str) -> dict:
    """After an install was saved, enabled or disabled: rules that a template left off
    because this connector was missing (``disabled_reason`` "connector <api_name> …") are
    switched on when every connector they use is usable now; the others stay off with a
    reason that says what is still missing (see docs/templates-guide.md). Rules calling an
    action this install's connector does not have (or with an input that does not match
    it) are switched off, reason "invalid connector action (<api_name>): <pointer>: …"."""
    from zhongshu.platform.models import Tenant
    from zhongshu.platform.templates_engine import recheck_connector_rules
    from zhongshu.runtime.models import Rule

    from zhongshu.runtime.rules.definition import ACTION_REASON_PREFIX, switch_off_invalid_connector_rules

    tenant = session.get(Tenant, session.info.get("tenant_id"))
    enabled = recheck_connector_rules(platform, session, tenant)
    # a rule switched on (now or before) that calls an action this connector does not have,
    # or with an input that does not match it, goes off with the reason
    wrong = {x["rule"] for x in switch_off_invalid_connector_rules(session, api_name)}
    enabled = [n for n in enabled if n not in wrong]
    mine = (f"connector {api_name} ", f"{ACTION_REASON_PREFIX} ({api_name})")
    still_off = [{"rule": r.api_name, "reason": r.disabled_reason}
                 for r in session.scalars(select(Rule).where(Rule.enabled.is_(False)).order_by(Rule.api_name))
                 if (r.disabled_reason or "").startswith(mine)]
    return {"enabled": enabled, "still_off": still_off}


def _iso(dt):
    return None if dt is None else dt.replace(tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")


def install_json(platform, inst: ConnectorInstall, *, base_url: str = "") -> dict:
    """What the API shows of an install: credentials redacted, never decrypted values."""
    reg = registry(platform)
    manifest = reg.manifest(inst.connector) if inst.connector in reg else None
    creds, creds_error = None, None
    try:
        plain = decrypt(platform, inst)
        creds = redact(plain, manifest.credential_schema if manifest else None)
    except DecryptionError as e:
        creds_error = str(e)
    out = {
        "id": inst.id,
        "connector": inst.connector,
        "api_name": inst.api_name,
        "enabled": inst.enabled,
        "available": manifest is not None,
        "version": manifest.version if manifest else None,
        "labels": manifest.labels if manifest else None,
        "config": inst.config or {},
        "credentials": creds,
        "webhook_url": (base_url.rstrip("/") + webhook_path(inst.webhook_token))
        if manifest is None or manifest.supports_webhook else None,
        "supports_webhook": bool(manifest and manifest.supports_webhook),
        "supports_pull": bool(manifest and manifest.supports_pull),
        "cursor": inst.cursor,
        "last_pull_at": _iso(inst.last_pull_at),
        "last_pull_error": inst.last_pull_error,
        "last_event_at": _iso(inst.last_event_at),
        "last_test": inst.last_test,
        "created_at": _iso(inst.created_at),
    }
    if manifest is not None and manifest.supports_pull:
        out["pull_every_seconds"] = pull_interval(reg.create(inst.connector), inst.config or {})
    if creds_error:
        out["credentials_error"] = creds_error
    return out


def catalog(platform) -> dict:
    """Every loaded connector with its manifest, and the ones that failed to load."""
    reg = registry(platform)
    items = []
    for name in reg.names():
        info = reg.info(name)
        m = info.manifest
        d = m.to_dict()
        d["source"] = info.source
        d["events"] = m.event_types()
        d["supports_webhook"] = m.supports_webhook
        d["supports_pull"] = m.supports_pull
        items.append(d)
    return {"connectors": items,
            "failures": [{"name": f.name, "source": f.source, "error": f.error} for f in reg.failures]}
