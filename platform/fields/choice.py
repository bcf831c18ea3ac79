"""Choice field types: boolean, single_select, multi_select.

Select values are stored as option ids, so renaming an option (or translating its label)
keeps every record's value. Input and output use the option's label.
"""
from __future__ import annotations

import json
import secrets

from sqlalchemy import Boolean, String, Text, and_, case, false, literal, or_

from .base import EMPTY_OPS, Ctx, FieldSpec, FieldType, FieldValueError, FilterError, escape_like, loads_stored_json
from .registry import register

TRUE_WORDS = {"true", "1", "yes", "y", "是", "对", "✓", "on"}
FALSE_WORDS = {"false", "0", "no", "n", "否", "不", "", "off"}


@register
class BooleanType(FieldType):
    name = "boolean"
    label = {"zh-CN": "是/否", "en": "Yes/No"}
    operators = ("=", "!=", *EMPTY_OPS)

    def column_type(self, spec):
        return Boolean()

    def to_storage(self, value, spec, ctx):
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS:
            return True
        if isinstance(value, str) and value.strip().lower() in FALSE_WORDS:
            return False
        raise FieldValueError(f"{value!r} is not yes/no (true/false, 是/否)", f"{value!r} 不是 是/否")

    def default(self, spec, ctx):
        d = spec.definition.get("default")
        return False if d is None else self.to_storage(d, spec, ctx)


CHOICES_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["choices"],
    "properties": {
        "choices": {
            "type": "array", "maxItems": 500,
            "items": {
                "type": "object", "required": ["label"], "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
                    "label": {"type": "string", "minLength": 1, "maxLength": 200},
                    "label_en": {"type": "string", "maxLength": 200},
                    "color": {"type": "string", "maxLength": 32},
                },
            },
        }
    },
}


def assign_choice_ids(options: dict, previous: dict | None = None) -> dict:
    """Gives new choices ids; a choice given without id keeps the id of a previous choice with
    the same label, so re-sending a definition never orphans data."""
    prev_by_label = {c["label"]: c["id"] for c in (previous or {}).get("choices", []) if "id" in c}
    out = []
    for c in options.get("choices", []):
        c = dict(c)
        if not c.get("id"):
            c["id"] = prev_by_label.get(c["label"]) or "opt_" + secrets.token_hex(4)
        out.append(c)
    return {**options, "choices": out}


class SelectBase(FieldType):
    options_schema = CHOICES_SCHEMA

    def choices(self, spec):
        return spec.options.get("choices", [])

    def check_definition(self, spec, table_fields):
        problems = []
        labels = [c["label"] for c in self.choices(spec)]
        ids = [c.get("id") for c in self.choices(spec) if c.get("id")]
        for dup in sorted({l for l in labels if labels.count(l) > 1}):
            problems.append(("/options/choices", f"the option {dup!r} appears twice", f"选项 {dup!r} 重复"))
        if len(ids) != len(set(ids)):
            problems.append(("/options/choices", "option ids must be unique", "选项 id 不能重复"))
        return problems

    def option_id(self, value, spec) -> str:
        if isinstance(value, dict):
            value = value.get("id") or value.get("label")
        if not isinstance(value, str):
            raise FieldValueError("must be one of the options (text)", "应为选项之一(文本)")
        for c in self.choices(spec):
            if value == c["label"] or value == c.get("id") or value == c.get("label_en"):
                return c["id"]
        opts = ", ".join(c["label"] for c in self.choices(spec)[:30])
        raise FieldValueError(f"{value!r} is not an option; the options are: {opts}", f"{value!r} 不是可选项;可选: {opts}")

    def label_of(self, option_id, spec):
        for c in self.choices(spec):
            if c["id"] == option_id:
                return c["label"]
        return None  # an option removed after the value was stored


@register
class SingleSelect(SelectBase):
    name = "single_select"
    label = {"zh-CN": "单选", "en": "Single select"}
    operators = ("=", "!=", "in", "not_in", *EMPTY_OPS)

    def column_type(self, spec):
        return String(64)

    def to_storage(self, value, spec, ctx):
        if value is None or value == "":
            return None
        return self.option_id(value, spec)

    def from_storage(self, value, spec, ctx):
        return None if value is None else self.label_of(value, spec)

    def writer(self, spec, ctx):
        """``to_storage`` with the options' labels and ids in a dict (the first option that
        matches wins, as in ``option_id``)."""
        if type(self).to_storage is not SingleSelect.to_storage or type(self).option_id is not SelectBase.option_id:
            return super().writer(spec, ctx)
        ids: dict = {}
        for c in self.choices(spec):
            for k in (c["label"], c.get("id"), c.get("label_en")):
                if k:
                    ids.setdefault(k, c["id"])
        to_storage = self.to_storage

        def write(value):
            if type(value) is str:
                found = ids.get(value)
                if found is not None:
                    return found
            return to_storage(value, spec, ctx)
        return write

    def reader(self, spec, ctx):
        labels = {c["id"]: c["label"] for c in self.choices(spec)}
        return lambda v: None if v is None else labels.get(v)

    def sort_expression(self, col, spec):
        # Options sort in the order the user arranged them, not alphabetically.
        whens = {c["id"]: i for i, c in enumerate(self.choices(spec))}
        if not whens:
            return col
        return case(whens, value=col, else_=len(whens))


@register
class MultiSelect(SelectBase):
    """Stored as a JSON list of option ids (text), filtered with LIKE on the quoted id."""

    name = "multi_select"
    label = {"zh-CN": "多选", "en": "Multiple select"}
    operators = ("has_any", "has_all", "contains", "=", *EMPTY_OPS)
    sortable = False

    def column_type(self, spec):
        return Text()

    def to_storage(self, value, spec, ctx):
        if value is None or value == "" or value == []:
            return None
        if isinstance(value, str):
            value = [v.strip() for v in value.replace("，", ",").split(",") if v.strip()]
        if not isinstance(value, list):
            raise FieldValueError("must be a list of options", "应为选项列表")
        ids = []
        for v in value:
            oid = self.option_id(v, spec)
            if oid not in ids:
                ids.append(oid)
        # Canonical order = the options' order, so equal selections store equal text.
        order = {c["id"]: i for i, c in enumerate(self.choices(spec))}
        ids.sort(key=lambda i: order.get(i, len(order)))
        return json.dumps(ids) if ids else None

    def from_storage(self, value, spec, ctx):
        if not value:
            return []
        return [l for l in (self.label_of(i, spec) for i in json.loads(value)) if l is not None]

    def reader(self, spec, ctx):
        labels = {c["id"]: c["label"] for c in self.choices(spec)}
        loads = loads_stored_json
        return lambda v: [labels[i] for i in loads(v) if i in labels] if v else []

    def is_empty(self, stored):
        return not stored

    def filter(self, col, op, value, spec, ctx):
        if op in ("has_any", "has_all", "contains", "="):
            vals = value if isinstance(value, list) else [value]
            if op == "=" and not isinstance(value, list):
                raise FilterError(f"{spec.api_name}: '=' needs the full list of options", f"{spec.api_name}: '=' 需要完整的选项列表")
            if op == "=":
                return col == self.filter_value(value, spec, ctx)
            try:
                ids = [self.option_id(v, spec) for v in vals]
            except FieldValueError as e:
                raise FilterError(f"{spec.api_name}: {e.message}", f"{spec.api_name}: {e.message_zh}") from None
            likes = [col.like(f'%"{escape_like(i)}"%', escape="\\") for i in ids]
            if not likes:
                return false()
            return and_(*likes) if op == "has_all" else or_(*likes)
        if op == "is_empty":
            return or_(col.is_(None), col == "[]")
        return super().filter(col, op, value, spec, ctx)
