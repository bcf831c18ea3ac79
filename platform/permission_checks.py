"""Save-time checks of a table's ``permissions`` document.

A row scope (``permissions.<role>.rows``) is compiled when a member reads the table; one
that names a missing or hidden field, or an operator the field does not take, would answer
400 on every read of that role. So the scope is compiled here, when the builder saves it,
with the same filter compiler and the same hidden fields the role will have, and any
problem is a 400 pointing into the document (``/permissions/member/rows/and/0/field``).

Values that are ``$me`` or ``$user.<attribute>`` are filled in per user at read time, so
their field and operator are checked but not the value itself.
"""
from __future__ import annotations

import copy
from typing import Callable

from .errors import ValidationFailed, field_error
from .fields.base import FilterError
from .storage.access import Actor, access_for
from .storage.query import Compiler
from .storage.schema import TableSchema
from .validation import errors_for


def check_permissions(schema: TableSchema, permissions: dict | None, resolve: Callable[[object], TableSchema], ctx,
                      pointer: str = "/permissions") -> None:
    """Raises ValidationFailed listing every problem of the document, each at its pointer.
    ``resolve(ref)`` returns the schema of a linked or child table; ``schema`` is the table
    the document belongs to (compiled with its fields as they are after the change)."""
    problems: list[dict] = []
    for role, conf in (permissions or {}).items():
        if not isinstance(conf, dict):
            continue  # the JSON Schema reports it
        for fname in conf.get("fields") or {}:
            if fname not in schema.fields:
                problems.append(field_error(f"{pointer}/{role}/fields/{fname}", f"no field '{fname}' in {schema.api_name}",
                                            f"{schema.api_name} 中没有字段 '{fname}'"))
        if conf.get("rows"):
            problems += RowScopeCheck(schema, role, conf, resolve, ctx).problems(conf["rows"], f"{pointer}/{role}/rows")
    if problems:
        first = problems[0]
        raise ValidationFailed(f"invalid permissions: {first['pointer']}: {first['message']}",
                               message_zh=f"权限设置有误: {first['pointer']}: {first['message_zh']}", errors=problems)


def has_placeholder(value) -> bool:
    if isinstance(value, str):
        return value == "$me" or value.startswith("$user.")
    if isinstance(value, list):
        return any(has_placeholder(v) for v in value)
    if isinstance(value, dict):
        return any(has_placeholder(v) for v in value.values())
    return False


def _bad_placeholders(value) -> list[str]:
    if isinstance(value, str):
        return [value] if value.startswith("$user.") and not value[6:] else []
    if isinstance(value, list):
        return [b for v in value for b in _bad_placeholders(v)]
    if isinstance(value, dict):
        return [b for v in value.values() for b in _bad_placeholders(v)]
    return []


class RowScopeCheck:
    """Compiles one role's row scope condition by condition, as that role's reads will."""

    def __init__(self, schema: TableSchema, role: str, conf: dict, resolve, ctx):
        self.schema, self.role, self.resolve = schema, role, resolve
        own_hidden = {f for f, p in (conf.get("fields") or {}).items() if p == "hidden"}
        actor = Actor(user_id=None, role=role)

        def hidden(s: TableSchema) -> set:
            if s.id == schema.id:
                return own_hidden  # the document being saved, not the stored one
            root = resolve(s.parent_table_id) if s.parent_table_id is not None else None
            return access_for(s, actor, root).hidden

        self.compiler = Compiler(resolve, ctx, hidden=hidden)
        self.seeing_all = Compiler(resolve, ctx)  # tells "hidden from the role" from "no such field"

    def problems(self, node, pointer: str) -> list[dict]:
        shape = errors_for("filter", node, pointer)
        if shape:
            return shape
        return self._node(node, pointer)

    def _node(self, node, pointer: str) -> list[dict]:
        if isinstance(node, list):
            return [p for i, n in enumerate(node) for p in self._node(n, f"{pointer}/{i}")]
        for key in ("and", "or"):
            if key in node:
                return [p for i, n in enumerate(node[key]) for p in self._node(n, f"{pointer}/{key}/{i}")]
        if "not" in node:
            return self._node(node["not"], f"{pointer}/not")
        return self._condition(node, pointer)

    def _condition(self, cond: dict, pointer: str) -> list[dict]:
        path, op, value = cond["field"], cond["op"], cond.get("value")
        # 1. the field path: every type takes is_empty, so only the path can fail here
        try:
            self.compiler.where(self.schema, {"field": path, "op": "is_empty"})
        except FilterError as e:
            try:
                self.seeing_all.where(self.schema, {"field": path, "op": "is_empty"})
            except FilterError:
                return [field_error(f"{pointer}/field", e.message, e.message_zh)]
            return [field_error(f"{pointer}/field", f"{path}: a field on this path is hidden from {self.role}, so {self.role}'s row scope cannot use it",
                                f"{path}: 路径上有字段对 {self.role} 隐藏,{self.role} 的行范围不能使用")]
        # 2. the operator, on the field the path ends at
        spec = self._final_spec(path.split("."))
        if op not in spec.type.operators:
            allowed = ", ".join(spec.type.operators)
            return [field_error(f"{pointer}/op", f"the operator '{op}' cannot be used on {path} ({spec.type.name}); use one of: {allowed}",
                                f"字段 {path}({spec.type.name})不支持运算符 '{op}',可用: {allowed}")]
        # 3. the value, unless it is filled in per user when the role reads
        bad = _bad_placeholders(value)
        if bad:
            return [field_error(f"{pointer}/value", "'$user.' needs an attribute name, such as $user.region",
                                "'$user.' 后需写属性名,例如 $user.region")]
        if has_placeholder(value):
            return []
        try:
            self.compiler.where(self.schema, cond)
        except FilterError as e:
            return [field_error(f"{pointer}/value", e.message, e.message_zh)]
        return []

    def _final_spec(self, path: list[str]):
        schema = self.schema
        for name in path[:-1]:  # the compiler has already followed this path
            spec = schema.field(name)
            schema = self.resolve(spec.options["table"] if spec.type.name == "sub_table" else spec.options["target"])
        return schema.field(path[-1])


def _scope_paths(node):
    """Every condition of a filter, as (the condition dict) — for renames and deletes."""
    if isinstance(node, list):
        for n in node:
            yield from _scope_paths(n)
    elif isinstance(node, dict):
        if "field" in node and isinstance(node["field"], str):
            yield node
        for key in ("and", "or"):
            if isinstance(node.get(key), list):
                yield from _scope_paths(node[key])
        if "not" in node:
            yield from _scope_paths(node["not"])


def roles_scoping_on(permissions: dict | None, name: str) -> list[str]:
    """The roles whose row scope names the field ``name`` of this table."""
    return [role for role, conf in (permissions or {}).items() if isinstance(conf, dict)
            and any(c["field"].split(".")[0] == name for c in _scope_paths(conf.get("rows")))]


def renamed(permissions: dict | None, old: str, new: str) -> dict | None:
    """The document after a field of its table was renamed: a hidden, read-only or masked
    field stays so under its new name (else a rename would reveal it), and row scopes
    follow it."""
    if not permissions:
        return permissions
    out = copy.deepcopy(permissions)
    for conf in out.values():
        if not isinstance(conf, dict):
            continue
        if old in (conf.get("fields") or {}):
            conf["fields"] = {(new if k == old else k): v for k, v in conf["fields"].items()}
        for cond in _scope_paths(conf.get("rows")):
            head, _, rest = cond["field"].partition(".")
            if head == old:
                cond["field"] = new + ("." + rest if rest else "")
    return out
