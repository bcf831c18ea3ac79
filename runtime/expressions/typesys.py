"""Static types used by the compiler for checks and ``result_type``."""
from __future__ import annotations

from .schema import FIELD_KINDS, FieldInfo, Schema


class T:
    """A static type: kind in number/text/boolean/date/datetime/list/record/any/null.

    ``elem`` is the element type of a list; ``schema`` the field schema of a record.
    """

    __slots__ = ("kind", "elem", "schema")

    def __init__(self, kind: str, elem: "T | None" = None, schema: Schema | None = None):
        self.kind = kind
        self.elem = elem
        self.schema = schema

    @property
    def public(self) -> str:
        k = self.kind
        if k == "record" or k == "null":
            return "any"
        return k

    @property
    def is_records(self) -> bool:
        return self.kind == "list" and self.elem is not None and self.elem.kind == "record"

    def describe(self) -> str:
        if self.is_records:
            return "records"
        return self.kind

    def __repr__(self):
        if self.kind == "list" and self.elem is not None:
            return f"T(list<{self.elem!r}>)"
        return f"T({self.kind})"


NUMBER = T("number")
TEXT = T("text")
BOOLEAN = T("boolean")
DATE = T("date")
DATETIME = T("datetime")
ANY = T("any")
NULL = T("null")
LIST = T("list", ANY)
LIST_TEXT = T("list", TEXT)


def of_kind(kind: str) -> T:
    return {"number": NUMBER, "text": TEXT, "boolean": BOOLEAN, "date": DATE,
            "datetime": DATETIME, "list": LIST, "any": ANY}.get(kind, ANY)


def of_field(info: FieldInfo) -> T:
    kind = FIELD_KINDS[info.type]
    if kind is None:                              # formula / lookup / rollup
        return of_kind(info.result_type or "any")
    if kind == "record":
        rec = T("record", schema=info.schema) if info.schema is not None else ANY
        return T("list", rec) if info.many else rec
    if kind == "records":
        return T("list", T("record", schema=info.schema) if info.schema is not None else ANY)
    if kind == "list":
        return LIST_TEXT if info.type == "multi_select" else LIST
    return of_kind(kind)


def unify(types) -> T:
    """The type of a value that may come from any of ``types`` (IF branches, COALESCE...)."""
    types = [t for t in types if t.kind != "null"]
    if not types:
        return NULL
    first = types[0]
    if all(t.kind == first.kind for t in types):
        if first.kind == "list":
            return first if all(t.elem is first.elem for t in types) else LIST
        if first.kind == "record":
            return first if all(t.schema is first.schema for t in types) else ANY
        return first
    kinds = {t.kind for t in types}
    if kinds <= {"date", "datetime"}:
        return ANY
    return ANY


def is_texty(t: T) -> bool:
    return t.kind == "text"


def is_numeric(t: T) -> bool:
    return t.kind in ("number", "boolean")


def is_datey(t: T) -> bool:
    return t.kind in ("date", "datetime")
