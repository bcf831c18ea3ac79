"""The expression language: operators, blank semantics, references, result types, the spec's rules."""
import datetime as dt
from decimal import Decimal

import pytest

from zhongshu.runtime.expressions import (EvalContext, ExpressionError, FieldInfo, Schema,
                                          check_expression, compile_expression)
from zhongshu.runtime.expressions.compiler import cache_info, clear_cache

UTC = dt.timezone.utc

ORDER = Schema({
    "amount": FieldInfo("number"), "amount_paid": FieldInfo("currency"),
    "status": FieldInfo("single_select", options=["待付款", "已付款", "已发货"]),
    "channel": FieldInfo("single_select", options=["抖音", "天猫", "京东"]),
    "created": FieldInfo("datetime"), "order_no": FieldInfo("text"), "remark": FieldInfo("long_text"),
    "tags": FieldInfo("multi_select"), "is_vip": FieldInfo("boolean"),
    "items": FieldInfo("sub_table", schema=Schema({
        "qty": FieldInfo("number"), "subtotal": FieldInfo("currency"), "category": FieldInfo("text"),
        "is_gift": FieldInfo("boolean"),
        "product": FieldInfo("link", schema=Schema({"category": FieldInfo("text")}))})),
    "customer": FieldInfo("link", schema=Schema({"level": FieldInfo("single_select"), "name": FieldInfo("text")})),
})


def ev(source, record, ctx=None, schema=ORDER):
    return compile_expression(source, schema).evaluate(record, ctx)


# -- the spec's rule conditions ---------------------------------------------------------------
def test_unpaid_with_money_received():
    expr = compile_expression("amount_paid > 0 and status == '待付款'", ORDER)
    assert expr.evaluate({"amount_paid": Decimal("99.00"), "status": "待付款"}) is True
    assert expr.evaluate({"amount_paid": Decimal("0"), "status": "待付款"}) is False
    assert expr.evaluate({"amount_paid": None, "status": "待付款"}) is False      # blank is not > 0
    assert expr.references == frozenset({"amount_paid", "status"})
    assert expr.result_type == "boolean"


def test_douyin_order_with_a_onesie():
    expr = compile_expression("channel == '抖音' and ANY(items, \"category == '连体衣'\")", ORDER)
    rec = {"channel": "抖音", "items": [{"category": "袜子"}, {"category": "连体衣"}]}
    assert expr.evaluate(rec) is True
    assert expr.evaluate(dict(rec, channel="天猫")) is False
    assert expr.evaluate({"channel": "抖音", "items": None}) is False
    assert expr.references == frozenset({"channel", "items", "items.category"})


def test_seven_day_no_reason_return():
    schema = Schema({
        "type": FieldInfo("single_select", options=["退货", "换货", "仅退款"]),
        "reason": FieldInfo("single_select", options=["七天无理由", "质量问题"]),
        "order": FieldInfo("link", schema=Schema({"signed_at": FieldInfo("datetime")})),
    })
    expr = compile_expression(
        "type == '退货' and reason == '七天无理由' and HOURS_BETWEEN(order.signed_at, NOW()) > 7*24", schema)
    now = dt.datetime(2024, 6, 10, 12, 0, tzinfo=UTC)
    rec = {"type": "退货", "reason": "七天无理由", "order": {"signed_at": dt.datetime(2024, 6, 1, 12, 0, tzinfo=UTC)}}
    assert expr.evaluate(rec, EvalContext(now=now)) is True
    rec["order"]["signed_at"] = dt.datetime(2024, 6, 5, 12, 0, tzinfo=UTC)
    assert expr.evaluate(rec, EvalContext(now=now)) is False
    assert expr.evaluate(dict(rec, order=None), EvalContext(now=now)) is False   # never signed
    assert expr.volatile and expr.references == frozenset({"type", "reason", "order.signed_at"})


# -- references and result types ---------------------------------------------------------------
@pytest.mark.parametrize("source,refs,rtype", [
    ("amount > 300 and status == '已付款'", {"amount", "status"}, "boolean"),
    ("SUM(items.subtotal)", {"items.subtotal"}, "number"),
    ("customer.level", {"customer.level"}, "text"),
    ("items.product.category", {"items.product.category"}, "list"),
    ("COUNT(items)", {"items"}, "number"),
    ("CONCAT(order_no, '-', customer.name)", {"order_no", "customer.name"}, "text"),
    ("DATEADD(created, 1)", {"created"}, "datetime"),
    ("TODAY()", set(), "date"),
    ("IF(is_vip, 1, 'no')", {"is_vip"}, "any"),
    ("tags", {"tags"}, "list"),
    ("1 + 2", set(), "number"),
])
def test_references_and_result_type(source, refs, rtype):
    expr = compile_expression(source, ORDER)
    assert expr.references == frozenset(refs)
    assert expr.result_type == rtype


# -- operators ------------------------------------------------------------------------------------
@pytest.mark.parametrize("source,expected", [
    ("7 // 2", 3), ("7 % 3", 1), ("2 ** 10", 1024), ("-amount", -10), ("10 / 4", 2.5),
    ("1 < amount <= 10", True), ("3 if amount > 5 else 4", 3), ("[1, 2] + [3]", [1, 2, 3]),
    ("'ab' * 3", "ababab"), ("'VIP' in tags", True), ("'x' not in tags", True), ("'SO' in order_no", True),
    ("order_no[0]", "S"), ("order_no[-1]", "1"), ("tags[5]", None), ("not remark", True),
    ("amount is not None", True), ("remark is None", True), ("True and not False", True),
])
def test_operators(source, expected):
    rec = {"amount": 10, "tags": ["VIP", "加急"], "order_no": "SO-1", "remark": None}
    assert ev(source, rec) == expected


def test_decimal_and_float_mix_into_decimal():
    assert ev("amount_paid * 1.1", {"amount_paid": Decimal("10.00")}) == Decimal("11.000")
    assert ev("amount_paid + 0.1 > 10", {"amount_paid": Decimal("9.95")}) is True
    assert ev("amount_paid / 3", {"amount_paid": Decimal("10")}) == Decimal("10") / 3


# -- blank semantics --------------------------------------------------------------------------------
@pytest.mark.parametrize("source,expected", [
    ("amount + 1", 1),                 # blank counts as 0 in arithmetic
    ("amount * 5", 0),
    ("order_no + 'x'", "x"),          # ...and as "" next to text
    ("10 / amount", None),            # dividing by blank or zero gives blank
    ("10 / 0", None),
    ("amount > 0", False),            # ordering comparisons with blank are false
    ("amount < 0", False),
    ("amount == None", True),
    ("order_no == ''", True),         # all blanks are equal
    ("tags == []", True),
    ("amount != 0", True),            # but 0 is not blank
    ("'x' in order_no", False),
    ("'x' in tags", False),
    ("COALESCE(amount, 0) < 5", True),
])
def test_blank_semantics(source, expected):
    assert ev(source, {"amount": None, "order_no": None, "tags": None}) == expected


def test_mixed_type_comparisons_at_run_time_are_false_not_errors():
    schema = Schema({"j": FieldInfo("json")})
    assert ev("j > 5", {"j": "abc"}, schema=schema) is False
    assert ev("j < 'a'", {"j": 3}, schema=schema) is False
    assert ev("j == 5", {"j": "5"}, schema=schema) is False


def test_json_fields_can_be_read_with_string_keys():
    schema = Schema({"payload": FieldInfo("json")})
    rec = {"payload": {"buyer": {"nick": "小王"}, "list": [1, 2]}}
    assert ev("payload['buyer']['nick']", rec, schema=schema) == "小王"
    assert ev("payload['missing']", rec, schema=schema) is None
    assert ev("payload['list'][1]", rec, schema=schema) == 2


def test_sub_table_rows_by_index():
    rec = {"items": [{"qty": 2}, {"qty": 5}]}
    assert ev("items[-1].qty * 10", rec) == 50


# -- the record is never modified and results are fresh ----------------------------------------------
def test_evaluation_does_not_mutate_and_constant_lists_are_copies():
    expr = compile_expression("[1, 2]", ORDER)
    first = expr.evaluate({})
    first.append(3)
    assert expr.evaluate({}) == [1, 2]


# -- caching ---------------------------------------------------------------------------------------
def test_compiled_expressions_are_cached_by_source_and_schema():
    clear_cache()
    a = compile_expression("amount > 1", ORDER)
    b = compile_expression("amount > 1", ORDER)
    assert a is b
    other = Schema({"amount": FieldInfo("text")})
    assert compile_expression("amount > '1'", other) is not a
    assert cache_info()["hits"] >= 1


def test_equal_schemas_share_a_fingerprint():
    s1 = Schema({"a": FieldInfo("number"), "b": FieldInfo("text")})
    s2 = Schema({"b": FieldInfo("text"), "a": FieldInfo("number")})
    assert s1.fingerprint == s2.fingerprint
    assert s1.fingerprint != Schema({"a": FieldInfo("text")}).fingerprint


def test_check_expression_returns_empty_list_when_valid():
    assert check_expression("amount > 1", ORDER) == []


def test_multiline_and_comments():
    src = "amount > 1  # 大于 1\n and status == '已付款'"
    assert ev(src, {"amount": 5, "status": "已付款"}) is True
