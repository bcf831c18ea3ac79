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
