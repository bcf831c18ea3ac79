"""The function library, read like a reference: every documented example, then details.

The examples live next to each function in ``FUNCTIONS`` (and are printed in
docs/expressions.md); this file evaluates every one of them against the sample order.
"""
import datetime as dt
from decimal import Decimal

import pytest

from zhongshu.runtime.expressions import (FUNCTIONS, EvalContext, ExpressionError, FieldInfo, Schema,
                                          compile_expression)
from zhongshu.runtime.expressions.functions import (EXAMPLE_NOW, EXAMPLE_PREVIOUS, EXAMPLE_RECORD,
                                                    EXAMPLE_SCHEMA)

UTC = dt.timezone.utc
CTX = EvalContext(now=EXAMPLE_NOW, tz="Asia/Shanghai", previous=EXAMPLE_PREVIOUS)
EXAMPLES = sorted({(f.name, src, repr(exp)): (src, exp) for f in FUNCTIONS.values()
                   for src, exp in f.examples}.items())


def ev(source, record=None, ctx=CTX, schema=EXAMPLE_SCHEMA):
    return compile_expression(source, schema).evaluate(EXAMPLE_RECORD if record is None else record, ctx)


@pytest.mark.parametrize("key,case", EXAMPLES, ids=[k[1] for k, _ in EXAMPLES])
def test_documented_example(key, case):
    source, expected = case
    got = ev(source)
    assert got == expected and type(got) is type(expected), f"{source} -> {got!r}"


def test_every_function_is_documented_with_an_example_in_both_languages():
    for name, f in FUNCTIONS.items():
        assert f.examples, name
        assert f.en and f.zh and f.signature, name


# -- logic -------------------------------------------------------------------------------
def test_if_only_evaluates_the_branch_taken():
    # the other branch would divide text by a number at run time
    schema = Schema({"n": FieldInfo("number"), "j": FieldInfo("json")})
    expr = compile_expression("IF(n > 0, 1, j / 2)", schema)
    assert expr.evaluate({"n": 1, "j": "text"}) == 1


def test_ifs_and_switch():
    assert ev("IFS(amount > 1000, '大单', amount > 100, '中单')") == "中单"
    assert ev("IFS(amount > 1000, '大单')") is None
    assert ev("SWITCH(customer.level, 'VIP', 0.9, '普通', 1)") == 0.9
    assert ev("SWITCH(channel, '天猫', 1)") is None


def test_and_or_not_return_booleans():
    assert ev("AND(amount, order_no)") is True
    assert ev("OR(remark, 0)") is False
    assert ev("NOT(remark)") is True


# -- maths --------------------------------------------------------------------------------
def test_round_is_half_up_like_a_spreadsheet():
    assert ev("ROUND(0.5)") == 1.0
    assert ev("ROUND(-2.5)") == -3.0
    assert ev("ROUND(2.675, 2)") == 2.68          # binary float would give 2.67
    assert ev("ROUND(amount * 0.88, 1)") == Decimal("351.1")


def test_sum_min_max_avg_count_skip_blanks_and_flatten_lists():
    rec = {"items": [{"subtotal": Decimal("10.5")}, {"subtotal": None}, {"subtotal": 2}]}
    schema = Schema({"items": FieldInfo("sub_table", schema=Schema({"subtotal": FieldInfo("currency")}))})
    assert ev("SUM(items.subtotal, 1)", rec, schema=schema) == Decimal("13.5")
    assert ev("MIN(items.subtotal)", rec, schema=schema) == 2
    assert ev("MAX(items.subtotal)", rec, schema=schema) == Decimal("10.5")
    assert ev("AVG(items.subtotal)", rec, schema=schema) == Decimal("6.25")
    assert ev("COUNT(items.subtotal)", rec, schema=schema) == 2
    assert ev("COUNT(items)", rec, schema=schema) == 3
    assert ev("AVG(items.subtotal)", {"items": []}, schema=schema) is None
    assert ev("SUM(items.subtotal)", {"items": []}, schema=schema) == 0


def test_sum_mixes_decimal_and_float_into_decimal():
    assert ev("SUM(amount, 0.1)") == Decimal("399.10")


def test_ceiling_floor_abs():
    assert ev("CEILING(10.01, 0.5)") == 10.5
    assert ev("FLOOR(-2.5)") == -3
    assert ev("ABS(remark)") is None


# -- text ---------------------------------------------------------------------------------
@pytest.mark.parametrize("source,expected", [
    ("LEFT('中华人民共和国', 2)", "中华"),
    ("RIGHT('中华人民共和国', 3)", "共和国"),
    ("MID('中华人民共和国', 3, 2)", "人民"),
    ("LEN('中华人民共和国')", 7),
    ("LEN(remark)", 0),
    ("UPPER('abc中文')", "ABC中文"),
    ("TRIM('\u3000 李 四 \u3000')", "李 四"),
    ("CONTAINS('浙江省杭州市', '杭州')", True),
    ("CONTAINS(remark, '杭州')", False),
    ("REPLACE('满100减10', '100', '200')", "满200减10"),
    ("CONCAT('¥', ROUND(amount * 0.9, 2))", "¥359.10"),
    ("CONCAT(tags)", "加急, 新客"),
    ("CONCAT('a', remark, 'b')", "ab"),
    ("TEXT(amount, '¥#,##0.00')", "¥399.00"),
    ("TEXT(DATE('2024-06-01'), 'YYYY/MM/DD')", "2024/06/01"),
    ("TEXT(True)", "TRUE"),
    ("VALUE('¥1,299')", 1299),
    ("VALUE('15%')", Decimal("0.15")),
    ("VALUE(remark)", None),
])
def test_text_functions(source, expected):
    got = ev(source)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("phone,masked", [
    ("13812345678", "138****5678"),
    ("+8613812345678", "+86138****5678"),
    ("138 1234 5678", "138****5678"),
    ("0571-87654321", "057*****4321"),
    ("12345", "12*45"),
    ("", ""),
])
def test_mask_phone(phone, masked):
    assert ev("MASK_PHONE(p)", {"p": phone}, schema=Schema({"p": FieldInfo("phone")})) == masked


@pytest.mark.parametrize("name,masked", [("张三", "张*"), ("欧阳娜娜", "欧***"), ("李", "*"), ("", ""),
                                         ("John", "J***")])
def test_mask_name(name, masked):
    assert ev("MASK_NAME(n)", {"n": name}, schema=Schema({"n": FieldInfo("text")})) == masked


def test_hashes_for_global_ids():
    import hashlib
    expected = hashlib.sha256("抖音:ext-9".encode()).hexdigest()
    assert ev("SHA256(CONCAT(channel, ':', 'ext-9'))") == expected
    assert ev("MD5('')") == hashlib.md5(b"").hexdigest()


# -- dates --------------------------------------------------------------------------------
def test_now_and_today_use_the_context_clock_and_tenant_timezone():
    late = EvalContext(now=dt.datetime(2024, 6, 1, 17, 0, tzinfo=UTC), tz="Asia/Shanghai")
    assert ev("TODAY()", ctx=late) == dt.date(2024, 6, 2)          # already 1 a.m. in Shanghai
    assert ev("TODAY()", ctx=EvalContext(now=late.now, tz="UTC")) == dt.date(2024, 6, 1)
    assert ev("NOW()", ctx=late) == late.now


def test_dateadd_units():
    assert ev("DATEADD(DATE('2024-06-01'), 3)") == dt.date(2024, 6, 4)
    assert ev("DATEADD(DATE('2024-06-01'), -1, 'days')") == dt.date(2024, 5, 31)
    assert ev("DATEADD(created, 90, 'minutes')") == dt.datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    assert ev("DATEADD(DATE('2024-06-01'), 2, 'hours')") == dt.datetime(2024, 5, 31, 18, 0, tzinfo=UTC)
    assert ev("DATEADD(DATE('2023-01-31'), 1, 'months')") == dt.date(2023, 2, 28)
    assert ev("DATEADD(remark, 1)") is None


def test_datedif_counts_calendar_days_in_tenant_time_and_elapsed_hours():
    schema = Schema({"a": FieldInfo("datetime"), "b": FieldInfo("datetime")})
    rec = {"a": dt.datetime(2024, 6, 1, 15, 0, tzinfo=UTC),   # 23:00 Shanghai
           "b": dt.datetime(2024, 6, 1, 17, 0, tzinfo=UTC)}   # 01:00 next day
    assert ev("DATEDIF(a, b, 'days')", rec, schema=schema) == 1
    assert ev("DATEDIF(a, b, 'hours')", rec, schema=schema) == 2
    assert ev("DATEDIF(b, a, 'minutes')", rec, schema=schema) == -120
    assert ev("HOURS_BETWEEN(a, b)", rec, schema=schema) == 2.0
    assert ev("DATEDIF(DATE('2024-01-31'), DATE('2024-03-30'), 'months')") == 1


def test_weekday_year_month_day_in_tenant_timezone():
    schema = Schema({"t": FieldInfo("datetime")})
    rec = {"t": dt.datetime(2024, 12, 31, 16, 30, tzinfo=UTC)}  # 2025-01-01 00:30 Shanghai (Wednesday)
    assert [ev(f"{f}(t)", rec, schema=schema) for f in ("YEAR", "MONTH", "DAY", "WEEKDAY")] == [2025, 1, 1, 3]


def test_date_arithmetic_and_comparisons_with_literals():
    assert ev("DATE('2024-06-08') - DATE('2024-06-01')") == 7
    assert ev("DATE('2024-06-01') + 1") == dt.date(2024, 6, 2)
    assert ev("created >= '2024-06-01' and created < '2024-06-02'") is True
    assert ev("created > '2024-06-01 18:00'") is True           # literal times are tenant local


# -- blanks ---------------------------------------------------------------------------------
def test_isblank_and_coalesce():
    assert ev("ISBLANK('  ')") is True
    assert ev("ISBLANK([])") is True
    assert ev("ISBLANK(0)") is False
    assert ev("COALESCE(remark, '', customer.name)") == "张三"


# -- sub-tables and links ---------------------------------------------------------------------
def test_any_all_filter_on_sub_table():
    assert ev("ANY(items, \"category == '连体衣' and qty >= 2\")") is True
    assert ev("ALL(items, \"qty > 1\")") is False
    assert ev("ALL(items, \"qty > 0\")", {"items": []}) is True
    assert [r["sku"] for r in ev("FILTER(items, \"subtotal > 100\")")] == ["A1", "B2"]
    assert ev("COUNT(FILTER(items, \"category == '袜子'\"))") == 1


def test_multi_hop_paths_through_links_and_sub_tables():
    schema = Schema({"items": FieldInfo("sub_table", schema=Schema({
        "qty": FieldInfo("number"),
        "product": FieldInfo("link", schema=Schema({"category": FieldInfo("text")}))}))})
    rec = {"items": [{"qty": 1, "product": {"category": "连体衣"}}, {"qty": 2, "product": None},
                     {"qty": 3, "product": {"category": "袜子"}}]}
    expr = compile_expression("items.product.category", schema)
    assert expr.evaluate(rec) == ["连体衣", None, "袜子"]
    assert expr.references == frozenset({"items.product.category"})
    assert expr.result_type == "list"
    assert compile_expression("'袜子' in items.product.category", schema).evaluate(rec) is True
    assert compile_expression("ANY(items, \"product.category == '袜子'\")", schema).evaluate(rec) is True


def test_many_link_is_a_list():
    schema = Schema({"coupons": FieldInfo("link", many=True, schema=Schema({"value": FieldInfo("currency")}))})
    rec = {"coupons": [{"value": Decimal("5")}, {"value": Decimal("10")}]}
    assert compile_expression("SUM(coupons.value)", schema).evaluate(rec) == Decimal("15")


# -- rule helpers ---------------------------------------------------------------------------------
def test_changed_and_previous():
    record = dict(EXAMPLE_RECORD)
    expr = compile_expression("changed('status') and previous('status') == '待付款' and status == '已付款'",
                              EXAMPLE_SCHEMA)
    assert expr.uses_previous
    assert expr.evaluate(record, EvalContext(previous=EXAMPLE_PREVIOUS)) is True
    assert expr.evaluate(record, EvalContext(previous=record)) is False
    # the caller may say which fields changed
    assert compile_expression("changed('amount')", EXAMPLE_SCHEMA).evaluate(
        record, EvalContext(previous=record, changed_fields={"amount"})) is True
    # a new record (no previous): a field counts as changed when it has a value
    assert compile_expression("changed('status')", EXAMPLE_SCHEMA).evaluate(record, EvalContext()) is True
    assert compile_expression("previous('status')", EXAMPLE_SCHEMA).evaluate(record, EvalContext()) is None


def test_function_names_are_case_insensitive():
    assert ev("sum(1, 2)") == 3
    assert ev("Round(1.25, 1)") == 1.3


def test_runtime_type_problem_is_an_expression_error():
    schema = Schema({"j": FieldInfo("json")})
    with pytest.raises(ExpressionError) as e:
        compile_expression("ROUND(j)", schema).evaluate({"j": "not a number"})
    assert e.value.code == "type_mismatch"
    assert e.value.position == (1, 0)
