"""Compile-time checks: every problem has a code, a position and bilingual plain words."""
import pytest

from zhongshu.runtime.expressions import ExpressionError, FieldInfo, Schema, check_expression, compile_expression

SCHEMA = Schema({
    "amount": FieldInfo("number", label="金额"),
    "status": FieldInfo("single_select", options=["待付款", "已付款"]),
    "created": FieldInfo("datetime"),
    "order_no": FieldInfo("text", label="订单编号"),
    "items": FieldInfo("sub_table", schema=Schema({"qty": FieldInfo("number"), "category": FieldInfo("text")})),
    "customer": FieldInfo("link", schema=Schema({"level": FieldInfo("single_select")})),
})


def first(source):
    errors = check_expression(source, SCHEMA)
    assert errors, source
    return errors[0]


@pytest.mark.parametrize("source,code,position,suggestion", [
    ("amout > 300", "unknown_field", (1, 0), "amount"),
    ("订单编号 == 'x'", "unknown_field", (1, 0), "order_no"),        # typed the label
    ("amount > 1 and custmer.level == 'VIP'", "unknown_field", (1, 15), "customer"),
    ("customer.levl == 'VIP'", "unknown_field", (1, 9), "level"),
    ("SUMM(items.qty)", "unknown_function", (1, 0), "SUM"),
    ("str(amount)", "unknown_function", (1, 0), "TEXT"),
    ("ROUND()", "arg_count", (1, 0), None),
    ("LEFT('a', 1, 2)", "arg_count", (1, 0), None),
    ("'abc' - 1", "type_mismatch", (1, 0), None),
    ("order_no > 5", "type_mismatch", (1, 0), None),
    ("status == 1", "type_mismatch", (1, 0), None),
    ("amount + 'x'", "type_mismatch", (1, 0), None),
    ("ROUND('abc')", "type_mismatch", (1, 6), None),
    ("DATEADD(created, 1, 'fortnight')", "arg_type", (1, 20), None),
    ("status == '已付'", "unknown_option", (1, 10), "已付款"),
    ("status in ['待付款', '已发'] ", "unknown_option", (1, 10), None),
    ("ANY(items, \"categry == '连体衣'\")", "unknown_field", (1, 12), "category"),
    ("ANY(items, category == 'x')", "arg_type", (1, 11), None),
    ("ANY(order_no, \"x\")", "type_mismatch", (1, 4), None),
    ("changed(status)", "arg_type", (1, 8), None),
    ("amount >", "syntax", (1, 8), None),
    ("amount >（1）", "syntax", (1, 8), None),
    ("amount > 1 and\n  (status == ", "syntax", None, None),
    ("", "syntax", (1, 0), None),
    ("amount.x", "not_allowed", (1, 7), None),
    ("SUM", "syntax", (1, 0), None),
])
def test_check_time_errors(source, code, position, suggestion):
    e = first(source)
    assert e.code == code, e
    if position is not None:
        assert e.position == position, e
    if suggestion is not None:
        assert e.suggestion == suggestion
    assert e.message_en and e.message_zh and e.message == e.message_zh
    assert e.message_for("en-US") == e.message_en


def test_all_problems_are_reported_at_once():
    errors = check_expression("amout > 1 and stauts == 'x' and FOO(1)", SCHEMA)
    assert [e.code for e in errors] == ["unknown_field", "unknown_field", "unknown_function"]
    assert [e.position for e in errors] == [(1, 0), (1, 14), (1, 32)]


def test_positions_count_characters_not_bytes():
    e = first("'中文中文' == order_no and amout > 1")
    assert e.position == (1, 23)


def test_position_on_a_later_line():
    e = first("amount > 1\nand stat == '已付款'")
    assert e.position == (2, 4)


def test_compile_raises_the_first_error_with_all_of_them_attached():
    with pytest.raises(ExpressionError) as info:
        compile_expression("amout + FOO()", SCHEMA)
    assert info.value.code == "unknown_field"
    assert len(info.value.errors) == 2
    d = info.value.to_dict("en")
    assert d["line"] == 1 and d["col"] == 0 and "amout" in d["message"]


def test_too_long():
    assert first("1 + " * 1001 + "1").code == "too_long"
