"""Outbox handlers of the rule runtime: continuing a rule after ``wait``, HTTP calls."""
from __future__ import annotations

from sqlalchemy import select

from .outbox import JobContext, handler


@handler("rules.continue")
def continue_rule(job: JobContext, payload: dict):
    from zhongshu.platform.models import Tenant
    from zhongshu.platform.storage.access import Actor

    from .bridge import Loader
    from .models import Rule
    from .rules.engine import compile_rule, run_rule

    zs = job.platform
    with zs.tenant_session(job.tenant_id, write=True) as s:
        tenant = s.get(Tenant, job.tenant_id)
        records = zs.records(s, tenant, Actor(None, "owner", is_system=True))
        row = s.get(Rule, payload["rule"])
        if row is None or not row.enabled:
            return {"skipped": "rule removed or off"}
        rule = compile_rule(records, row)
        table = records.schema(payload["table"]) if payload.get("table") else None
        rec = Loader(records).load(table, payload["record"], rule.record_paths()) if table is not None and payload.get("record") else {}
        if table is not None and payload.get("record") and rec is None:
            return {"skipped": "record deleted"}
        res = run_rule(records, rule, table, payload.get("record"), rec, trigger="wait", actions=payload["actions"],
                       check_condition=False, occasion=f"job{job.job_id}")
        return {"status": res.get("status"), "error": res.get("error")}


@handler("http.request")
def http_request(job: JobContext, payload: dict):
    from zhongshu.connectors.api.http import HttpClient
    from zhongshu.connectors.api.errors import PermanentError, RetryableError

    client = HttpClient(timeout=payload.get("timeout_seconds", 10))
    headers = {**(payload.get("headers") or {}), "Idempotency-Key": job.idempotency_key}
    body = payload.get("body")
    data = body.encode("utf-8") if isinstance(body, str) else None
    if data is not None:
        headers.setdefault("Content-Type", "application/json; charset=utf-8")
    resp = client.request(payload["method"], payload["url"], headers=headers, data=data, timeout=payload.get("timeout_seconds", 10))
    return {"status": resp.status, "text": resp.text[:2000]}
