"""Admin routes over the tenant's outbox: list and inspect jobs, statistics, replay dead
letters. Registered on the ``api`` blueprint (imported at the end of
``platform/api/__init__.py``); tenant isolation comes from ``g.db`` (a tenant-scoped
session), so another tenant's job id is simply not found (404).

Payloads are shown with anything that looks like a credential masked (``••••••``)."""
from __future__ import annotations

import re

from flask import g, request
from sqlalchemy import func, select

from zhongshu.platform.api.base import ApiError, api, body_object, int_arg, ok, require_role
from zhongshu.platform.errors import Conflict, NotFound, ValidationFailed, field_error
from zhongshu.platform.models import AuditLog, utcnow

from .models import OutboxJob

STATUSES = ("pending", "running", "done", "dead")
MASK = "••••••"
MAX_REPLAY = 1000
_SECRET = re.compile(r"(pass(word|wd)?|secret|token|api[_-]?key|apikey|authori[sz]ation|credential|private[_-]?key|"
                     r"signature|cookie|session|access[_-]?key|client[_-]?secret|sign[_-]?key|app[_-]?secret)", re.I)


def redact(value):
    """A copy of ``value`` with the values of credential-like keys masked."""
    if isinstance(value, dict):
        return {k: (MASK if isinstance(k, str) and _SECRET.search(k) and v not in (None, "") else redact(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def job_json(j: OutboxJob, *, full: bool = True) -> dict:
    d = {"id": j.id, "kind": j.kind, "status": j.status, "priority": j.priority, "attempts": j.attempts,
         "max_attempts": j.max_attempts, "idempotency_key": j.idempotency_key, "run_at": j.run_at,
         "locked_by": j.locked_by, "locked_until": j.locked_until, "last_error": j.last_error,
         "rule_run_id": j.rule_run_id, "created_at": j.created_at, "finished_at": j.finished_at}
    if full:
        d["payload"] = redact(j.payload or {})
        d["result"] = redact(j.result) if j.result is not None else None
    return d


def _admin():
    require_role("admin")


def _job(job_id: int) -> OutboxJob:
    j = g.db.get(OutboxJob, job_id)
    # get() by primary key may come from the identity map without the tenant filter: check
    if j is None or j.tenant_id != g.tenant.id:
        raise NotFound("outbox job", "任务")
    return j


def _replay(jobs: list[OutboxJob]) -> list[int]:
    now = utcnow()
    done = []
    for j in jobs:
        if j.status != "dead":
            continue
        j.status, j.attempts, j.run_at = "pending", 0, now
        j.locked_by = j.locked_until = j.finished_at = None
        done.append(j.id)
    if done:
        g.db.add(AuditLog(tenant_id=g.tenant.id, user_id=g.user.id, action="outbox_replay", object_type="outbox",
                          object_id=done[0] if len(done) == 1 else None, detail={"ids": done[:MAX_REPLAY]}))
    return done


@api.get("/tenants/<tenant>/outbox")
def list_outbox():
    """Outbox jobs, newest first (admin)."""
    _admin()
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(f"'status' must be one of {', '.join(STATUSES)}", message_zh=f"'status' 应为 {', '.join(STATUSES)} 之一",
                       code="bad_parameter")
    limit = int_arg("limit", 50, 1, 500)
    before = int_arg("before", None, 1)
    q = select(OutboxJob).order_by(OutboxJob.id.desc()).limit(limit + 1)
    if status:
        q = q.where(OutboxJob.status == status)
    if request.args.get("kind"):
        q = q.where(OutboxJob.kind == request.args["kind"])
    if before is not None:
        q = q.where(OutboxJob.id < before)
    rows = list(g.db.scalars(q))
    more = len(rows) > limit
    rows = rows[:limit]
    return ok({"jobs": [job_json(j) for j in rows], "has_more": more,
               "next_before": rows[-1].id if more and rows else None})


@api.get("/tenants/<tenant>/outbox/stats")
def outbox_stats():
    """Counts by status and kind, and the age of the oldest due pending job (admin)."""
    _admin()
    now = utcnow()
    by_status = {s: 0 for s in STATUSES}
    by_kind: dict[str, dict[str, int]] = {}
    for kind, status, n in g.db.execute(select(OutboxJob.kind, OutboxJob.status, func.count())
                                        .group_by(OutboxJob.kind, OutboxJob.status)):
        by_status[status] = by_status.get(status, 0) + n
        by_kind.setdefault(kind, {})[status] = n
    due = g.db.execute(select(func.count(), func.min(OutboxJob.run_at))
                       .where(OutboxJob.status == "pending", OutboxJob.run_at <= now)).one()
    oldest = g.db.scalar(select(func.min(OutboxJob.created_at)).where(OutboxJob.status == "pending"))
    return ok({"by_status": by_status, "by_kind": by_kind, "total": sum(by_status.values()),
               "due_pending": due[0],
               "oldest_pending_age_seconds": round((now - due[1]).total_seconds(), 3) if due[1] else None,
               "oldest_pending_created_at": oldest})


@api.get("/tenants/<tenant>/outbox/<int:job_id>")
def get_outbox_job(job_id: int):
    """One outbox job with its payload and result (admin; credentials masked)."""
    _admin()
    return ok({"job": job_json(_job(job_id))})


@api.post("/tenants/<tenant>/outbox/<int:job_id>/replay")
def replay_outbox_job(job_id: int):
    """Puts a dead job back in the queue: pending, attempts reset, due now (admin)."""
    _admin()
    j = _job(job_id)
    if j.status != "dead":
        raise Conflict(f"only dead jobs can be replayed; this one is {j.status}",
                       message_zh=f"只能重放死信任务;此任务状态为 {j.status}", status_now=j.status)
    _replay([j])
    return ok({"job": job_json(j)})


@api.post("/tenants/<tenant>/outbox/replay")
def replay_outbox_jobs():
    """Replays several dead jobs: {"ids": [...]} or {"all_dead": true, "kind": optional} (admin)."""
    _admin()
    data = body_object()
    ids, all_dead = data.get("ids"), data.get("all_dead")
    if all_dead is True:
        q = select(OutboxJob).where(OutboxJob.status == "dead").order_by(OutboxJob.id).limit(MAX_REPLAY)
        if data.get("kind"):
            q = q.where(OutboxJob.kind == str(data["kind"]))
        jobs = list(g.db.scalars(q))
        replayed = _replay(jobs)
        left = select(func.count()).where(OutboxJob.status == "dead")
        if data.get("kind"):
            left = left.where(OutboxJob.kind == str(data["kind"]))
        return ok({"replayed": replayed, "skipped": [], "remaining_dead": g.db.scalar(left)})
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ValidationFailed("send {\"ids\": [job ids]} or {\"all_dead\": true}",
                               message_zh="请发送 {\"ids\": [任务编号]} 或 {\"all_dead\": true}",
                               errors=[field_error("/ids", "must be a non-empty list of job ids", "应为非空的任务编号列表")])
    if len(ids) > MAX_REPLAY:
        raise ValidationFailed(f"at most {MAX_REPLAY} ids at a time", message_zh=f"一次最多 {MAX_REPLAY} 个",
                               errors=[field_error("/ids", f"at most {MAX_REPLAY} ids", f"最多 {MAX_REPLAY} 个")])
    jobs = list(g.db.scalars(select(OutboxJob).where(OutboxJob.id.in_(set(ids)))))
    found = {j.id for j in jobs}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"outbox job {missing[0]}", f"任务 {missing[0]}")
    replayed = _replay(jobs)
    return ok({"replayed": replayed, "skipped": [i for i in ids if i not in set(replayed)]})


def _document() -> None:
    """Describes the routes in the OpenAPI document (platform/api/openapi.py reads OPERATIONS)."""
    from zhongshu.platform.api import openapi as oa

    S, I, B = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
    nS, nI = {"type": ["string", "null"]}, {"type": ["integer", "null"]}
    job = {"type": "object", "properties": {
        "id": I, "kind": S, "status": {"enum": list(STATUSES)}, "priority": {"type": "integer", "minimum": 0, "maximum": 9},
        "attempts": I, "max_attempts": I, "idempotency_key": S, "run_at": S, "locked_by": nS, "locked_until": nS,
        "last_error": nS, "rule_run_id": nI, "created_at": S, "finished_at": nS,
        "payload": {"type": "object", "description": "Credential-like values are masked as ••••••"},
        "result": {}}}
    page = {"type": "object", "properties": {"jobs": {"type": "array", "items": job}, "has_more": B, "next_before": nI}}
    one = {"type": "object", "properties": {"job": job}}
    tags = ["outbox"]
    oa.QUERY_PARAMS.setdefault("outbox_status", {"name": "status", "description": "Only jobs in this status (`dead` is the dead-letter list).",
                                                 "schema": {"enum": list(STATUSES)}})
    oa.QUERY_PARAMS.setdefault("outbox_kind", {"name": "kind", "description": "Only jobs of this kind, e.g. `connector.action`.",
                                               "schema": S})
    oa.QUERY_PARAMS.setdefault("outbox_limit", {"name": "limit", "description": "Jobs per page (newest first).",
                                                "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}})
    oa.PATH_DOCS.setdefault("job_id", "The outbox job's id.")
    oa.OPERATIONS.update({
        "api_v1.list_outbox": {
            "summary": "Outbox jobs, newest first (admin)", "tags": tags,
            "query": ["outbox_status", "outbox_kind", "outbox_limit", "before"],
            "description": "Side effects waiting, running, done or dead-lettered. Page with `before=next_before`.",
            "response": page},
        "api_v1.outbox_stats": {
            "summary": "Outbox counts by status and kind (admin)", "tags": tags,
            "description": "`oldest_pending_age_seconds` is how long the oldest due pending job has been waiting "
                           "(the queue's lag); jobs waiting for a retry later are not due.",
            "response": {"type": "object", "properties": {
                "by_status": {"type": "object", "additionalProperties": I},
                "by_kind": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": I}},
                "total": I, "due_pending": I, "oldest_pending_age_seconds": {"type": ["number", "null"]},
                "oldest_pending_created_at": nS}}},
        "api_v1.get_outbox_job": {"summary": "One outbox job (admin)", "tags": tags, "response": one},
        "api_v1.replay_outbox_job": {
            "summary": "Replay a dead job (admin)", "tags": tags,
            "description": "The job becomes pending again with its attempts reset, due now. 409 when it is not dead.",
            "response": one},
        "api_v1.replay_outbox_jobs": {
            "summary": "Replay several dead jobs (admin)", "tags": tags,
            "description": f"`ids` (all must exist; those not dead are skipped) or `all_dead: true` (optionally of one "
                           f"`kind`), at most {MAX_REPLAY} jobs per call.",
            "body": {"type": "object", "properties": {"ids": {"type": "array", "items": I, "minItems": 1,
                                                                "maxItems": MAX_REPLAY},
                                                       "all_dead": B, "kind": S}},
            "response": {"type": "object", "properties": {"replayed": {"type": "array", "items": I},
                                                          "skipped": {"type": "array", "items": I},
                                                          "remaining_dead": I}}},
    })


_document()
