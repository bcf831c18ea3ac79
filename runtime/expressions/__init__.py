"""Zhongshu's expression language: formulas, rule conditions and computed action values.

Python-like syntax, parsed with :mod:`ast`, checked against a whitelist and a schema, and
compiled once into nested closures (no ``eval``/``exec``, no ``getattr``). Compiled
expressions are cached by (source, schema fingerprint). See docs/expressions.md.

Public API (stable)::

    from zhongshu.runtime.expressions import (compile_expression, check_expression,
        ExpressionError, Schema, FieldInfo, EvalContext, FUNCTIONS)

    compile_expression(source: str, schema: Schema | None = None) -> CompiledExpression
        # raises ExpressionError (the first problem; all problems on .errors)
    check_expression(source: str, schema: Schema | None = None) -> list[ExpressionError]

    expr.evaluate(record: dict | None = None, ctx: EvalContext | None = None) -> value
    expr.references     # frozenset of field paths: {"amount", "items.subtotal", "customer.level"}
    expr.result_type    # "number" | "text" | "boolean" | "date" | "datetime" | "list" | "any"
    expr.volatile       # True when it uses NOW()/TODAY()/changed()/previous() (recompute on a timer)
    expr.uses_previous  # True when it uses changed()/previous() (rule conditions)
    expr.source

    EvalContext(now=None, tz="Asia/Shanghai", previous=None, changed_fields=None,
                max_steps=1_000_000, timeout=1.0)
    Schema({"name": FieldInfo(...), ...})
    FieldInfo(type, *, options=None, schema=None, result_type=None, many=False, label=None)
    ExpressionError: .code .message (zh-CN) .message_en .message_zh .message_for(locale)
                     .position (line, col) .end_position .suggestion .to_dict(locale)
    FUNCTIONS: dict of upper-case name -> Function (signature, en, zh, examples, ...)
"""
from .compiler import (CompiledExpression, cache_info, check_expression, clear_cache,
                       compile_expression)
from .errors import ExpressionError
from .functions import FUNCTIONS, Function
from .schema import FieldInfo, Schema
from .values import (MAX_BRACKET_DEPTH, MAX_DEPTH, MAX_EXPONENT, MAX_INT_BITS, MAX_LIST,
                     MAX_NODES, MAX_SOURCE_LENGTH, MAX_STRING, MAX_SUB_DEPTH, EvalContext)

__all__ = [
    "compile_expression", "check_expression", "ExpressionError", "Schema", "FieldInfo",
    "EvalContext", "FUNCTIONS", "Function", "CompiledExpression", "cache_info", "clear_cache",
    "MAX_SOURCE_LENGTH", "MAX_NODES", "MAX_DEPTH", "MAX_BRACKET_DEPTH", "MAX_SUB_DEPTH",
    "MAX_STRING", "MAX_LIST", "MAX_INT_BITS", "MAX_EXPONENT",
]
