"""The sandbox: known escape and resource-exhaustion payloads for simpleeval-style evaluators.

Every payload must end in a clean ExpressionError -- at compile time where possible, otherwise
at evaluation -- never a crash, a RecursionError, a MemoryError or a hang. (No timings are
asserted; a hang would show up as a stuck test.)
"""
import pytest

from zhongshu.runtime.expressions import (EvalContext, ExpressionError, FieldInfo, Schema, check_expression,
                                          compile_expression)

SCHEMA = Schema({
    "name": FieldInfo("text"), "n": FieldInfo("number"), "payload": FieldInfo("json"),
    "items": FieldInfo("sub_table", schema=Schema({
        "qty": FieldInfo("number"),
        "rows": FieldInfo("sub_table", schema=Schema({"x": FieldInfo("number")}))})),
})

ESCAPES = [
    # attribute / dunder walks
    "().__class__.__bases__[0].__subclasses__()",
    "''.__class__.__mro__[1].__subclasses__()",
    "name.__class__", "n.__add__(1)", "items.__len__", "__builtins__", "__import__('os').system('id')",
    "globals()", "locals()", "vars()", "dir()", "type(1)", "getattr(1, '__class__')", "eval('1')",
    "exec('1')", "compile('1', '', 'eval')", "open('/etc/passwd').read()", "breakpoint()",
    "help()", "input()", "print(1)", "setattr(n, 'x', 1)", "object()", "super()",
    # format-string tricks
    "'{0.__class__}'.format(1)", "'{0.__class__.__init__.__globals__}'.format(name)",
    "'%s' % name", "'{}'.format_map({})", "f'{name.__class__}'", "f'{1}'",
    # generators, frames, comprehensions, lambdas
    "(x for x in [1]).gi_frame.f_globals", "[x for x in [1]]", "{x for x in [1]}", "{x: 1 for x in [1]}",
    "lambda: 1", "(lambda: 1)()", "[1].pop()", "items.append(1)", "payload.clear()", "payload.get('a')",
    "payload['__class__']", "payload.__dict__",
    # assignment and statements
    "(a := 1)", "import os", "x = 1", "del n", "n; n", "yield 1", "await n",
    # odd syntax
    "*items", "{'a': 1}", "{1, 2}", "name[1:2]", "~n", "n << 100000", "n @ n", "b'x'", "1j", "...",
]

EXHAUSTION = [
    "9**9**9", "10**10**10", "2**100000", "(-2)**999999", "9.0**9999", "'a'*10**9", "[1]*10**9",
    "'a'*100000*2", "LEFT('x', 10**9) * 10**6", "REPLACE('aaaa' * 20000, 'a', 'aaaa' * 1000)",
    "CONCAT('a' * 99999, 'bb' * 40000)",
    "(" * 500 + "1" + ")" * 500, "[" * 200 + "]" * 200, "-" * 5000 + "1", "not " * 3000 + "1",
    "1" + "+1" * 3000, "ROUND(1, 10**9)", "DATEADD(DATE('2024-01-01'), 10**12)",
    "DATE(99999, 1, 1)", "TEXT(1, '0.' + '0' * 500)", "MID('a', -5, 1)", "'x' * -1 + 'a' * 200000",
]


def _assert_clean(source, record=None):
    try:
        errors = check_expression(source, SCHEMA)
    except Exception as e:  # pragma: no cover - this is the failure we test for
        pytest.fail(f"check_expression raised {type(e).__name__}: {e}")
    if errors:
        assert all(isinstance(e, ExpressionError) for e in errors)
        return errors[0]
    try:
        compile_expression(source, SCHEMA).evaluate(record or {"name": "x", "n": 1, "payload": {}})
    except ExpressionError as e:
        return e
    pytest.fail(f"{source!r} evaluated without error")


@pytest.mark.parametrize("source", ESCAPES)
def test_escape_payloads_fail_cleanly(source):
    e = _assert_clean(source)
    assert e.code in {"not_allowed", "unknown_function", "unknown_field", "syntax", "type_mismatch", "arg_type"}


@pytest.mark.parametrize("source", EXHAUSTION)
def test_resource_exhaustion_payloads_fail_cleanly(source):
    e = _assert_clean(source)
    assert e.code in {"limit", "too_long", "syntax", "type_mismatch", "not_allowed"}


def test_dunder_strings_as_keys_are_refused_even_at_run_time():
    expr = compile_expression("payload[name]", SCHEMA)
    with pytest.raises(ExpressionError) as e:
        expr.evaluate({"payload": {"__class__": 1}, "name": "__class__"})
    assert e.value.code == "not_allowed"


def test_nested_sub_table_loops_hit_the_step_budget():
    rows = [{"x": i} for i in range(300)]
    record = {"items": [{"qty": 1, "rows": rows} for _ in range(300)]}
    expr = compile_expression("ANY(items, \"ANY(rows, 'x < 0')\")", SCHEMA)
    with pytest.raises(ExpressionError) as e:
        expr.evaluate(record, EvalContext(max_steps=10_000))
    assert e.value.code == "limit"
    assert expr.evaluate(record) is False          # the default budget is enough for 90k rows


def test_sub_expressions_cannot_nest_without_bound():
    src = "ANY(items, \"ANY(rows, 'ANY(rows, \\\"x\\\")')\")"
    assert check_expression(src, SCHEMA)


def test_records_are_read_with_dict_get_only():
    class Evil(dict):
        def __getattr__(self, item):     # never called: no getattr on data
            raise AssertionError("getattr on record data")
    assert compile_expression("name", SCHEMA).evaluate(Evil(name="ok")) == "ok"


def test_overflowing_float_result_is_a_limit_error():
    with pytest.raises(ExpressionError) as e:
        compile_expression("n * 1e308 * 10", SCHEMA).evaluate({"n": 1e308})
    assert e.value.code == "limit"
