"""The field type contract. One class per type, the same small set of methods.

A type says how its values are stored (``column_type``), how user input becomes a
stored value (``to_storage``, which raises ``FieldValueError`` in plain words, never
drops a value silently), how a stored value is shown (``from_storage``), which filter
operators it supports (``filter``), and how values convert when a field changes type
(``convert``). ``options_schema`` is the JSON Schema of the type's ``options``.
"""
from __future__ import annotations

import functools

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import and_, false, not_, or_, true
from sqlalchemy.types import TypeEngine

try:
    import orjson
except ImportError:  # pragma: no cover - a dependency; the standard library reads the same, slower
    orjson = None


def loads_stored_json(text):
    """A JSON text the platform stored (addresses, selections) -> its value: orjson, three
    times faster than the standard library and the same values; the standard library for
    anything orjson refuses (NaN, 1e400). Not for user input: orjson reads an integer
    beyond 64 bits as a float, and the texts read here hold none (option ids are text,
    coordinates floats within ±180)."""
    if orjson is not None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    import json

    return json.loads(text)


class FieldValueError(ValueError):
    """A value that a field cannot take. ``message``/``message_zh`` are shown to the user."""

    def __init__(self, message: str, message_zh: str | None = None):
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh or message


class FilterError(ValueError):
    def __init__(self, message: str, message_zh: str | None = None):
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh or message


@dataclass
class Ctx:
    """What a value conversion may need to know about who and where."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    user_id: int | None = None
    now: datetime | None = None  # naive UTC; set per request/transaction
    locale: str = "zh-CN"
    user_attributes: dict = field(default_factory=dict)
    dialect: str = "sqlite"
    base_url: str = ""  # the instance's public address, for links in messages
    tenant_slug: str = ""


@dataclass(eq=False)
class FieldSpec:
    """A field as the engine uses it: the metadata row compiled with its type."""

    id: int
    api_name: str
    type: "FieldType"
    definition: dict
    table_id: int
    position: int = 0
    physical: str | None = None

    @property
    def options(self) -> dict:
        return self.definition.get("options") or {}

    @functools.cached_property
    def column_name(self) -> str:
        # A spec is made from its field row and not changed after (a change makes a new
        # spec), so its column is worked out once: rows of 5,000 records ask 50,000 times.
        return self.type.physical_column(self)

    @property
    def label(self):
        return self.definition.get("label") or self.api_name

    @property
    def required(self) -> bool:
        return bool(self.definition.get("required"))


NO_OPTIONS = {"type": "object", "additionalProperties": False, "properties": {}}
EMPTY_OPS = ("is_empty", "is_not_empty")


class FieldType:
    name: ClassVar[str]
    label: ClassVar[dict] = {}
    options_schema: ClassVar[dict] = NO_OPTIONS
    #: "column" (its own column), "system" (a system column such as created_at),
    #: "none" (no column on this table: sub-tables, one-to-many and many-to-many links).
    storage: ClassVar[str] = "column"
    #: computed types are written by the runtime, never by a user.
    computed: ClassVar[bool] = False
    operators: ClassVar[tuple[str, ...]] = ("=", "!=", "in", "not_in", *EMPTY_OPS)
    sortable: ClassVar[bool] = True
    #: types whose values can be searched with ?q=
    searchable: ClassVar[bool] = False

    # -- storage ---------------------------------------------------------------
    def column_type(self, spec: FieldSpec) -> TypeEngine | None:
        raise NotImplementedError

    def has_column(self, spec: FieldSpec) -> bool:
        """Whether values live in a column of this table (own or system column)."""
        known = spec.__dict__.get("_has_column")
        if known is None:  # once per spec (column_type builds a SQLAlchemy type)
            known = spec.__dict__["_has_column"] = (
                self.storage == "system" or (self.storage == "column" and self.column_type(spec) is not None))
        return known

    def physical_column(self, spec: FieldSpec) -> str:
        return spec.physical or f"f_{spec.id}"

    def check_definition(self, spec: FieldSpec, table_fields: dict[str, FieldSpec]) -> list[tuple[str, str, str]]:
        """Checks beyond the JSON Schema; returns (pointer suffix, message en, message zh)."""
        return []

    # -- values ----------------------------------------------------------------
    def to_storage(self, value: Any, spec: FieldSpec, ctx: Ctx) -> Any:
        raise NotImplementedError

    def from_storage(self, value: Any, spec: FieldSpec, ctx: Ctx) -> Any:
        return value

    def reader(self, spec: FieldSpec, ctx: Ctx):
        """``from_storage`` bound to one field and context, for reading many rows; None when
        stored values are shown as they are. Types override it where binding saves work."""
        if type(self).from_storage is FieldType.from_storage:
            return None
        from_storage = self.from_storage
        return lambda v: from_storage(v, spec, ctx)

    def writer(self, spec: FieldSpec, ctx: Ctx):
        """``to_storage`` bound to one field and context, for converting many values (a bulk
        insert): value -> stored value, raising ``FieldValueError`` as ``to_storage`` does.
        Types override it where binding saves work (selects); the result must be the same."""
        to_storage = self.to_storage
        return lambda v: to_storage(v, spec, ctx)

    def default(self, spec: FieldSpec, ctx: Ctx) -> Any:
        if "default" in spec.definition and spec.definition["default"] is not None:
            return self.to_storage(spec.definition["default"], spec, ctx)
        return None

    def is_empty(self, stored: Any) -> bool:
        return stored is None or stored == ""

    def convert(self, old_value_json: Any, old: FieldSpec, new: FieldSpec, ctx: Ctx) -> Any:
        """Converts a value shown by the old type into storage for the new type.

        The default goes through text, the lingua franca of a spreadsheet; a type may
        do better. Raises FieldValueError for values that cannot convert; the caller
        reports them and keeps the old value in the change report.
        """
        if old_value_json is None or old_value_json == "":
            return None
        if isinstance(old_value_json, (list, dict)):
            import json

            old_value_json = json.dumps(old_value_json, ensure_ascii=False)
        return self.to_storage(old_value_json if isinstance(old_value_json, (int, float, bool)) else str(old_value_json), new, ctx)

    # -- query -----------------------------------------------------------------
    def filter_value(self, value: Any, spec: FieldSpec, ctx: Ctx) -> Any:
        """Converts one filter operand to the stored form."""
        try:
            return self.to_storage(value, spec, ctx)
        except FieldValueError as e:
            raise FilterError(f"{spec.api_name}: {e.message}", f"{spec.api_name}: {e.message_zh}") from None

    def filter(self, col, op: str, value: Any, spec: FieldSpec, ctx: Ctx):
        if op not in self.operators:
            raise FilterError(
                f"the operator '{op}' cannot be used on {spec.api_name} ({self.name}); use one of: {', '.join(self.operators)}",
                f"字段 {spec.api_name}({self.name})不支持运算符 '{op}',可用: {', '.join(self.operators)}",
            )
        if op == "is_empty":
            return col.is_(None) if not self.searchable else or_(col.is_(None), col == "")
        if op == "is_not_empty":
            return col.is_not(None) if not self.searchable else and_(col.is_not(None), col != "")
        if op in ("in", "not_in"):
            if not isinstance(value, list):
                raise FilterError(f"{spec.api_name}: '{op}' needs a list of values", f"{spec.api_name}: '{op}' 需要一个值列表")
            if len(value) > 1000:
                raise FilterError("at most 1000 values in a list", "列表最多 1000 个值")
            vals = [self.filter_value(v, spec, ctx) for v in value]
            if not vals:
                return false() if op == "in" else true()
            return col.in_(vals) if op == "in" else or_(col.not_in(vals), col.is_(None))
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise FilterError(f"{spec.api_name}: 'between' needs [low, high]", f"{spec.api_name}: 'between' 需要 [下限, 上限]")
            lo, hi = (self.filter_value(v, spec, ctx) for v in value)
            return col.between(lo, hi)
        v = self.filter_value(value, spec, ctx)
        if op == "=":
            return col.is_(None) if v is None else col == v
        if op == "!=":
            return col.is_not(None) if v is None else or_(col != v, col.is_(None))
        if v is None:
            raise FilterError(f"{spec.api_name}: '{op}' needs a value", f"{spec.api_name}: '{op}' 需要一个值")
        if op in ("<", "before"):
            return col < v
        if op == "<=":
            return col <= v
        if op in (">", "after"):
            return col > v
        if op == ">=":
            return col >= v
        raise FilterError(f"unsupported operator {op}", f"不支持的运算符 {op}")

    def sort_expression(self, col, spec: FieldSpec):
        return col

    def search_clause(self, col, term: str, dialect: str):
        like = f"%{escape_like(term)}%"
        return col.ilike(like, escape="\\") if dialect == "postgresql" else col.like(like, escape="\\")


def escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def negate(clause):
    return not_(clause)
