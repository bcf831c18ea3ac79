"""Schema and FieldInfo: what the expression compiler knows about a table's fields.

A :class:`Schema` maps API field names (``order_no``) to :class:`FieldInfo`. Links and
sub-tables carry the target's schema, so ``customer.level`` and ``items.product.category``
can be checked at compile time. Schemas are immutable once built and may be cyclic
(``order.customer.orders``); the fingerprint handles cycles.
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Mapping

#: field type -> the expression type its values have
FIELD_KINDS = {
    "text": "text", "long_text": "text", "single_select": "text", "email": "text",
    "phone": "text", "url": "text",
    "number": "number", "currency": "number", "percent": "number", "autonumber": "number",
    "boolean": "boolean",
    "date": "date", "datetime": "datetime",
    "multi_select": "list", "attachment": "list",
    "address": "any", "json": "any",
    "link": "record", "sub_table": "records",
    "formula": None, "lookup": None, "rollup": None,  # use FieldInfo.result_type
}

RESULT_TYPES = ("number", "text", "boolean", "date", "datetime", "list", "any")


class FieldInfo:
    """What the compiler knows about one field.

    ``FieldInfo("number")``, ``FieldInfo("single_select", options=["待付款", "已付款"])``,
    ``FieldInfo("sub_table", schema=Schema({...}))``, ``FieldInfo("link", schema=..., many=True)``,
    ``FieldInfo("formula", result_type="number")``. ``label`` is the display name
    (e.g. ``"订单编号"``), used for "did you mean" hints.
    """

    __slots__ = ("type", "options", "schema", "result_type", "many", "label")

    def __init__(self, type: str, *, options: Iterable[str] | None = None,
                 schema: "Schema | None" = None, result_type: str | None = None,
                 many: bool = False, label: str | None = None):
        if type not in FIELD_KINDS:
            raise ValueError(f"unknown field type {type!r}")
        if result_type is not None and result_type not in RESULT_TYPES:
            raise ValueError(f"unknown result_type {result_type!r}")
        if schema is not None and not isinstance(schema, Schema):
            raise TypeError("FieldInfo.schema must be a Schema")
        self.type = type
        self.options = tuple(options) if options is not None else None
        self.schema = schema
        self.result_type = result_type
        self.many = bool(many)
        self.label = label

    def __repr__(self) -> str:
        extra = []
        if self.options is not None:
            extra.append(f"options={list(self.options)!r}")
        if self.schema is not None:
            extra.append(f"schema=<{len(self.schema)} fields>")
        if self.result_type:
            extra.append(f"result_type={self.result_type!r}")
        if self.many:
            extra.append("many=True")
        return f"FieldInfo({self.type!r}{', ' if extra else ''}{', '.join(extra)})"


class Schema(Mapping):
    """An immutable mapping of field name -> FieldInfo."""

    __slots__ = ("_fields", "_fingerprint")

    def __init__(self, fields: Mapping[str, FieldInfo] | None = None):
        fields = dict(fields or {})
        for name, info in fields.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"bad field name {name!r}")
            if not isinstance(info, FieldInfo):
                raise TypeError(f"field {name!r}: expected FieldInfo, got {type(info).__name__}")
        self._fields = fields
        self._fingerprint = None

    def __getitem__(self, key):
        return self._fields[key]

    def __iter__(self):
        return iter(self._fields)

    def __len__(self):
        return len(self._fields)

    def __contains__(self, key):
        return key in self._fields

    def __hash__(self):
        return hash(self.fingerprint)

    def __eq__(self, other):
        return isinstance(other, Schema) and other.fingerprint == self.fingerprint

    def __repr__(self):
        return f"Schema({self._fields!r})"

    @property
    def fingerprint(self) -> str:
        """A stable hash of the schema's structure (names, types, options, nested schemas)."""
        if self._fingerprint is None:
            parts: list[str] = []
            _describe(self, parts, {})
            self._fingerprint = hashlib.sha1("\x1f".join(parts).encode()).hexdigest()
        return self._fingerprint


def _describe(schema: Schema, out: list, seen: dict) -> None:
    if id(schema) in seen:                       # cycle: refer back by visit order
        out.append(f"@{seen[id(schema)]}")
        return
    seen[id(schema)] = len(seen)
    out.append("{")
    for name in sorted(schema._fields):
        f = schema._fields[name]
        out.append(f"{name}:{f.type}:{f.result_type}:{int(f.many)}:{f.options!r}")
        if f.schema is not None:
            _describe(f.schema, out, seen)
    out.append("}")
