"""Relations: link (many-to-one, one-to-many, many-to-many), sub_table, and the people
columns created_by / modified_by."""
from __future__ import annotations

from sqlalchemy import BigInteger, Integer

from .base import EMPTY_OPS, Ctx, FieldSpec, FieldType, FieldValueError, FilterError
from .registry import register

ID = BigInteger().with_variant(Integer, "sqlite")


def parse_id(value) -> int:
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool):
        raise FieldValueError("must be a record id", "应为记录 id")
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise FieldValueError(f"{value!r} is not a record id", f"{value!r} 不是记录 id")


@register
class Link(FieldType):
    """A link to records of another table.

    * many_to_one: a column holding the target id (indexed);
    * many_to_many: a junction table ``j_<field id>`` (src, dst);
    * one_to_many: no storage; the records of ``target`` whose ``via`` link points here.
    Filters may follow a link: ``customer.level = VIP``.
    """

    name = "link"
    label = {"zh-CN": "关联", "en": "Link"}
    operators = ("=", "!=", "in", "not_in", *EMPTY_OPS)
    options_schema = {
        "type": "object", "additionalProperties": False, "required": ["target"],
        "properties": {
            "target": {"$ref": "table.json#/$defs/api_name"},
            "relationship": {"enum": ["many_to_one", "one_to_many", "many_to_many"]},
            "via": {"$ref": "table.json#/$defs/api_name", "description": "one_to_many: the many_to_one link on the target that points back here"},
        },
    }

    def relationship(self, spec) -> str:
        return spec.options.get("relationship", "many_to_one")

    def column_type(self, spec):
        return ID if self.relationship(spec) == "many_to_one" else None

    def check_definition(self, spec, table_fields):
        if self.relationship(spec) == "one_to_many" and not spec.options.get("via"):
            return [("/options/via", "a one_to_many link needs 'via': the link field on the target table that points back", "一对多关联需要 'via':目标表上指回本表的关联字段")]
        return []

    def to_storage(self, value, spec, ctx):
        rel = self.relationship(spec)
        if rel == "one_to_many":
            raise FieldValueError(
                f"is filled from the other side; set '{spec.options.get('via')}' on the {spec.options.get('target')} records instead",
                f"该字段由对方表维护,请在 {spec.options.get('target')} 记录上设置 '{spec.options.get('via')}'")
        if value is None or value == "" or value == []:
            return [] if rel == "many_to_many" else None
        if rel == "many_to_many":
            if not isinstance(value, list):
                value = [value]
            if len(value) > 1000:
                raise FieldValueError("at most 1000 linked records", "最多关联 1000 条记录")
            return sorted({parse_id(v) for v in value})
        return parse_id(value)

    def filter(self, col, op, value, spec, ctx):
        if self.relationship(spec) != "many_to_one":
            raise FilterError(
                f"{spec.api_name}: filter on a field of the linked records, e.g. {spec.api_name}.id",
                f"{spec.api_name}: 请按关联记录的字段筛选,例如 {spec.api_name}.id")
        return super().filter(col, op, value, spec, ctx)


@register
class SubTable(FieldType):
    """Child rows edited inside the parent record (order lines). The child table is a real
    table with parent_id and position; filters reach into it: ``items.category = 连体衣``."""

    name = "sub_table"
    label = {"zh-CN": "子表", "en": "Sub-table"}
    storage = "none"
    operators = ("is_empty", "is_not_empty")
    sortable = False
    options_schema = {
        "type": "object", "additionalProperties": False, "required": ["fields"],
        "properties": {
            "table": {"$ref": "table.json#/$defs/api_name", "description": "api name of the child table (default <table>_<field>)"},
            "label": {"$ref": "table.json#/$defs/label"},
            "fields": {"type": "array", "items": {"$ref": "field.json"}, "maxItems": 200},
            "max_rows": {"type": "integer", "minimum": 1, "maximum": 10000},
        },
    }

    def column_type(self, spec):
        return None

    def to_storage(self, value, spec, ctx):
        if value is None:
            return []
        if not isinstance(value, list):
            raise FieldValueError("must be a list of rows", "应为行的列表")
        limit = spec.options.get("max_rows", 1000)
        if len(value) > limit:
            raise FieldValueError(f"at most {limit} rows", f"最多 {limit} 行")
        for i, row in enumerate(value):
            if not isinstance(row, dict):
                raise FieldValueError(f"row {i + 1} must be an object", f"第 {i + 1} 行应为对象")
        return value


class UserColumn:
    storage = "system"
    computed = True
    system_column = ""
    operators = ("=", "!=", "in", "not_in", *EMPTY_OPS)

    def physical_column(self, spec):
        return self.system_column

    def column_type(self, spec):
        return None

    def to_storage(self, value, spec, ctx):
        if value is None:
            return None
        if value in ("$me", "@me"):
            return ctx.user_id
        return parse_id(value)


@register
class CreatedBy(UserColumn, FieldType):
    name = "created_by"
    label = {"zh-CN": "创建人", "en": "Created by"}
    system_column = "created_by"


@register
class ModifiedBy(UserColumn, FieldType):
    name = "modified_by"
    label = {"zh-CN": "修改人", "en": "Last modified by"}
    system_column = "updated_by"
