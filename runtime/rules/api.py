"""REST routes of the rule runtime: rules, dry runs, run logs, buttons, form submissions
and approvals (registered on the platform's /api/v1 blueprint)."""
from __future__ import annotations

from flask import g, request
from sqlalchemy import or_, select

from zhongshu.platform.api.base import api, body_object, int_arg, metadata, ok, records, require_role
from zhongshu.platform.errors import ApiError, Conflict, Forbidden, NotFound, ValidationFailed, field_error
from zhongshu.platform.models import AuditLog, UserTable, utcnow
from zhongshu.platform.validation import validate

from ..models import Approval, Rule, RuleRun
from .actions import action_catalogue
from .definition import ACTION_REASON_PREFIX, TRIGGERS, RuleCompiler, check_connector_actions
from .engine import compile_rule, dry_run, fire_for_record, run_rule
from ..bridge import Loader


def rule_json(r: Rule) -> dict:
    return {"id": r.id, **r.definition, "api_name": r.api_name, "enabled": r.enabled, "position": r.position,
            "disabled_reason": r.disabled_reason, "updated_at": r.updated_at.isoformat() + "Z" if r.updated_at else None}


def _rule(ref) -> Rule:
    q = select(Rule)
    q = q.where(Rule.id == int(ref)) if str(ref).isdigit() else q.where(Rule.api_name == ref)
    r = g.db.scalar(q)
    if r is None:
        raise NotFound(f"rule '{ref}'", f"规则 '{ref}'")
    return r


def save_rule(session, recs, definition: dict, existing: Rule | None = None, *, owner_id=None, tenant_id=None) -> Rule:
    """Validates (schema, fields, expressions, templates, the connector actions it calls
    and their inputs) and stores a rule."""
    table = RuleCompiler(recs, definition).check()
    check_connector_actions(session, definition)
    if existing is None or existing.api_name != definition["api_name"]:
        if session.scalar(select(Rule).where(Rule.api_name == definition["api_name"])):
            raise ValidationFailed(f"a rule named {definition['api_name']} already exists", message_zh=f"规则 {definition['api_name']} 已存在",
                                   code="conflict", errors=[field_error("/api_name", "already exists", "已存在")])
    r = existing or Rule(tenant_id=tenant_id)
    r.api_name = definition["api_name"]
    r.table_id = table.id if table is not None else None
    r.definition = definition
    r.enabled = definition.get("enabled", True) if existing is None or "enabled" in definition else r.enabled
    if existing is not None and not r.enabled and (r.disabled_reason or "").startswith(ACTION_REASON_PREFIX) \
            and definition.get("enabled", True):
        r.enabled = True  # switched off for a wrong connector action, which is right now
    if r.enabled:
        r.disabled_reason = None
    if "position" in definition:
        r.position = definition["position"]
    elif existing is None:
        r.position = (session.scalar(select(Rule.position).where(Rule.table_id == r.table_id).order_by(Rule.position.desc())) or 0) + 10
    r.owner_id = r.owner_id or owner_id
    r.updated_at = utcnow()
    if existing is None:
        session.add(r)
    session.flush()
    return r


@api.get("/tenants/<tenant>/rules")
def list_rules():
    require_role("builder")  # definitions and run logs name fields, values and connectors of every table
    q = select(Rule).order_by(Rule.table_id, Rule.position, Rule.id)
    table = request.args.get("table")
    if table:
        q = q.where(Rule.table_id == records().schema(table).id)
    return ok({"rules": [rule_json(r) for r in g.db.scalars(q)]})


@api.post("/tenants/<tenant>/rules")
def create_rule():
    require_role("builder")
    d = body_object()
    r = save_rule(g.db, records(), d, owner_id=g.user.id, tenant_id=g.tenant.id)
    g.db.add(AuditLog(tenant_id=g.tenant.id, user_id=g.user.id, action="create", object_type="rule", object_id=r.id, detail={"api_name": r.api_name}))
    return ok({"rule": rule_json(r)}, 201)


@api.get("/tenants/<tenant>/rules/<ref>")
def get_rule(ref):
    require_role("builder")
    return ok({"rule": rule_json(_rule(ref))})


@api.patch("/tenants/<tenant>/rules/<ref>")
def update_rule(ref):
    require_role("builder")
    r = _rule(ref)
    patch = body_object()
    if set(patch) <= {"enabled", "position"}:  # the on/off switch and ordering need no re-check
        if "enabled" in patch:
            if not isinstance(patch["enabled"], bool):
                raise ValidationFailed("enabled must be true or false", message_zh="enabled 应为 true 或 false",
                                       errors=[field_error("/enabled", "true or false", "true 或 false")])
            if patch["enabled"] and not r.enabled:
                check_connector_actions(g.db, r.definition)  # switched off for a wrong action: still wrong?
            r.enabled = patch["enabled"]
            r.definition = {**r.definition, "enabled": patch["enabled"]}
            if r.enabled:
                r.disabled_reason = None
        if "position" in patch:
            r.position = int(patch["position"])
        r.updated_at = utcnow()
    else:
        d = {**r.definition, **patch}
        d.setdefault("api_name", r.api_name)
        save_rule(g.db, records(), d, existing=r)
    g.db.add(AuditLog(tenant_id=g.tenant.id, user_id=g.user.id, action="update", object_type="rule", object_id=r.id, detail={"patch": patch}))
    return ok({"rule": rule_json(r)})


@api.delete("/tenants/<tenant>/rules/<ref>")
def delete_rule(ref):
    require_role("builder")
    r = _rule(ref)
    g.db.add(AuditLog(tenant_id=g.tenant.id, user_id=g.user.id, action="delete", object_type="rule", object_id=r.id, detail={"definition": r.definition}))
    g.db.delete(r)
    return ok({"ok": True})


@api.post("/tenants/<tenant>/rules/<ref>/dry-run")
def dry_run_rule(ref):
    """What the rule would do for a record: condition, field changes, messages — nothing is kept."""
    require_role("builder")
    r = _rule(ref)
    data = body_object() if request.data else {}
    rid = data.get("record_id")
    if r.table_id and not isinstance(rid, int):
        raise ValidationFailed("record_id is required for a rule of a table", message_zh="表规则需要 record_id",
                               errors=[field_error("/record_id", "required", "必填")])
    return ok({"rule": r.api_name, **dry_run(records(), r, rid)})


def _runs_json(rows) -> list[dict]:
    return [{"id": x.id, "rule_id": x.rule_id, "table_id": x.table_id, "record_id": x.record_id, "trigger": x.trigger,
             "status": x.status, "condition": x.condition, "actions": x.actions, "inputs": x.inputs, "error": x.error,
             "duration_ms": x.duration_ms, "at": x.at.isoformat() + "Z"} for x in rows]


@api.get("/tenants/<tenant>/rules/<ref>/runs")
def rule_runs(ref):
    require_role("builder")
    r = _rule(ref)
    limit = int_arg("limit", 100, 1, 1000)
    q = select(RuleRun).where(RuleRun.rule_id == r.id).order_by(RuleRun.id.desc()).limit(limit)
    before = int_arg("before", None, 1)
    if before:
        q = q.where(RuleRun.id < before)
    if request.args.get("status"):
        q = q.where(RuleRun.status == request.args["status"])
    return ok({"runs": _runs_json(g.db.scalars(q))})


_FAILED = ("the rule failed; a builder sees why in the rule's run log", "规则执行失败,构建者可在规则的运行记录中查看原因")


def _run_summary(run: dict) -> dict:
    """A run as a role below builder sees it: which rule, when, how it ended and which
    actions ran (type and ok). Not what the rule read or wrote — inputs, values set,
    messages, payloads — nor its error text: any of these may quote fields hidden from the
    role or records of tables it cannot read."""
    actions = [{"type": a.get("type"), "ok": a.get("ok")} for a in run["actions"] or [] if isinstance(a, dict)]
    inputs = run["inputs"] if isinstance(run["inputs"], dict) else {}
    return {**run, "actions": actions, "inputs": {k: inputs[k] for k in ("record_id", "trigger", "occasion") if k in inputs},
            "error": _FAILED[0] if run["error"] else None, "error_zh": _FAILED[1] if run["error"] else None,
            "summary": True}


@api.get("/tenants/<tenant>/tables/<table>/records/<int:record_id>/runs")
def record_runs(table, record_id):
    """Open to whoever may read the record (its form's runs tab); whole for builders and
    above, summarised (``_run_summary``) for the roles below."""
    recs = records()
    s = recs.schema(table)
    recs.get(s, record_id, deleted=None)  # read permission and existence
    q = select(RuleRun).where(RuleRun.table_id == s.id, RuleRun.record_id == record_id).order_by(RuleRun.id.desc()).limit(int_arg("limit", 100, 1, 1000))
    runs = _runs_json(g.db.scalars(q))
    if not g.actor.at_least("builder"):
        runs = [_run_summary(r) for r in runs]
    return ok({"runs": runs})


@api.post("/tenants/<tenant>/tables/<table>/records/<int:record_id>/buttons/<ref>")
def press_button(table, record_id, ref):
    recs = records()
    s = recs.schema(table)
    recs.access(s).require_write(s)
    recs.get(s, record_id)
    r = _rule(ref)
    if r.table_id != s.id or r.definition["trigger"]["type"] != "button" or not r.enabled:
        raise NotFound(f"button '{ref}'", f"按钮 '{ref}'")
    rule = compile_rule(recs, r)
    rec = Loader(recs).load(s, record_id, rule.record_paths())
    res = run_rule(recs, rule, s, record_id, rec, trigger="button", occasion=f"button{utcnow().timestamp()}")
    return ok({"rule": r.api_name, **res, "record": recs.get(s, record_id)})


@api.post("/tenants/<tenant>/tables/<table>/views/<view>/submit")
def submit_form(table, view):
    """A form view's submission: the record is created and form_submitted rules run."""
    from zhongshu.platform.api.meta_routes import _view

    schema, v = _view(table, view)
    if v.type != "form":
        raise ValidationFailed(f"view {view} is not a form", message_zh=f"视图 {view} 不是表单")
    data = body_object()
    allowed = set(v.definition.get("fields") or schema.fields)
    extra = set(data) - allowed
    if extra:
        k = sorted(extra)[0]
        raise ValidationFailed(f"the form has no field '{k}'", message_zh=f"表单中没有字段 '{k}'", errors=[field_error(f"/{k}", "not in this form", "不在表单中")])
    recs = records()
    rec = recs.create(schema, data)
    runs = fire_for_record(recs, schema, rec["id"], "form_submitted", match=lambda r: r.trigger.get("view") in (None, v.api_name))
    return ok({"record": recs.get(schema, rec["id"]), "rules": runs}, 201)


@api.get("/tenants/<tenant>/rule-catalogue")
def rule_catalogue():
    """Trigger and action types with their parameter schemas (for the visual rule builder)."""
    return ok({"triggers": TRIGGERS, "actions": action_catalogue()})


# -- approvals -----------------------------------------------------------------------

def approval_json(a: Approval) -> dict:
    return {"id": a.id, "title": a.title, "status": a.status, "table_id": a.table_id, "record_id": a.record_id,
            "approvers": a.approvers, "rule_id": a.rule_id, "decided_by": a.decided_by, "comment": a.comment,
            "decided_at": a.decided_at.isoformat() + "Z" if a.decided_at else None, "created_at": a.created_at.isoformat() + "Z"}


def _may_decide(a: Approval) -> bool:
    ap = a.approvers or {}
    return (g.actor.role in (ap.get("roles") or [])) or (g.user.id in (ap.get("users") or [])) or g.actor.at_least("admin")


@api.get("/tenants/<tenant>/approvals")
def list_approvals():
    q = select(Approval).order_by(Approval.id.desc()).limit(int_arg("limit", 100, 1, 1000))
    status = request.args.get("status")
    if status:
        q = q.where(Approval.status == status)
    rows = g.db.scalars(q).all()
    if request.args.get("mine") in ("1", "true"):
        rows = [a for a in rows if _may_decide(a)]
    return ok({"approvals": [approval_json(a) for a in rows]})


@api.post("/tenants/<tenant>/approvals/<int:approval_id>/decide")
def decide_approval(approval_id):
    data = body_object()
    decision = data.get("decision")
    if decision not in ("approve", "reject"):
        raise ValidationFailed("decision must be approve or reject", message_zh="decision 应为 approve 或 reject",
                               errors=[field_error("/decision", "approve or reject", "approve 或 reject")])
    a = g.db.get(Approval, approval_id)
    if a is None or a.tenant_id != g.tenant.id:
        raise NotFound("approval", "审批")
    if not _may_decide(a):
        raise Forbidden("you are not an approver of this request", message_zh="你不是该审批的审批人")
    if a.status != "pending":
        raise Conflict(f"this approval was already {a.status}", message_zh=f"该审批已{'通过' if a.status == 'approved' else '驳回'}")
    a.status = "approved" if decision == "approve" else "rejected"
    a.decided_by, a.decided_at = g.user.id, utcnow()
    a.comment = (data.get("comment") or "")[:2000] or None
    g.db.flush()
    recs = records()
    table = recs.schema(a.table_id)
    actions = (a.payload or {}).get("on_approve" if decision == "approve" else "on_reject") or []
    result = {}
    rule_row = g.db.get(Rule, a.rule_id) if a.rule_id else None
    if actions and rule_row is not None:
        rule = compile_rule(recs, rule_row)
        rec = Loader(recs).load(table, a.record_id, rule.record_paths())
        result = run_rule(recs, rule, table, a.record_id, rec, trigger="approval_decided", actions=actions,
                          check_condition=False, occasion=f"approval{a.id}")
    fire_for_record(recs, table, a.record_id, "approval_decided")
    return ok({"approval": approval_json(a), "result": result})


from .openapi_docs import describe as _describe  # noqa: E402

_describe()
