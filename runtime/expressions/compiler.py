"""Parse -> validate -> type-check -> compile to closures.

The source is parsed with :mod:`ast` (never ``eval``/``exec``), every node is checked
against a whitelist, and each node becomes a small Python closure ``fn(record, state)``.
The closures only read record values with ``dict.get`` (never ``getattr``) and only call
functions from :data:`FUNCTIONS`. Errors are collected with positions so an editor can show
all of them at once.
"""
from __future__ import annotations

import ast
import datetime as _dt
import difflib
import threading
import warnings
from collections import Counter, OrderedDict
from decimal import Decimal

from . import typesys as ty
from .errors import ExpressionError
from .functions import FUNCTIONS, Function, _unit
from .schema import Schema
from .values import (DEFAULT_CONTEXT, MAX_BRACKET_DEPTH, charge, MAX_DEPTH, MAX_LIST, MAX_NODES,
                     MAX_SOURCE_LENGTH, MAX_STRING, MAX_SUB_DEPTH, EvalContext, State, check_list,
                     check_str, cmp_ge, cmp_gt, cmp_le, cmp_lt, contains, index_value, is_blank,
                     op_add, op_div, op_floordiv, op_mod, op_mul, op_pow, op_sub, parse_datetime_text,
                     parse_number, type_error, values_equal, walk_path)

# The parser warns about things like "1(2)"; those texts get a proper error from us instead.
warnings.filterwarnings("ignore", category=SyntaxWarning, module="<expression>")
warnings.filterwarnings("ignore", category=DeprecationWarning, module="<expression>")

_NOCONST = object()
_MAX_ERRORS = 50
_EMPTY_SCHEMA = Schema({})

#: Names that read as constants when no field has that name.
_CONST_NAMES = {"true": True, "false": False, "TRUE": True, "FALSE": False,
                "null": None, "NULL": None, "none": None}

#: Python builtins people type out of habit -> our function.
_PY_HINTS = {"str": "TEXT", "int": "VALUE", "float": "VALUE", "len": "LEN", "sum": "SUM",
             "round": "ROUND", "abs": "ABS", "min": "MIN", "max": "MAX", "any": "ANY", "all": "ALL",
             "filter": "FILTER", "bool": "NOT(ISBLANK(...))"}

_FULLWIDTH = {"（": "(", "）": ")", "，": ",", "“": '"', "”": '"', "‘": "'", "’": "'",
              "＝": "=", "＞": ">", "＜": "<", "！": "!", "：": ":", "；": ";", "【": "[", "】": "]"}


class Cn:
    """A compiled node: closure, static type, field path (for references), constant value."""

    __slots__ = ("fn", "t", "path", "pure_path", "const", "field", "key")

    def __init__(self, fn, t, path=None, const=_NOCONST, field=None, key=None, pure_path=False):
        self.fn = fn
        self.t = t
        self.path = path
        self.pure_path = pure_path
        self.const = const
        self.field = field      # FieldInfo when the node is a plain field reference
        self.key = key          # the dict key when the node is a top-level field (fast paths)

    @property
    def is_const(self):
        return self.const is not _NOCONST


def _const_cn(value, t=None):
    if t is None:
        t = _type_of_value(value)
    if type(value) is list:
        frozen = list(value)

        def f(r, s):
            return list(frozen)
    else:
        def f(r, s, v=value):
            return v
    return Cn(f, t, const=value)


def _type_of_value(v):
    tv = type(v)
    if v is None:
        return ty.NULL
    if tv is bool:
        return ty.BOOLEAN
    if tv in (int, float, Decimal):
        return ty.NUMBER
    if tv is str:
        return ty.TEXT
    if tv is _dt.datetime:
        return ty.DATETIME
    if tv is _dt.date:
        return ty.DATE
    if tv is list:
        return ty.LIST
    return ty.ANY


def _err_fn(r, s):   # never run: expressions with errors are not returned
    raise ExpressionError("eval_error", "This expression has errors.", "表达式有错误。")


def _bool_type(*_):
    return ty.BOOLEAN


# =======================================================================================
# Position helpers
# =======================================================================================

class _Source:
    def __init__(self, text: str, mapper=None):
        self.text = text
        self.lines = text.split("\n")
        self.mapper = mapper

    def char_col(self, line: int, byte_col: int) -> int:
        if 1 <= line <= len(self.lines):
            return len(self.lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8", "ignore"))
        return byte_col

    def pos(self, node):
        """(line, col) in the user's source; the parser saw it wrapped as '(\\n' + src + '\\n)'."""
        line = getattr(node, "lineno", 2) - 1
        line = min(max(line, 1), len(self.lines))
        start = (line, self.char_col(line, getattr(node, "col_offset", 0)))
        end_line = getattr(node, "end_lineno", None)
        end = None
        if end_line is not None:
            el = min(max(end_line - 1, 1), len(self.lines))
            end = (el, self.char_col(el, node.end_col_offset or 0))
        if self.mapper:
            return self.mapper(start), (self.mapper(end) if end else None)
        return start, end


# =======================================================================================
# The compiler
# =======================================================================================

class _Compiler:
    def __init__(self, src: _Source, schema: Schema, *, errors, refs, flags, budget,
                 sub_depth=0, prefix=None):
        self.src = src
        self.schema = schema
        self.errors = errors
        self.refs = refs
        self.flags = flags
        self.budget = budget
        self.sub_depth = sub_depth
        self.prefix = prefix

    # -- errors ---------------------------------------------------------------------------
    def error(self, node, code, en, zh, suggestion=None) -> Cn:
        if len(self.errors) < _MAX_ERRORS:
            start, end = self.src.pos(node) if node is not None else (None, None)
            if isinstance(node, ast.Attribute) and end is not None and end[1] >= len(node.attr):
                start = (end[0], end[1] - len(node.attr))
            self.errors.append(ExpressionError(code, en, zh, position=start, end_position=end,
                                               suggestion=suggestion))
        return Cn(_err_fn, ty.ANY)

    def _ref(self, path, n=1):
        if path is not None:
            self.refs[path] += n

    # -- dispatch ---------------------------------------------------------------------------
    def visit(self, node) -> Cn:
        m = getattr(self, "visit_" + type(node).__name__, None)
        if m is None:
            return self._not_allowed(node)
        return m(node)

    def _not_allowed(self, node) -> Cn:
        name = type(node).__name__
        msgs = {
            "Lambda": ("lambda functions", "lambda 函数"),
            "ListComp": ("list comprehensions", "列表推导式"), "SetComp": ("set comprehensions", "集合推导式"),
            "DictComp": ("dict comprehensions", "字典推导式"), "GeneratorExp": ("generator expressions", "生成器表达式"),
            "JoinedStr": ("f-strings; use CONCAT(...)", "f-字符串；请用 CONCAT(...)"),
            "FormattedValue": ("f-strings; use CONCAT(...)", "f-字符串；请用 CONCAT(...)"),
            "NamedExpr": ("assignments (:=)", "赋值（:=）"), "Dict": ("dictionaries { }", "字典 { }"),
            "Set": ("sets { }", "集合 { }"), "Starred": ("* unpacking", "* 展开"),
            "Await": ("await", "await"), "Yield": ("yield", "yield"), "YieldFrom": ("yield", "yield"),
            "Slice": ("slices [a:b]; use LEFT, RIGHT or MID", "切片 [a:b]；请用 LEFT、RIGHT 或 MID"),
        }
        en, zh = msgs.get(name, (f"this kind of expression ({name})", f"这种写法（{name}）"))
        return self.error(node, "not_allowed", f"Not allowed in expressions: {en}.", f"表达式中不允许使用{zh}。")

    # -- leaves ---------------------------------------------------------------------------
    def visit_Constant(self, node) -> Cn:
        v = node.value
        if v is None or type(v) in (bool, int, float, str):
            if type(v) is str and len(v) > MAX_STRING:
                return self.error(node, "limit", "The text is too long.", "文本太长。")
            if type(v) is float and not (v == v and abs(v) != float("inf")):
                return self.error(node, "limit", "The number is too large.", "数字太大。")
            return _const_cn(v)
        return self.error(node, "not_allowed", f"Values of type {type(v).__name__} are not supported.",
                          f"不支持 {type(v).__name__} 类型的值。")

    def visit_Name(self, node) -> Cn:
        name = node.id
        if "__" in name:
            return self.error(node, "not_allowed", "Names containing '__' are not allowed.",
                              "不允许使用包含“__”的名称。")
        info = self.schema.get(name)
        if info is not None:
            path = f"{self.prefix}.{name}" if self.prefix else name
            self._ref(path)

            def f(r, s, k=name):
                return r.get(k)
            return Cn(f, ty.of_field(info), path=path, field=info, key=name, pure_path=True)
        if name in _CONST_NAMES:
            return _const_cn(_CONST_NAMES[name])
        if name.upper() in FUNCTIONS:
            fname = name.upper()
            return self.error(node, "syntax", f"{fname} is a function; call it with parentheses: {fname}(...).",
                              f"{fname} 是函数，请加括号调用：{fname}(...)。")
        return self._unknown_field(node, name, self.schema)

    def _unknown_field(self, node, name, schema, owner=None):
        suggestion = None
        for fname, info in schema.items():          # typed the display label?
            if info.label and info.label == name:
                suggestion = fname
        if suggestion is None:
            close = difflib.get_close_matches(name, list(schema), n=1, cutoff=0.6)
            if not close:
                close = difflib.get_close_matches(name.lower(), [k.lower() for k in schema], n=1, cutoff=0.6)
                close = [k for k in schema if k.lower() in close][:1]
            suggestion = close[0] if close else None
        where_en = f" in '{owner}'" if owner else ""
        where_zh = f"“{owner}”中" if owner else ""
        en = f"Unknown field '{name}'{where_en}."
        zh = f"{where_zh}没有名为“{name}”的字段。"
        if suggestion:
            en += f" Did you mean '{suggestion}'?"
            zh += f"您是不是要用“{suggestion}”？"
        return self.error(node, "unknown_field", en, zh, suggestion=suggestion)

    def visit_Attribute(self, node) -> Cn:
        attr = node.attr
        if "__" in attr or attr.startswith("_"):
            return self.error(node, "not_allowed", "Names starting with '_' or containing '__' are not allowed.",
                              "不允许使用以“_”开头或包含“__”的名称。")
        base = self.visit(node.value)
        if base.fn is _err_fn:
            return base
        bt = base.t
        if bt.kind == "record" and bt.schema is not None:
            schema, many = bt.schema, False
        elif bt.is_records and bt.elem.schema is not None:
            schema, many = bt.elem.schema, True
        else:
            src = ast.unparse(node.value)
            if isinstance(node.value, ast.Call) or bt.kind not in ("record", "list", "any"):
                return self.error(node, "not_allowed",
                                  f"'.{attr}' is not available here: only link and sub-table fields have "
                                  f"sub-fields (methods do not exist; use functions like UPPER(x)).",
                                  f"此处不能使用“.{attr}”：只有关联字段和子表字段有下级字段（没有方法调用，请使用 UPPER(x) 之类的函数）。")
            return self.error(node, "not_allowed",
                              f"'{src}' has no known sub-fields, so '.{attr}' cannot be used.",
                              f"“{src}”没有已知的下级字段，不能使用“.{attr}”。")
        info = schema.get(attr)
        if info is None:
            return self._unknown_field(node, attr, schema, owner=ast.unparse(node.value))
        path = f"{base.path}.{attr}" if base.path else None
        if base.pure_path and base.path:
            self._ref(base.path, -1)
        self._ref(path)
        ft = ty.of_field(info)
        t = ft
        if many:
            t = ft if ft.kind == "list" else ty.T("list", ft)
        keys = (attr,)
        bfn = base.fn
        if base.key is not None:                     # top-level field: one closure for the chain
            k0 = base.key

            def f(r, s):
                v = r.get(k0)
                if type(v) is dict:
                    return v.get(attr)
                return walk_path(v, keys, s)
        else:
            def f(r, s):
                v = bfn(r, s)
                if type(v) is dict:
                    return v.get(attr)
                return walk_path(v, keys, s)
        return Cn(f, t, path=path, field=info, pure_path=base.pure_path)

    def visit_Subscript(self, node) -> Cn:
        if isinstance(node.slice, ast.Slice):
            return self._not_allowed(node.slice)
        base = self.visit(node.value)
        idx = self.visit(node.slice)
        if base.fn is _err_fn or idx.fn is _err_fn:
            return Cn(_err_fn, ty.ANY)
        bt, it = base.t, idx.t
        if idx.is_const and type(idx.const) is str and "__" in idx.const:
            return self.error(node.slice, "not_allowed", "Keys containing '__' are not allowed.",
                              "不允许使用包含“__”的键。")
        if bt.kind == "record":
            return self.error(node, "not_allowed", "Use a dot to read a field of a link, e.g. customer.level.",
                              "读取关联记录的字段请用点号，例如 customer.level。")
        if bt.kind in ("number", "boolean", "date", "datetime"):
            return self.error(node, "type_mismatch", f"Cannot take an item of a {bt.kind}.",
                              "不能从数字、布尔值或日期中取元素。")
        if bt.kind in ("list", "text") and it.kind in ("text", "date", "datetime", "list"):
            return self.error(node.slice, "type_mismatch", "A list or text position must be a whole number.",
                              "列表或文本的位置必须是整数。")
        t = bt.elem if bt.kind == "list" and bt.elem is not None else (ty.TEXT if bt.kind == "text" else ty.ANY)
        bf, xf = base.fn, idx.fn
        pos = self.src.pos(node)

        def f(r, s):
            try:
                return index_value(bf(r, s), xf(r, s))
            except ExpressionError as e:
                raise e.with_position(*pos)
        return self._fold(Cn(f, t, path=base.path), node, [base, idx])

    def visit_List(self, node) -> Cn:
        items = [self.visit(e) for e in node.elts]
        if len(items) > MAX_LIST:
            return self.error(node, "limit", "The list is too long.", "列表太长。")
        if any(i.fn is _err_fn for i in items):
            return Cn(_err_fn, ty.ANY)
        elem = ty.unify([i.t for i in items]) if items else ty.ANY
        t = ty.T("list", elem if elem.kind != "null" else ty.ANY)
        if all(i.is_const for i in items):
            return _const_cn([i.const for i in items], t)
        fns = [i.fn for i in items]

        def f(r, s):
            return [g(r, s) for g in fns]
        return Cn(f, t)

    visit_Tuple = visit_List

    # -- operators ------------------------------------------------------------------------
    def _fold(self, cn: Cn, node, children) -> Cn:
        """Evaluate at compile time when every child is a constant (catches 9**9**9 early)."""
        if cn.fn is _err_fn or not all(c.is_const for c in children):
            return cn
        try:
            v = cn.fn({}, State(DEFAULT_CONTEXT))
        except ExpressionError as e:
            start, end = self.src.pos(node)
            if len(self.errors) < _MAX_ERRORS:
                e.position, e.end_position = start, end
                e.args = (str(e),)
                self.errors.append(e)
            return Cn(_err_fn, ty.ANY)
        except Exception:
            return self.error(node, "eval_error", "This part of the expression cannot be computed.",
                              "表达式的这一部分无法计算。")
        t = cn.t if cn.t.kind not in ("any", "null") else _type_of_value(v)
        folded = _const_cn(v, t if v is not None else ty.NULL)
        return folded

    def visit_UnaryOp(self, node) -> Cn:
        operand = self.visit(node.operand)
        if operand.fn is _err_fn:
            return operand
        g = operand.fn
        op = type(node.op)
        pos = self.src.pos(node)
        if op is ast.Not:
            def f(r, s):
                return not g(r, s)
            return self._fold(Cn(f, ty.BOOLEAN), node, [operand])
        if op is ast.Invert:
            return self.error(node, "not_allowed", "The ~ operator is not supported.", "不支持 ~ 运算符。")
        if operand.t.kind in ("text", "date", "datetime", "list", "record"):
            return self._mismatch(node, f"Cannot negate a {operand.t.describe()}.", "只能对数字取负。")
        neg = op is ast.USub

        def f(r, s):
            v = g(r, s)
            if v is None:
                return 0
            try:
                return -v if neg else +v
            except TypeError:
                raise type_error("Only numbers can be negated.", "只能对数字取负。").with_position(*pos) from None
        return self._fold(Cn(f, ty.NUMBER), node, [operand])

    def _mismatch(self, node, en, zh) -> Cn:
        return self.error(node, "type_mismatch", en, zh)

    def visit_BinOp(self, node) -> Cn:
        op = type(node.op)
        if op in (ast.BitAnd, ast.BitOr, ast.BitXor, ast.LShift, ast.RShift, ast.MatMult):
            sym = {ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<",
                   ast.RShift: ">>", ast.MatMult: "@"}[op]
            hint_en = " Use 'and' / 'or'." if op in (ast.BitAnd, ast.BitOr) else ""
            hint_zh = "请使用 and / or。" if op in (ast.BitAnd, ast.BitOr) else ""
            return self.error(node, "not_allowed", f"The {sym} operator is not supported.{hint_en}",
                              f"不支持 {sym} 运算符。{hint_zh}")
        left, right = self.visit(node.left), self.visit(node.right)
        if left.fn is _err_fn or right.fn is _err_fn:
            return Cn(_err_fn, ty.ANY)
        lt, rt = left.t, right.t
        lk, rk = lt.kind, rt.kind
        kinds = {lk, rk}
        t = ty.ANY
        sym = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
               ast.Mod: "%", ast.Pow: "**"}[op]
        bad = None
        if op is ast.Add:
            if "text" in kinds and kinds & {"number", "boolean", "date", "datetime", "list"}:
                bad = ("Cannot add text and a {other}; use CONCAT(...) to join text or VALUE(...) to turn text into a number.",
                       "不能把文本和{other_zh}相加；拼接文本请用 CONCAT(...)，把文本变成数字请用 VALUE(...)。")
            elif "list" in kinds and kinds - {"list", "any", "null"}:
                bad = ("Cannot add a list and a {other}.", "不能把列表和{other_zh}相加。")
            elif lk in ("date", "datetime") and rk in ("date", "datetime"):
                bad = ("Cannot add two dates; use DATEADD(date, n, \"days\").", "两个日期不能相加；请使用 DATEADD(日期, n, \"days\")。")
            if lk in ("number", "boolean") and rk in ("number", "boolean"):
                t = ty.NUMBER
            elif lk == rk == "text":
                t = ty.TEXT
            elif lk in ("date", "datetime") and rk == "number":
                t = lt
            elif lk == "number" and rk in ("date", "datetime"):
                t = rt
            elif lk == rk == "list":
                t = lt
        elif op is ast.Sub:
            if kinds & {"text", "list", "record"}:
                bad = ("Cannot subtract with a {other}.", "{other_zh}不能做减法。")
            elif rk in ("date", "datetime") and lk in ("number", "boolean"):
                bad = ("Cannot subtract a date from a number.", "不能用数字减去日期。")
            if lk in ("date", "datetime") and rk in ("date", "datetime"):
                t = ty.NUMBER
            elif lk in ("date", "datetime"):
                t = lt
            elif kinds <= {"number", "boolean"}:
                t = ty.NUMBER
        elif op is ast.Mult:
            if lk == rk == "text" or kinds & {"date", "datetime", "record"} or (lk == rk == "list"):
                bad = ("Cannot multiply with a {other}.", "{other_zh}不能做乘法。")
            elif "text" in kinds:
                t = ty.TEXT
            elif "list" in kinds:
                t = lt if lk == "list" else rt
            elif kinds <= {"number", "boolean"}:
                t = ty.NUMBER
        else:
            if kinds & {"text", "date", "datetime", "list", "record"}:
                bad = ("Cannot use {sym} with a {other}.", "{other_zh}不能使用 {sym} 运算。")
            t = ty.NUMBER
        if bad:
            odd = ("number", "boolean", "date", "datetime", "list", "record") if "text" in kinds and op is ast.Add \
                else ("text", "date", "datetime", "list", "record")
            other = next((k for k in (lk, rk) if k in odd), lk)
            from .values import kind_zh
            return self._mismatch(node, bad[0].format(other=other, sym=sym),
                                  bad[1].format(other_zh=kind_zh(other), sym=sym))
        lf, rf = left.fn, right.fn
        pos = self.src.pos(node)
        if op is ast.Add:
            def f(r, s):
                a = lf(r, s)
                b = rf(r, s)
                try:
                    v = a + b
                except TypeError:
                    try:
                        return op_add(a, b, s)
                    except ExpressionError as e:
                        raise e.with_position(*pos)
                tv = type(v)
                if tv is str:
                    if len(v) > MAX_STRING:
                        raise check_str_error(pos)
                elif tv is list and len(v) > MAX_LIST:
                    check_list(v)
                return v
        elif op is ast.Sub:
            def f(r, s):
                a = lf(r, s)
                b = rf(r, s)
                try:
                    v = a - b
                except TypeError:
                    v = None
                if v is None or type(v) is _dt.timedelta:
                    try:
                        return op_sub(a, b, s)
                    except ExpressionError as e:
                        raise e.with_position(*pos)
                return v
        else:
            impl = {ast.Mult: op_mul, ast.Div: op_div, ast.FloorDiv: op_floordiv,
                    ast.Mod: op_mod, ast.Pow: op_pow}[op]

            def f(r, s):
                try:
                    return impl(lf(r, s), rf(r, s), s)
                except ExpressionError as e:
                    raise e.with_position(*pos)
        return self._fold(Cn(f, t), node, [left, right])

    def visit_BoolOp(self, node) -> Cn:
        parts = [self.visit(v) for v in node.values]
        if any(p.fn is _err_fn for p in parts):
            return Cn(_err_fn, ty.ANY)
        return self._fold(Cn(_bool_chain([p.fn for p in parts], isinstance(node.op, ast.And)), ty.BOOLEAN),
                          node, parts)

    def visit_IfExp(self, node) -> Cn:
        test, body, orelse = self.visit(node.test), self.visit(node.body), self.visit(node.orelse)
        if _err_fn in (test.fn, body.fn, orelse.fn):
            return Cn(_err_fn, ty.ANY)
        tf, bf, of = test.fn, body.fn, orelse.fn

        def f(r, s):
            return bf(r, s) if tf(r, s) else of(r, s)
        return self._fold(Cn(f, ty.unify([body.t, orelse.t])), node, [test, body, orelse])

    # -- comparisons ----------------------------------------------------------------------
    def visit_Compare(self, node) -> Cn:
        operands = [self.visit(node.left)] + [self.visit(c) for c in node.comparators]
        if any(o.fn is _err_fn for o in operands):
            return Cn(_err_fn, ty.ANY)
        pairs = []
        for i, op in enumerate(node.ops):
            a, b = operands[i], operands[i + 1]
            an, bn = ([node.left] + node.comparators)[i], node.comparators[i]
            opt = type(op)
            if opt in (ast.Is, ast.IsNot):
                if not (b.is_const and b.const is None) and not (a.is_const and a.const is None):
                    return self.error(node, "not_allowed", "'is' only works with None (x is None); use == to compare values.",
                                      "“is”只能与 None 一起使用（x is None）；比较值请用 ==。")
                opt = ast.Eq if opt is ast.Is else ast.NotEq
            a, b = self._coerce_date_literals(a, b)
            operands[i], operands[i + 1] = a, b
            problem = self._check_compare(node, opt, a, b, an, bn)
            if problem is not None:
                return problem
            pairs.append((opt, a, b))
        if len(pairs) == 1:
            opt, a, b = pairs[0]
            cn = Cn(_compare_closure(opt, a, b), ty.BOOLEAN)
        else:
            fns = [o.fn for o in operands]
            preds = [_pair_pred(opt) for opt, _, _ in pairs]

            def f(r, s):
                a = fns[0](r, s)
                for i, pred in enumerate(preds):
                    b = fns[i + 1](r, s)
                    if not pred(a, b, s):
                        return False
                    a = b
                return True
            cn = Cn(f, ty.BOOLEAN)
        return self._fold(cn, node, operands)

    def _coerce_date_literals(self, a: Cn, b: Cn):
        """created > '2024-06-01': parse the text literal as a date once, at compile time."""
        def conv(date_side: Cn, lit: Cn):
            if date_side.t.kind in ("date", "datetime") and lit.is_const and type(lit.const) is str:
                v = _parse_date_literal(lit.const)
                if v is not None:
                    return _const_cn(v)
            return lit
        return conv(b, a), conv(a, b)

    def _check_compare(self, node, opt, a: Cn, b: Cn, an, bn):
        ak, bk = a.t.kind, b.t.kind
        kinds = {ak, bk}
        ordering = opt in (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
        if opt in (ast.In, ast.NotIn):
            if bk in ("number", "boolean", "date", "datetime"):
                return self._mismatch(node, f"'in' needs a list or text on its right, not a {bk}.",
                                      "“in”的右边必须是列表或文本。")
            if b.is_const and type(b.const) is list and a.field is not None and a.field.options:
                for item in b.const:
                    if type(item) is str and item not in a.field.options:
                        return self._unknown_option(bn, item, a.field)
            return None
        if ordering:
            if ("text" in kinds and kinds & {"number", "date", "datetime"}) or \
                    ({"number"} <= kinds and kinds & {"date", "datetime"}):
                return self._mismatch(node, f"Cannot compare {ak} with {bk}"
                                      + ("; use VALUE(...) to turn text into a number." if "number" in kinds else "."),
                                      "不能比较不同类型的值（文本、数字、日期）"
                                      + ("；把文本变成数字请用 VALUE(...)。" if "number" in kinds else "。"))
            if kinds & {"list", "record"} and not kinds & {"any"}:
                return self._mismatch(node, "Lists cannot be compared with < or >.", "列表不能用 < 或 > 比较。")
            return None
        # == / !=
        if "text" in kinds and kinds & {"number"} and (a.is_const or b.is_const):
            return self._mismatch(node, "Cannot compare text with a number; put the number in quotes "
                                  "or use VALUE(...).", "文本不能与数字比较；请给数字加上引号，或使用 VALUE(...)。")
        for field_side, lit, lit_node in ((a, b, bn), (b, a, an)):
            if field_side.field is not None and field_side.field.options and lit.is_const \
                    and type(lit.const) is str and lit.const and lit.const not in field_side.field.options:
                return self._unknown_option(lit_node, lit.const, field_side.field)
        return None

    def _unknown_option(self, node, value, info):
        close = difflib.get_close_matches(value, list(info.options), n=1, cutoff=0.3)
        sug = close[0] if close else None
        opts = "、".join(info.options[:10])
        en = f"'{value}' is not one of the options ({', '.join(info.options[:10])})."
        zh = f"“{value}”不是可选项之一（{opts}）。"
        if sug:
            en += f" Did you mean '{sug}'?"
            zh += f"您是不是要用“{sug}”？"
        return self.error(node, "unknown_option", en, zh, suggestion=sug)

    # -- calls ----------------------------------------------------------------------------
    def visit_Call(self, node) -> Cn:
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute):
                meth = node.func.attr
                if "__" in meth:
                    return self.error(node.func, "not_allowed", "Names containing '__' are not allowed.",
                                      "不允许使用包含“__”的名称。")
                return self.error(node.func, "not_allowed",
                                  f"Methods like .{meth}(...) do not exist; use a function such as UPPER(x) or REPLACE(x, a, b).",
                                  f"没有 .{meth}(...) 这样的方法；请使用 UPPER(x)、REPLACE(x, a, b) 等函数。")
            return self.error(node, "not_allowed", "Only functions from the library can be called, by name.",
                              "只能按名称调用函数库中的函数。")
        raw = node.func.id
        if "__" in raw:
            return self.error(node.func, "not_allowed", "Names containing '__' are not allowed.",
                              "不允许使用包含“__”的名称。")
        fname = raw.upper()
        spec = FUNCTIONS.get(fname)
        if spec is None:
            hint = _PY_HINTS.get(raw.lower())
            if hint is None:
                close = difflib.get_close_matches(fname, list(FUNCTIONS), n=1, cutoff=0.6)
                hint = close[0] if close else None
            en = f"Unknown function {raw}(...)."
            zh = f"没有名为 {raw} 的函数。"
            if hint:
                en += f" Did you mean {hint}?"
                zh += f"您是不是要用 {hint}？"
            return self.error(node.func, "unknown_function", en, zh, suggestion=hint)
        if node.keywords:
            return self.error(node, "not_allowed", f"{fname}: named arguments (x=...) are not supported.",
                              f"{fname}：不支持具名参数（x=...）。")
        if any(isinstance(a, ast.Starred) for a in node.args):
            return self._not_allowed(next(a for a in node.args if isinstance(a, ast.Starred)))
        n = len(node.args)
        if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
            if spec.max_args is None:
                want_en, want_zh = f"at least {spec.min_args}", f"至少 {spec.min_args} 个"
            elif spec.min_args == spec.max_args:
                want_en, want_zh = f"{spec.min_args}", f"{spec.min_args} 个"
            else:
                want_en, want_zh = f"{spec.min_args} to {spec.max_args}", f"{spec.min_args} 到 {spec.max_args} 个"
            return self.error(node, "arg_count",
                              f"{fname} takes {want_en} argument{'s' if want_en != '1' else ''}, got {n}. Usage: {spec.signature}",
                              f"{fname} 需要 {want_zh}参数，实际给了 {n} 个。用法：{spec.signature}")
        if spec.builder is not None:
            return spec.builder(self, node, spec)
        args = [self.visit(a) for a in node.args]
        if any(a.fn is _err_fn for a in args):
            return Cn(_err_fn, ty.ANY)
        for i, (a, an) in enumerate(zip(args, node.args)):
            problem = self._check_arg(spec, i, a, an)
            if problem is not None:
                return problem
        if fname in ("DATEADD", "DATEDIF") and n == 3 and args[2].is_const:
            try:
                _unit(args[2].const, fname)
            except ExpressionError as e:
                return self.error(node.args[2], "arg_type", e.message_en, e.message_zh)
        if not spec.pure:
            self.flags["volatile"] = True
        cn = Cn(_call_closure(spec, [a.fn for a in args], self.src.pos(node)),
                spec.result_type([a.t for a in args]))
        if spec.pure:
            return self._fold(cn, node, args)
        return cn

    def _check_arg(self, spec: Function, i, a: Cn, node):
        kind = spec.param_kind(i)
        k = a.t.kind
        if kind == "any" or k in ("any", "null"):
            return None
        bad = False
        if kind in ("number", "numbers"):
            if k in ("date", "datetime", "record") or (kind == "number" and k == "list"):
                bad = True
            elif k == "text" and a.is_const and parse_number(a.const) is None:
                bad = True
            elif kind == "numbers" and k == "list" and a.t.elem is not None and a.t.elem.kind in ("text", "record", "date", "datetime") and not a.t.elem.kind == "any":
                bad = a.t.elem.kind in ("record", "date", "datetime")
        elif kind == "text":
            bad = k == "record" or a.t.is_records
        elif kind == "date":
            if k in ("number", "boolean", "list", "record"):
                bad = True
            elif k == "text" and a.is_const:
                try:
                    parse_datetime_text(a.const, State(DEFAULT_CONTEXT))
                except ExpressionError:
                    bad = True
        elif kind == "list":
            bad = k not in ("list",)
        if not bad:
            return None
        from .values import kind_zh
        want = {"number": "a number", "numbers": "numbers", "text": "text", "date": "a date",
                "list": "a list"}[kind]
        want_zh = {"number": "数字", "numbers": "数字", "text": "文本", "date": "日期", "list": "列表"}[kind]
        got = a.t.describe()
        return self.error(node, "type_mismatch",
                          f"{spec.name}: argument {i + 1} should be {want}, but this is {'a ' if got != 'text' else ''}{got}.",
                          f"{spec.name}：第 {i + 1} 个参数应为{want_zh}，但这里是{kind_zh(got)}。")

    # -- sub-expressions ------------------------------------------------------------------
    def compile_sub(self, lit_node, row_schema: Schema, prefix) -> Cn:
        if self.sub_depth + 1 > MAX_SUB_DEPTH:
            return self.error(lit_node, "limit", "Conditions are nested too deeply.", "条件嵌套层数过多。")
        (line, col), end = self.src.pos(lit_node)
        text = lit_node.value
        seg_line = self.src.lines[line - 1] if 1 <= line <= len(self.src.lines) and not self.src.mapper else None
        exact = False
        if seg_line is not None and end is not None and end[0] == line:
            seg = seg_line[col:end[1]]
            exact = len(seg) >= 2 and seg[0] in "'\"" and seg[-1] == seg[0] and seg[1:-1] == text
        outer = (line, col)

        def mapper(p, exact=exact, outer=outer, parent=None):
            if exact and p[0] == 1:
                return (outer[0], outer[1] + 1 + p[1])
            return outer
        sub = _Compiler(_Source(text, mapper), row_schema, errors=self.errors, refs=self.refs,
                        flags=self.flags, budget=self.budget, sub_depth=self.sub_depth + 1, prefix=prefix)
        sub.flags = self.flags
        return _compile_tree(sub, text, in_sub=True)


def _parse_date_literal(text: str):
    """'2024-06-01' -> date; '2024-06-01 20:00' -> naive datetime (tenant local time at run time)."""
    t = text.strip().replace("/", "-")
    try:
        if len(t) <= 10:
            return _dt.date.fromisoformat(t)
        d = _dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is not None:
        d = d.astimezone(_dt.timezone.utc)
    return d


def check_str_error(pos):
    return ExpressionError("limit", f"The text is too long (over {MAX_STRING:,} characters).",
                           f"文本过长（超过 {MAX_STRING:,} 个字符）。", position=pos[0], end_position=pos[1])


# =======================================================================================
# Closure factories (kept outside the class so closures capture only what they need)
# =======================================================================================

def _bool_chain(fns, is_and):
    if len(fns) == 2:
        a, b = fns
        if is_and:
            def f(r, s):
                return bool(a(r, s) and b(r, s))
        else:
            def f(r, s):
                return bool(a(r, s) or b(r, s))
    elif len(fns) == 3:
        a, b, c = fns
        if is_and:
            def f(r, s):
                return bool(a(r, s) and b(r, s) and c(r, s))
        else:
            def f(r, s):
                return bool(a(r, s) or b(r, s) or c(r, s))
    else:
        fns = tuple(fns)
        if is_and:
            def f(r, s):
                for g in fns:
                    if not g(r, s):
                        return False
                return True
        else:
            def f(r, s):
                for g in fns:
                    if g(r, s):
                        return True
                return False
    return f


def _pair_pred(opt):
    def eq(a, b, s):
        return values_equal(a, b)

    def ne(a, b, s):
        return not values_equal(a, b)

    def mk(native, slow):
        def p(a, b, s):
            try:
                return native(a, b)
            except TypeError:
                return slow(a, b, s)
        return p
    import operator as o
    return {ast.Eq: eq, ast.NotEq: ne,
            ast.Lt: mk(o.lt, cmp_lt), ast.LtE: mk(o.le, cmp_le),
            ast.Gt: mk(o.gt, cmp_gt), ast.GtE: mk(o.ge, cmp_ge),
            ast.In: lambda a, b, s: contains(b, a),
            ast.NotIn: lambda a, b, s: not contains(b, a)}[opt]


_HASHABLE = (str, int, float, Decimal, bool, type(None), _dt.date, _dt.datetime)


def _compare_closure(opt, a: Cn, b: Cn):
    """One comparison, with fast paths for `field OP constant`."""
    key = a.key
    c = b.const
    bconst = b.is_const
    af, bf = a.fn, b.fn
    if opt in (ast.Eq, ast.NotEq) and bconst and not is_blank(c) and type(c) is not list:
        if key is not None:
            if opt is ast.Eq:
                def f(r, s):
                    return r.get(key) == c
            else:
                def f(r, s):
                    return r.get(key) != c
        else:
            if opt is ast.Eq:
                def f(r, s):
                    return af(r, s) == c
            else:
                def f(r, s):
                    return af(r, s) != c
        return f
    if opt in (ast.Lt, ast.LtE, ast.Gt, ast.GtE) and bconst and c is not None:
        if type(c) is int and a.field is not None and a.field.type == "currency":
            # currency values are Decimals; Decimal-vs-Decimal compares ~2x faster than
            # Decimal-vs-int, and Decimal(int) is exact, so every comparison is unchanged.
            c = Decimal(c)
        slow = {ast.Lt: cmp_lt, ast.LtE: cmp_le, ast.Gt: cmp_gt, ast.GtE: cmp_ge}[opt]
        g = af if key is None else None
        if opt is ast.Gt:
            if key is not None:
                def f(r, s):
                    v = r.get(key)
                    try:
                        return v > c
                    except TypeError:
                        return slow(v, c, s)
            else:
                def f(r, s):
                    v = g(r, s)
                    try:
                        return v > c
                    except TypeError:
                        return slow(v, c, s)
        elif opt is ast.GtE:
            def f(r, s):
                v = r.get(key) if key is not None else g(r, s)
                try:
                    return v >= c
                except TypeError:
                    return slow(v, c, s)
        elif opt is ast.Lt:
            def f(r, s):
                v = r.get(key) if key is not None else g(r, s)
                try:
                    return v < c
                except TypeError:
                    return slow(v, c, s)
        else:
            def f(r, s):
                v = r.get(key) if key is not None else g(r, s)
                try:
                    return v <= c
                except TypeError:
                    return slow(v, c, s)
        return f
    if opt in (ast.In, ast.NotIn) and bconst and type(c) is list and all(type(x) in _HASHABLE for x in c):
        fs = frozenset(c)
        items = list(c)
        neg = opt is ast.NotIn

        def f(r, s):
            v = r.get(key) if key is not None else af(r, s)
            try:
                hit = v in fs
            except TypeError:
                hit = contains(items, v)
            return not hit if neg else hit
        return f
    pred = _pair_pred(opt)

    def f(r, s):
        return pred(af(r, s), bf(r, s), s)
    return f


def _call_closure(spec: Function, fns, pos):
    impl = spec.impl
    n = len(fns)
    if spec.needs_state:
        if n == 0:
            def f(r, s):
                return impl(s)
        elif n == 1:
            a0 = fns[0]

            def f(r, s):
                try:
                    return impl(s, a0(r, s))
                except ExpressionError as e:
                    raise e.with_position(*pos)
        elif n == 2:
            a0, a1 = fns

            def f(r, s):
                try:
                    return impl(s, a0(r, s), a1(r, s))
                except ExpressionError as e:
                    raise e.with_position(*pos)
        else:
            def f(r, s):
                try:
                    return impl(s, *[g(r, s) for g in fns])
                except ExpressionError as e:
                    raise e.with_position(*pos)
    else:
        if n == 1:
            a0 = fns[0]

            def f(r, s):
                try:
                    return impl(a0(r, s))
                except ExpressionError as e:
                    raise e.with_position(*pos)
        else:
            def f(r, s):
                try:
                    return impl(*[g(r, s) for g in fns])
                except ExpressionError as e:
                    raise e.with_position(*pos)
    return f


# =======================================================================================
# Builders for the special functions
# =======================================================================================

def _visit_args(c: _Compiler, node):
    args = [c.visit(a) for a in node.args]
    if any(a.fn is _err_fn for a in args):
        return None
    return args


def _build_if(c, node, spec):
    args = _visit_args(c, node)
    if args is None:
        return Cn(_err_fn, ty.ANY)
    cond, then = args[0].fn, args[1].fn
    other = args[2].fn if len(args) == 3 else None
    if other is None:
        def f(r, s):
            return then(r, s) if cond(r, s) else None
    else:
        def f(r, s):
            return then(r, s) if cond(r, s) else other(r, s)
    return c._fold(Cn(f, spec.result_type([a.t for a in args])), node, args)


def _build_ifs(c, node, spec):
    if len(node.args) % 2:
        return c.error(node, "arg_count", "IFS needs condition/value pairs: IFS(c1, v1, c2, v2, ...).",
                       "IFS 需要成对的条件和值：IFS(条件1, 值1, 条件2, 值2, ...)。")
    args = _visit_args(c, node)
    if args is None:
        return Cn(_err_fn, ty.ANY)
    pairs = [(args[i].fn, args[i + 1].fn) for i in range(0, len(args), 2)]

    def f(r, s):
        for cond, val in pairs:
            if cond(r, s):
                return val(r, s)
        return None
    return c._fold(Cn(f, spec.result_type([a.t for a in args])), node, args)


def _build_switch(c, node, spec):
    args = _visit_args(c, node)
    if args is None:
        return Cn(_err_fn, ty.ANY)
    subject = args[0].fn
    rest = args[1:]
    default = rest[-1].fn if len(rest) % 2 else None
    cases = [(rest[i].fn, rest[i + 1].fn) for i in range(0, len(rest) - (len(rest) % 2), 2)]

    def f(r, s):
        v = subject(r, s)
        for case, res in cases:
            if values_equal(v, case(r, s)):
                return res(r, s)
        return default(r, s) if default is not None else None
    return c._fold(Cn(f, spec.result_type([a.t for a in args])), node, args)


def _build_andor(c, node, spec):
    args = _visit_args(c, node)
    if args is None:
        return Cn(_err_fn, ty.ANY)
    fns = [a.fn for a in args]
    if len(fns) == 1:
        g = fns[0]

        def f(r, s):
            return bool(g(r, s))
    else:
        f = _bool_chain(fns, spec.name == "AND")
    return c._fold(Cn(f, ty.BOOLEAN), node, args)


def _build_coalesce(c, node, spec):
    args = _visit_args(c, node)
    if args is None:
        return Cn(_err_fn, ty.ANY)
    fns = [a.fn for a in args]

    def f(r, s):
        for g in fns:
            v = g(r, s)
            if not is_blank(v):
                return v
        return None
    return c._fold(Cn(f, spec.result_type([a.t for a in args])), node, args)


def _build_rows(c: _Compiler, node, spec):
    rows = c.visit(node.args[0])
    if rows.fn is _err_fn:
        return rows
    lit = node.args[1]
    if not (isinstance(lit, ast.Constant) and type(lit.value) is str):
        return c.error(lit, "arg_type",
                       f"{spec.name}: the condition must be written in quotes, e.g. {spec.name}(items, \"qty > 0\").",
                       f"{spec.name}：条件需要写在引号中，例如 {spec.name}(items, \"qty > 0\")。")
    rt = rows.t
    if not (rt.is_records and rt.elem.schema is not None):
        if rt.kind in ("any", "null"):
            return c.error(node.args[0], "arg_type", f"{spec.name} needs a sub-table or a multi-link field.",
                           f"{spec.name} 需要子表字段或多选关联字段。")
        return c.error(node.args[0], "type_mismatch",
                       f"{spec.name} needs a sub-table or a multi-link field, not a {rt.describe()}.",
                       f"{spec.name} 需要子表字段或多选关联字段，而不是{rt.describe()}。")
    cond_cn = c.compile_sub(lit, rt.elem.schema, rows.path)
    if cond_cn is None or cond_cn.fn is _err_fn:
        return Cn(_err_fn, ty.ANY)
    rows_f, cond = rows.fn, cond_cn.fn
    name = spec.name
    if name == "ANY":
        def f(r, s):
            rs = rows_f(r, s)
            if type(rs) is not list:
                return False
            charge(s, len(rs) + 1)
            for row in rs:
                if type(row) is dict and cond(row, s):
                    return True
            return False
        t = ty.BOOLEAN
    elif name == "ALL":
        def f(r, s):
            rs = rows_f(r, s)
            if type(rs) is not list:
                return True
            charge(s, len(rs) + 1)
            for row in rs:
                if type(row) is dict and not cond(row, s):
                    return False
            return True
        t = ty.BOOLEAN
    else:
        def f(r, s):
            rs = rows_f(r, s)
            if type(rs) is not list:
                return []
            charge(s, len(rs) + 1)
            return [row for row in rs if type(row) is dict and cond(row, s)]
        t = rt
    return Cn(f, t, path=rows.path)


def _field_name_arg(c: _Compiler, node, spec):
    if c.sub_depth:
        return None, c.error(node, "not_allowed", f"{spec.name.lower()}(...) can only be used in a rule condition, "
                             "not inside ANY/ALL/FILTER.", f"{spec.name.lower()}(...) 只能用于规则条件，不能用在 ANY/ALL/FILTER 内部。")
    lit = node.args[0]
    if not (isinstance(lit, ast.Constant) and type(lit.value) is str):
        if isinstance(lit, ast.Name) and lit.id in c.schema:
            return None, c.error(lit, "arg_type", f'Put the field name in quotes: {spec.name.lower()}("{lit.id}").',
                                 f'请把字段名写在引号中：{spec.name.lower()}("{lit.id}")。')
        return None, c.error(lit, "arg_type", f'{spec.name.lower()}(...) takes a field name in quotes, e.g. {spec.name.lower()}("status").',
                             f'{spec.name.lower()}(...) 的参数是带引号的字段名，例如 {spec.name.lower()}("status")。')
    name = lit.value
    if name not in c.schema:
        return None, c._unknown_field(lit, name, c.schema)
    c._ref(name)
    c.flags["uses_previous"] = True
    return name, None


def _build_changed(c, node, spec):
    key, err = _field_name_arg(c, node, spec)
    if err is not None:
        return err

    def f(r, s):
        ctx = s[0]
        if ctx.changed_fields is not None:
            return key in ctx.changed_fields
        prev = ctx.previous
        if prev is None:
            return not is_blank(r.get(key))
        return not values_equal(prev.get(key), r.get(key))
    return Cn(f, ty.BOOLEAN)


def _build_previous(c, node, spec):
    key, err = _field_name_arg(c, node, spec)
    if err is not None:
        return err

    def f(r, s):
        prev = s[0].previous
        return prev.get(key) if prev else None
    return Cn(f, ty.of_field(c.schema[key]), field=c.schema[key])


FUNCTIONS["IF"].builder = _build_if
FUNCTIONS["IFS"].builder = _build_ifs
FUNCTIONS["SWITCH"].builder = _build_switch
FUNCTIONS["AND"].builder = _build_andor
FUNCTIONS["OR"].builder = _build_andor
FUNCTIONS["COALESCE"].builder = _build_coalesce
FUNCTIONS["ANY"].builder = _build_rows
FUNCTIONS["ALL"].builder = _build_rows
FUNCTIONS["FILTER"].builder = _build_rows
FUNCTIONS["CHANGED"].builder = _build_changed
FUNCTIONS["PREVIOUS"].builder = _build_previous


# =======================================================================================
# Source -> tree -> compiled node
# =======================================================================================

def _bracket_depth(text: str) -> int:
    depth = best = 0
    quote = None
    esc = False
    for ch in text:
        if quote:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
            best = max(best, depth)
        elif ch in ")]}":
            depth -= 1
    return best


def _tree_stats(tree) -> tuple[int, int]:
    """(node count, depth), iteratively so a deep tree cannot overflow the stack."""
    count = 0
    depth = 0
    stack = [(tree, 1)]
    while stack:
        node, d = stack.pop()
        count += 1
        if d > depth:
            depth = d
        if count > MAX_NODES * 4:
            break
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.expr_context, ast.operator, ast.boolop, ast.cmpop, ast.unaryop)):
                continue
            stack.append((child, d + 1))
    return count, depth


def _compile_tree(c: _Compiler, text: str, in_sub=False) -> Cn | None:
    errors = c.errors

    def fail(code, en, zh, pos=(1, 0)):
        p = c.src.mapper(pos) if c.src.mapper else pos
        errors.append(ExpressionError(code, en, zh, position=p))
        return None

    if not isinstance(text, str):
        return fail("syntax", "The expression must be text.", "表达式必须是文本。")
    if len(text) > MAX_SOURCE_LENGTH:
        return fail("too_long", f"The expression is too long ({len(text):,} characters; the limit is {MAX_SOURCE_LENGTH:,}).",
                    f"表达式太长（{len(text):,} 个字符，上限为 {MAX_SOURCE_LENGTH:,}）。")
    if not text.strip():
        return fail("syntax", "The expression is empty.", "表达式为空。")
    if "\x00" in text:
        return fail("syntax", "The expression contains an invalid character.", "表达式包含无效字符。")
    if _bracket_depth(text) > MAX_BRACKET_DEPTH:
        return fail("limit", "The expression is nested too deeply (too many brackets).",
                    "表达式嵌套太深（括号过多）。")
    try:
        tree = ast.parse("(\n" + text + "\n)", filename="<expression>", mode="eval")
    except SyntaxError as e:
        line = (e.lineno or 2) - 1
        line = min(max(line, 1), len(c.src.lines))
        col = max((e.offset or 1) - 1, 0) if (e.lineno or 2) - 1 == line else len(c.src.lines[line - 1])
        col = min(col, len(c.src.lines[line - 1]))
        msg = (e.msg or "invalid syntax")
        bad = next((ch for ch in text if ch in _FULLWIDTH and _outside_strings(text, ch)), None)
        en = f"The expression cannot be read ({msg})."
        zh = "表达式无法解析，请检查括号、引号和运算符。"
        if bad:
            en += f" Use the half-width '{_FULLWIDTH[bad]}' instead of the full-width '{bad}'."
            zh = f"表达式无法解析：请使用半角（英文）“{_FULLWIDTH[bad]}”，而不是全角“{bad}”。"
        return fail("syntax", en, zh, (line, col))
    except (RecursionError, MemoryError):
        return fail("limit", "The expression is nested too deeply.", "表达式嵌套太深。")
    except ValueError:
        return fail("syntax", "The expression contains an invalid character.", "表达式包含无效字符。")
    count, depth = _tree_stats(tree)
    c.budget[0] += count
    if c.budget[0] > MAX_NODES:
        return fail("limit", f"The expression is too complex (more than {MAX_NODES:,} parts).",
                    f"表达式过于复杂（超过 {MAX_NODES:,} 个组成部分）。")
    if depth > MAX_DEPTH:
        return fail("limit", "The expression is nested too deeply.", "表达式嵌套太深。")
    try:
        return c.visit(tree.body)
    except RecursionError:
        return fail("limit", "The expression is nested too deeply.", "表达式嵌套太深。")


def _outside_strings(text, ch):
    quote = None
    for x in text:
        if quote:
            if x == quote:
                quote = None
            continue
        if x in "'\"":
            quote = x
        elif x == ch:
            return True
    return False


# =======================================================================================
# Public objects
# =======================================================================================

class CompiledExpression:
    """A checked, compiled expression. Thread-safe and reusable; evaluate() is the hot path."""

    __slots__ = ("source", "references", "result_type", "volatile", "uses_previous", "_fn", "__weakref__")

    def __init__(self, source, fn, references, result_type, volatile, uses_previous):
        self.source = source
        self._fn = fn
        self.references = references
        self.result_type = result_type
        self.volatile = volatile
        self.uses_previous = uses_previous

    def evaluate(self, record=None, ctx: EvalContext | None = None):
        """Evaluate against a record dict; raises ExpressionError (only) on problems."""
        s = [ctx if ctx is not None else DEFAULT_CONTEXT, 0, 0, None, None]   # see values.State
        try:
            v = self._fn(record if record is not None else {}, s)
        except ExpressionError:
            raise
        except RecursionError:
            raise ExpressionError("limit", "The expression is nested too deeply.", "表达式嵌套太深。") from None
        except MemoryError:
            raise ExpressionError("limit", "The expression needs too much memory.", "表达式需要的内存过多。") from None
        except Exception as e:  # a bug or bad input data: still a clean ExpressionError
            raise ExpressionError("eval_error", f"The expression could not be evaluated ({type(e).__name__}).",
                                  "表达式计算出错。") from None
        if type(v) is float and (v != v or v == _INF or v == _NINF):
            raise ExpressionError("limit", "The result is too large (overflow).", "结果太大（溢出）。")
        return v

    def __repr__(self):
        return f"<CompiledExpression {self.source!r} -> {self.result_type}>"


_INF = float("inf")
_NINF = float("-inf")



def _compile_uncached(source, schema: Schema):
    errors: list[ExpressionError] = []
    refs: Counter = Counter()
    flags = {"volatile": False, "uses_previous": False}
    src = _Source(source if isinstance(source, str) else "")
    c = _Compiler(src, schema, errors=errors, refs=refs, flags=flags, budget=[0])
    cn = _compile_tree(c, source)
    if errors or cn is None or cn.fn is _err_fn:
        if not errors:
            errors.append(ExpressionError("syntax", "The expression is not valid.", "表达式无效。"))
        errors.sort(key=lambda e: e.position or (0, 0))
        return None, errors
    fn = cn.fn
    return CompiledExpression(
        source, fn, frozenset(k for k, v in refs.items() if v > 0), cn.t.public,
        flags["volatile"], flags["uses_previous"]), []


class _LRU:
    def __init__(self, maxsize=4096):
        self.maxsize = maxsize
        self.data: OrderedDict = OrderedDict()
        self.lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key):
        with self.lock:
            v = self.data.get(key)
            if v is not None:
                self.data.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return v

    def put(self, key, value):
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.maxsize:
                self.data.popitem(last=False)

    def clear(self):
        with self.lock:
            self.data.clear()
            self.hits = self.misses = 0


_CACHE = _LRU()


def _compiled(source, schema):
    if schema is None:
        schema = _EMPTY_SCHEMA
    if not isinstance(schema, Schema):
        raise TypeError("schema must be a zhongshu.runtime.expressions.Schema")
    if not isinstance(source, str):
        return None, [ExpressionError("syntax", "The expression must be text.", "表达式必须是文本。")]
    key = (source, schema.fingerprint)
    hit = _CACHE.get(key)
    if hit is None:
        hit = _compile_uncached(source, schema)
        _CACHE.put(key, hit)
    return hit


def compile_expression(source: str, schema: Schema | None = None) -> CompiledExpression:
    """Parse, check and compile ``source`` against ``schema`` (cached).

    Raises the first :class:`ExpressionError` (by position); all of them are on its
    ``.errors`` attribute.
    """
    expr, errors = _compiled(source, schema)
    if expr is None:
        e = errors[0]
        first = ExpressionError(e.code, e.message_en, e.message_zh, position=e.position,
                                end_position=e.end_position, suggestion=e.suggestion)
        first.errors = list(errors)
        raise first
    return expr


def check_expression(source: str, schema: Schema | None = None) -> list[ExpressionError]:
    """Every problem in ``source`` (empty list when it is fine), for live editor validation."""
    return list(_compiled(source, schema)[1])


def cache_info() -> dict:
    return {"size": len(_CACHE.data), "maxsize": _CACHE.maxsize, "hits": _CACHE.hits, "misses": _CACHE.misses}


def clear_cache() -> None:
    _CACHE.clear()
