"""Fuzzing: random expressions from a grammar never raise anything but ExpressionError."""
import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zhongshu.runtime.expressions import (FUNCTIONS, EvalContext, ExpressionError, FieldInfo, Schema,
                                          check_expression, compile_expression)

ROW = Schema({"qty": FieldInfo("number"), "category": FieldInfo("text"), "price": FieldInfo("currency")})
SCHEMA = Schema({
    "amount": FieldInfo("currency"), "n": FieldInfo("number"), "status": FieldInfo("single_select"),
    "name": FieldInfo("text"), "created": FieldInfo("datetime"), "day": FieldInfo("date"),
    "flag": FieldInfo("boolean"), "tags": FieldInfo("multi_select"), "payload": FieldInfo("json"),
    "items": FieldInfo("sub_table", schema=ROW),
    "customer": FieldInfo("link", schema=Schema({"level": FieldInfo("text"), "score": FieldInfo("number")})),
})

NAMES = list(SCHEMA) + ["items.qty", "items.price", "customer.level", "customer.score", "nope", "__class__",
                        "True", "None", "x"]
FUNCS = sorted(set(FUNCTIONS)) + ["changed", "previous", "eval", "getattr"]
LITERALS = ["0", "1", "-1", "2.5", "1e308", "10**5", "''", "'中文'", "'2024-06-01'", "'qty > 0'",
            "\"category == 'x'\"", "'status'", "None", "True", "[]", "[1, 'a']", "'__class__'",
            "99999999999999999999", "'a' * 3"]
BINOPS = ["+", "-", "*", "/", "//", "%", "**", "and", "or", "==", "!=", "<", "<=", ">", ">=", "in",
          "not in", "is", "&", "<<"]
GARBAGE = ["(", ")", "[", "]", ",", ".", ":", "lambda", "for", "if", "else", "'", "\"", "\\", "{", "}",
           "@", "#", "\n", "（", "\x00"]

atoms = st.sampled_from(NAMES + LITERALS)


def _extend(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(BINOPS), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["-", "not ", "+"]), children).map(lambda t: f"{t[0]}{t[1]}"),
        st.tuples(st.sampled_from(FUNCS), st.lists(children, max_size=4)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(children, st.sampled_from(["qty", "level", "upper", "__class__", "x"])).map(
            lambda t: f"{t[0]}.{t[1]}"),
        st.lists(children, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
    )


expressions = st.recursive(atoms, _extend, max_leaves=12)
mangled = st.tuples(expressions, st.integers(0, 60), st.sampled_from(GARBAGE)).map(
    lambda t: t[0][: t[1]] + t[2] + t[0][t[1]:])

values = st.one_of(st.none(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                   st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10**6, max_value=10**6),
                   st.text(max_size=8), st.booleans(),
                   st.just(dt.date(2024, 6, 1)), st.just(dt.datetime(2024, 6, 1, 8, tzinfo=dt.timezone.utc)))
rows = st.lists(st.fixed_dictionaries({"qty": values, "category": values, "price": values}), max_size=3)
records = st.fixed_dictionaries({
    "amount": values, "n": values, "status": values, "name": values, "created": values, "day": values,
    "flag": values, "tags": st.one_of(st.none(), st.lists(st.text(max_size=3), max_size=3)),
    "payload": st.one_of(values, st.dictionaries(st.text(max_size=3), values, max_size=3)),
    "items": st.one_of(st.none(), rows),
    "customer": st.one_of(st.none(), st.fixed_dictionaries({"level": values, "score": values})),
})

CTX = EvalContext(now=dt.datetime(2024, 6, 2, tzinfo=dt.timezone.utc), previous={"status": "a"})


def _run(source, record):
    errors = check_expression(source, SCHEMA)
    assert all(isinstance(e, ExpressionError) for e in errors)
    if errors:
        assert all(e.code and e.message_en and e.message_zh for e in errors)
        return
    expr = compile_expression(source, SCHEMA)
    try:
        expr.evaluate(record, CTX)
    except ExpressionError as e:
        assert e.code and e.message_en


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, records)
def test_random_expressions_only_raise_expression_error(source, record):
    _run(source, record)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled, records)
def test_mangled_expressions_only_raise_expression_error(source, record):
    _run(source, record)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_text_only_raises_expression_error(source):
    _run(source, {})
