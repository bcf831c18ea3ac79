"""Rule documents: the JSON Schema (composed from the trigger list and the action registry)
and compilation — every expression and template in a rule is checked at save time with its
position, so a broken rule never reaches run time."""
from __future__ import annotations

from dataclasses import dataclass, field

from zhongshu.platform.errors import ValidationFailed, field_error
from zhongshu.platform.storage.schema import TableSchema
from zhongshu.platform.validation import validate

from ..bridge import expression_schema
from ..expressions import ExpressionError, FieldInfo, Schema, compile_expression

TRIGGERS = {
    "record_created": {"zh-CN": "新建记录时", "en": "When a record is created"},
    "record_updated": {"zh-CN": "记录更新时", "en": "When a record is updated"},
    "record_deleted": {"zh-CN": "删除记录时", "en": "When a record is deleted"},
    "condition_true": {"zh-CN": "条件变为成立时", "en": "When a condition becomes true"},
    "time_after": {"zh-CN": "某时间之后(条件仍成立)", "en": "Some time after a date, while a condition holds"},
    "schedule": {"zh-CN": "定时", "en": "On a schedule"},
    "connector_event": {"zh-CN": "收到连接器事件", "en": "When a connector event arrives"},
    "button": {"zh-CN": "点击按钮", "en": "When a button is clicked"},
    "form_submitted": {"zh-CN": "表单提交", "en": "When a form is submitted"},
    "approval_decided": {"zh-CN": "审批完成", "en": "When an approval is decided"},
}
RECORDLESS = {"schedule"}
API_NAME = {"$ref": "table.json#/$defs/api_name"}
LABEL = {"$ref": "table.json#/$defs/label"}


def rule_schema() -> dict:
    from .actions import ACTIONS

    action_ref = {"$ref": "#/$defs/action"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://zhongshu.dev/schemas/rule.json",
        "title": "Rule: trigger -> condition -> actions",
        "type": "object", "required": ["api_name", "trigger", "actions"], "additionalProperties": False,
        "properties": {
            "api_name": API_NAME, "label": LABEL, "description": {"type": "string", "maxLength": 4000},
            "table": API_NAME,
            "enabled": {"type": "boolean"},
            "position": {"type": "integer", "minimum": 0, "maximum": 100000},
            "trigger": {
                "type": "object", "required": ["type"], "additionalProperties": False,
                "properties": {
                    "type": {"enum": list(TRIGGERS)},
                    "fields": {"type": "array", "items": API_NAME, "maxItems": 100,
                               "description": "record_updated: only when one of these fields changed"},
                    "field": {"type": "string", "maxLength": 64, "description": "time_after: the date field"},
                    "offset": {"type": "string", "maxLength": 40, "description": "time_after: e.g. '30 minutes', '2 hours', '7 days'"},
                    "cron": {"type": "string", "maxLength": 100},
                    "every": {"type": "string", "maxLength": 40, "description": "schedule: e.g. '10 minutes'"},
                    "for_each": {"$ref": "filter.json", "description": "schedule: run for every record matching this filter"},
                    "install": API_NAME, "event_type": {"type": "string", "maxLength": 100},
                    "view": API_NAME, "label": LABEL,
                },
            },
            "condition": {
                "oneOf": [
                    {"type": "string", "maxLength": 4000, "description": "an expression, e.g. amount_paid > 0 and status == '待付款'"},
                    {"type": "object", "required": ["filter"], "additionalProperties": False,
                     "properties": {"filter": {"$ref": "filter.json"}}},
                ]
            },
            "actions": {"type": "array", "items": action_ref, "maxItems": 50},
            "else": {"type": "array", "items": action_ref, "maxItems": 50},
            "log": {"enum": ["matched", "all"], "description": "log every evaluation or only runs whose condition held"},
        },
        "$defs": {
            "action": {
                "type": "object", "required": ["type"],
                "properties": {"type": {"enum": list(ACTIONS)}},
                "allOf": [
                    {"if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                     "then": {"properties": {"type": {"const": name}, **a.params}, "required": a.required,
                              "additionalProperties": False}}
                    for name, a in ACTIONS.items()
                ],
            }
        },
    }


@dataclass
class Scope:
    """What expressions in one place of a rule may reference."""

    table: TableSchema | None
    schema: Schema
    extras: dict = field(default_factory=dict)

    def with_binding(self, name: str, schema: Schema, many: bool = False) -> "Scope":
        fields = dict(self.schema)
        fields[name] = FieldInfo("link", schema=schema, many=many)
        return Scope(self.table, Schema(fields), {**self.extras, name: schema})


class RuleCompiler:
    """Checks a rule document against the table it belongs to; collects errors with pointers."""

    def __init__(self, records, definition: dict):
        self.records = records
        self.definition = definition
        self.errors: list[dict] = []
        self.table: TableSchema | None = None
        self.references: set[str] = set()
        self.bindings: set[str] = set()

    def fail(self, pointer: str, en: str, zh: str):
        self.errors.append(field_error(pointer, en, zh))

    def scope_for(self, table: TableSchema | None) -> Scope:
        if table is None:
            return Scope(None, Schema({}))
        return Scope(table, expression_schema(self.records, table))

    def expr(self, source, scope: Scope, pointer: str):
        if not isinstance(source, str):
            return None
        self.bindings.update(scope.extras)
        try:
            compiled = compile_expression(source, scope.schema)
            self.references.update(compiled.references)
            return compiled
        except ExpressionError as e:
            line, col = e.position if e.position else (1, 0)
            self.fail(pointer, f"{e.message_en} (line {line}, column {col + 1})", f"{e.message_zh}(第 {line} 行第 {col + 1} 列)")
            return None

    def template(self, source, pointer: str):
        from ..templating import check_template

        if not isinstance(source, str):
            return
        for e in check_template(source):
            self.fail(pointer, f"{e.message_en} (line {e.line})", f"{e.message_zh}(第 {e.line} 行)")

    def table_named(self, name: str, pointer: str) -> TableSchema | None:
        from zhongshu.platform.errors import NotFound

        try:
            return self.records.schema(name)
        except NotFound:
            self.fail(pointer, f"no table named {name}", f"没有名为 {name} 的表")
            return None

    def check(self) -> TableSchema | None:
        from .actions import ACTIONS

        validate("rule", self.definition)
        d = self.definition
        trig = d["trigger"]
        if d.get("table"):
            self.table = self.table_named(d["table"], "/table")
        elif trig["type"] not in RECORDLESS:
            self.fail("/table", f"a '{trig['type']}' rule belongs to a table", f"'{trig['type']}' 规则需要指定表")
        scope = self.scope_for(self.table)
        t = trig["type"]
        if t == "time_after":
            if not trig.get("field") or not trig.get("offset"):
                self.fail("/trigger", "time_after needs 'field' (a date field) and 'offset' such as '30 minutes'",
                          "time_after 需要 'field'(日期字段)和 'offset'(例如 '30 分钟')")
            elif self.table is not None:
                spec = self.table.fields.get(trig["field"]) or self.table.system_specs.get(trig["field"])
                if spec is None or spec.type.name not in ("date", "datetime", "created_time", "modified_time") and not (
                        spec.type.name == "formula" and spec.options.get("result_type") in ("date", "datetime")):
                    self.fail("/trigger/field", f"'{trig['field']}' is not a date field", f"'{trig['field']}' 不是日期字段")
                from zhongshu.platform.fields.time import parse_duration
                from zhongshu.platform.fields.base import FilterError

                try:
                    parse_duration(trig["offset"])
                except FilterError as e:
                    self.fail("/trigger/offset", e.message, e.message_zh)
        if t == "schedule":
            if not trig.get("cron") and not trig.get("every"):
                self.fail("/trigger", "a schedule needs 'cron' (e.g. '*/10 * * * *') or 'every' (e.g. '10 minutes')",
                          "定时规则需要 'cron' 或 'every'")
            if trig.get("cron"):
                from apscheduler.triggers.cron import CronTrigger

                try:
                    CronTrigger.from_crontab(trig["cron"])
                except ValueError as e:
                    self.fail("/trigger/cron", f"not a cron expression: {e}", f"不是有效的 cron 表达式: {e}")
            if trig.get("for_each") and self.table is None:
                self.fail("/trigger/for_each", "for_each needs the rule's table", "for_each 需要指定表")
        if t == "record_updated" and self.table is not None:
            for i, f in enumerate(trig.get("fields", [])):
                if f not in self.table.fields:
                    self.fail(f"/trigger/fields/{i}", f"no field '{f}'", f"没有字段 '{f}'")
        cond = d.get("condition")
        if isinstance(cond, str):
            self.expr(cond, scope, "/condition")
        elif isinstance(cond, dict) and self.table is not None:
            from zhongshu.platform.fields.base import FilterError

            try:
                self.records.compiler().where(self.table, cond["filter"])
            except FilterError as e:
                self.fail("/condition/filter", e.message, e.message_zh)
        for key in ("actions", "else"):
            for i, a in enumerate(d.get(key, [])):
                ACTIONS[a["type"]].check(self, a, scope, f"/{key}/{i}")
        if self.errors:
            first = self.errors[0]
            raise ValidationFailed(f"the rule has problems: {first['pointer']}: {first['message']}",
                                   message_zh=f"规则有误: {first['pointer']}: {first['message_zh']}", errors=self.errors)
        return self.table


# -- connector actions (checked when a rule is saved) --------------------------------------

#: disabled_reason of a rule switched off because a connector action it calls is wrong
#: (never starts with "connector ": the template installer's re-check owns those reasons)
ACTION_REASON_PREFIX = "invalid connector action"
CONNECTOR_ACTION_TYPES = ("notify", "call_connector")
_TEMPLATE_MARKS = ("{{", "{%")
#: schema checks a template can only pass once rendered (its value is known at run time)
_RUNTIME_VALIDATORS = {"enum", "const", "pattern", "format", "minLength", "maxLength"}


def connector_calls(definition, pointer: str = ""):
    """(pointer, action) of every notify / call_connector action anywhere in a rule
    (branches, loops, approvals' on_approve / on_reject included)."""
    if isinstance(definition, dict):
        if definition.get("type") in CONNECTOR_ACTION_TYPES and "connector" in definition and "action" in definition:
            yield pointer, definition
        for k, v in definition.items():
            if isinstance(v, (dict, list)):
                yield from connector_calls(v, f"{pointer}/{k}")
    elif isinstance(definition, list):
        for i, v in enumerate(definition):
            yield from connector_calls(v, f"{pointer}/{i}")


def _is_template(value) -> bool:
    return isinstance(value, str) and any(m in value for m in _TEMPLATE_MARKS)


def connector_action_errors(session, definition: dict, install: str | None = None) -> list[dict]:
    """Field errors (JSON pointer, en, zh) for connector actions the install's connector
    does not have, and for inputs that do not match the action's input schema. An install
    that does not exist (yet: a template's rules are saved before its connectors are set
    up, then left off by the installer) or whose connector is not loaded is not checked here;
    the call fails at run time and shows in the outbox."""
    from jsonschema import Draft202012Validator
    from sqlalchemy import select

    from zhongshu.connectors.api import apply_defaults
    from zhongshu.connectors.service.installs import registry

    from ..models import ConnectorInstall

    calls = [(p, a) for p, a in connector_calls(definition) if install is None or a.get("connector") == install]
    if not calls:
        return []
    names = {a["connector"] for _, a in calls if isinstance(a.get("connector"), str)}
    q = select(ConnectorInstall.api_name, ConnectorInstall.connector).where(ConnectorInstall.api_name.in_(names))
    if session.info.get("tenant_id") is not None:  # (the session's tenant filter applies as well)
        q = q.where(ConnectorInstall.tenant_id == session.info["tenant_id"])
    installs = dict(session.execute(q).all()) if names else {}
    reg = registry(None)
    errors = []
    for ptr, a in calls:
        connector = installs.get(a.get("connector"))
        if connector is None or connector not in reg:
            continue
        manifest = reg.manifest(connector)
        spec = next((s for s in manifest.actions if s.name == a["action"]), None)
        if spec is None:
            valid = ", ".join(s.name for s in manifest.actions) or "(none)"
            errors.append(field_error(
                f"{ptr}/action",
                f"connector '{a['connector']}' ({connector}) has no action '{a['action']}'; its actions: {valid}",
                f"连接器 '{a['connector']}'（{connector}）没有动作 '{a['action']}'；可用的动作：{valid}",
                valid_actions=[s.name for s in manifest.actions]))
            continue
        data = apply_defaults(spec.input_schema, {k: v for k, v in (a.get("input") or {}).items() if k != "data"})
        for e in sorted(Draft202012Validator(spec.input_schema).iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
            if e.validator in _RUNTIME_VALIDATORS and _is_template(e.instance):
                continue
            where = "/".join(map(str, e.absolute_path))
            errors.append(field_error(f"{ptr}/input" + (f"/{where}" if where else ""),
                                      f"does not match the input of {connector}.{spec.name}: {e.message}",
                                      f"与 {connector}.{spec.name} 的输入不符：{e.message}"))
    return errors


def check_connector_actions(session, definition: dict) -> None:
    """Raises ValidationFailed (400) naming each wrong connector action or input."""
    errors = connector_action_errors(session, definition)
    if errors:
        first = errors[0]
        raise ValidationFailed(f"the rule has problems: {first['pointer']}: {first['message']}",
                               message_zh=f"规则有误: {first['pointer']}: {first['message_zh']}", errors=errors)


def action_reason(install: str, error: dict) -> str:
    return f"{ACTION_REASON_PREFIX} ({install}): {error['pointer']}: {error['message']}"[:500]


def switch_off_invalid_connector_rules(session, install: str) -> list[dict]:
    """The install re-check for rules saved before their actions were checked (or before the
    install existed, or when the connector changed): every switched-on rule calling
    ``install`` with an action its connector does not have, or an input that does not
    match, is switched off with the reason (``disabled_reason`` "invalid connector action
    (<install>): <pointer>: ..."), never left to fail in the outbox or stop a load. Saving
    the rule with the action fixed switches it on again."""
    from sqlalchemy import select

    from ..models import Rule

    off = []
    for r in session.scalars(select(Rule).where(Rule.enabled.is_(True)).order_by(Rule.api_name)):
        errors = connector_action_errors(session, r.definition or {}, install)
        if errors:
            r.enabled, r.disabled_reason = False, action_reason(install, errors[0])
            off.append({"rule": r.api_name, "reason": r.disabled_reason})
    if off:
        session.flush()
    return off
