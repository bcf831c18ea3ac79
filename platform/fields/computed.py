"""Computed field slots: formula, lookup, rollup.

They are stored columns of their result type, so they filter, sort and index like any
other column. The runtime computes them inside the write's transaction; here they only
declare their storage and refuse values written by users.
"""
from __future__ import annotations

from .base import Ctx, FieldSpec, FieldType, FieldValueError
from .registry import get, register

RESULT_TYPES = ["text", "number", "currency", "percent", "boolean", "date", "datetime", "json"]
RESULT_SCHEMA = {"enum": RESULT_TYPES, "description": "the type of the computed value"}


class ResultTyped(FieldType):
    computed = True
    operators = ("=", "!=", "<", "<=", ">", ">=", "between", "in", "not_in", "contains", "starts_with",
                 "older_than", "within_last", "today", "is_empty", "is_not_empty")
    default_result = "text"

    def result_type(self, spec) -> str:
        return spec.options.get("result_type", self.default_result)

    def delegate(self, spec) -> FieldType:
        return get(self.result_type(spec))

    def column_type(self, spec):
        return self.delegate(spec).column_type(spec)

    def to_storage(self, value, spec, ctx):
        return self.delegate(spec).to_storage(value, spec, ctx)

    def from_storage(self, value, spec, ctx):
        return self.delegate(spec).from_storage(value, spec, ctx)

    def reader(self, spec, ctx):
        return self.delegate(spec).reader(spec, ctx)

    def filter(self, col, op, value, spec, ctx):
        return self.delegate(spec).filter(col, op, value, spec, ctx)

    def sort_expression(self, col, spec):
        return self.delegate(spec).sort_expression(col, spec)

    @property
    def searchable(self):  # text results can be searched
        return False


@register
class Formula(ResultTyped):
    name = "formula"
    label = {"zh-CN": "公式", "en": "Formula"}
    options_schema = {
        "type": "object", "additionalProperties": False, "required": ["expression"],
        "properties": {
            "expression": {"type": "string", "minLength": 1, "maxLength": 4000},
            "result_type": RESULT_SCHEMA,
            "decimals": {"type": "integer", "minimum": 0, "maximum": 8},
        },
    }
    default_result = "number"


@register
class Lookup(ResultTyped):
    name = "lookup"
    label = {"zh-CN": "查找引用", "en": "Lookup"}
    options_schema = {
        "type": "object", "additionalProperties": False, "required": ["through", "field"],
        "properties": {
            "through": {"$ref": "table.json#/$defs/api_name", "description": "the link or sub_table field to follow"},
            "field": {"$ref": "table.json#/$defs/api_name", "description": "the field of the linked records to show"},
            "result_type": RESULT_SCHEMA,
            "decimals": {"type": "integer", "minimum": 0, "maximum": 8},
        },
    }


@register
class Rollup(ResultTyped):
    name = "rollup"
    label = {"zh-CN": "汇总", "en": "Rollup"}
    options_schema = {
        "type": "object", "additionalProperties": False, "required": ["through", "fn"],
        "properties": {
            "through": {"$ref": "table.json#/$defs/api_name"},
            "field": {"$ref": "table.json#/$defs/api_name"},
            "fn": {"enum": ["sum", "count", "avg", "min", "max", "count_distinct"]},
            "filter": {"$ref": "filter.json"},
            "result_type": RESULT_SCHEMA,
            "decimals": {"type": "integer", "minimum": 0, "maximum": 8},
        },
    }
    default_result = "number"
