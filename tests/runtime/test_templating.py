"""Message templates: what business users can write, and the SSTI payloads that must fail."""
import datetime as dt
from decimal import Decimal

import pytest

from zhongshu.runtime.templating import (MAX_LOOP_ITERATIONS, TemplateError, check_template,
                                         render_template)

UTC = dt.timezone.utc
CONTEXT = {
    "order": {"order_no": "SO-1001", "amount": Decimal("1234.5"), "status": "已发货",
              "created": dt.datetime(2024, 6, 1, 10, 30, tzinfo=UTC),
              "items": [{"sku": "A1", "name": "婴儿连体衣", "qty": 2}, {"sku": "B2", "name": "袜子", "qty": 1}]},
    "customer": {"name": "欧阳娜娜", "phone": "13812345678"},
    "note": "<script>alert(1)</script>",
}


def render(source, **kw):
    return render_template(source, CONTEXT, **kw)


def test_a_shipping_notice():
    source = (
        "亲爱的 {{ customer.name|mask_name }}，您的订单 {{ order.order_no }} {{ order.status }}。\n"
        "{% for item in order.items %}\n"
        "- {{ item.name }} × {{ item.qty }}\n"
        "{% endfor %}\n"
        "合计 {{ order.amount|money }}，下单时间 {{ order.created|date('YYYY年M月D日 HH:mm') }}，"
        "联系电话 {{ customer.phone|mask_phone }}"
    )
    assert render(source) == (
        "亲爱的 欧***，您的订单 SO-1001 已发货。\n"
        "- 婴儿连体衣 × 2\n"
        "- 袜子 × 1\n"
        "合计 ¥1,234.50，下单时间 2024年6月1日 18:30，联系电话 138****5678"
    )


def test_dict_keys_win_over_dict_methods():
    assert render("{{ order.items|length }}") == "2"          # the key "items", not dict.items


def test_filters():
    assert render("{{ order.amount|money('$', 0) }}") == "$1,235"
    assert render("{{ -5|money }}") == "-¥5.00"
    assert render("{{ order.created|date }}") == "2024-06-01 18:30"
    assert render("{{ order.created|date('HH:mm') }}", tz="UTC") == "10:30"
    assert render("{{ order.items|map(attribute='sku')|join(', ') }}") == "A1, B2"
    assert render("{{ order.status|replace('已', '') }}") == "发货"
    assert render("{{ missing|default('无') }}") == "无"


def test_html_mode_escapes_and_text_mode_does_not():
    assert render("{{ note }}", html=True) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert render("{{ note }}") == "<script>alert(1)</script>"


def test_missing_values_render_empty():
    assert render("[{{ order.nope }}][{{ nobody.name.first }}]") == "[][]"


def test_check_template_reports_lines():
    errors = check_template("第一行\n{{ order.amount|nosuch }}\n")
    assert [(e.code, e.line) for e in errors] == [("unknown_filter", 2)]
    errors = check_template("ok\n\n{% for x in y %}")
    assert errors[0].code == "syntax" and errors[0].line == 3
    assert errors[0].message_zh.startswith("模板语法错误")
    assert check_template("{{ order.order_no }}") == []


SSTI = [
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ '{0.__class__}'.format(order) }}",
    "{{ '{0.__class__.__init__.__globals__}'.format(order) }}",
    "{{ order.status.format_map(order) }}",
    "{{ order['__class__'] }}",
    "{{ order|attr('__class__') }}",
    "{{ (order|attr('\\x5f\\x5fclass\\x5f\\x5f')) }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ range.__self__ }}",
    "{{ dict(a=1) }}",
    "{% set g = (1 for x in [1]) %}{{ g.gi_frame.f_globals }}",
    "{{ order.items.__class__ }}",
    "{{ config.__class__.__init__.__globals__['os'] }}",
    "{{ request.application.__globals__.__builtins__.__import__('os') }}",
    "{{ __import__('os').system('id') }}",
    "{% import 'os' as os %}",
    "{% include '/etc/passwd' %}",
    "{% extends 'base.html' %}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}",
    "{{ '%s' % order }}",
    "{{ '%*d' % (999999999, 1) }}",
    "{{ 'x'|center(999999999) }}",
    "{{ 'x'|indent(999999999) }}",
    "{{ [1, 2]|slice(999999999)|list }}",
    "{{ 'a' * 999999999 }}",
    "{{ [1] * 999999999 }}",
    "{{ 9 ** (9 ** 9) }}",
    "{{ range(999999999)|list }}",
    "{% for i in range(10**9) %}{% endfor %}",
    "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "{% for i in order.items * 5000 %}{% for j in order.items * 5000 %}{% endfor %}{% endfor %}",
    "{% set x = 'a' * 10000 %}{% set x = x ~ x %}{% set x = x ~ x %}{% set x = x ~ x %}"
    "{% set x = x ~ x %}{% set x = x ~ x %}{% set x = x ~ x %}{% set x = x ~ x %}{{ x }}",
    "{% set x = [1, 2] %}" + "{% set x = [x, x] %}" * 40 + "{{ x }}",
    "{% with x = 'a' * 99999 %}{% with y = [x, x, x] %}{{ y }}{% endwith %}{% endwith %}",
    "{% for i in range(10000) %}{{ 'x' * 100 }}{% endfor %}",
    "{{ order.status|replace('', 'x' * 50000) }}",
    "{{ 'a' * 60000 + 'b' * 60000 }}",
    "{{ order.created.replace(year=1) }}",
    "{{ 1 / 0 }}",
    "{{ _zs_iter }}",
]


@pytest.mark.parametrize("source", SSTI)
def test_ssti_and_resource_payloads_fail_cleanly(source):
    errors = check_template(source)
    if errors:
        assert all(isinstance(e, TemplateError) and e.code for e in errors)
        return
    with pytest.raises(TemplateError) as info:
        render(source)
    assert info.value.code in {"not_allowed", "limit", "render_error"}


def test_output_size_limit():
    with pytest.raises(TemplateError) as e:
        render("{% for i in range(200) %}{{ order.order_no }}{% endfor %}", max_output=100)
    assert e.value.code == "limit"


def test_loop_budget_is_per_render():
    source = "{% for i in range(" + str(MAX_LOOP_ITERATIONS) + ") %}{% endfor %}ok"
    assert render(source) == "ok"
    assert render(source) == "ok"


def test_too_long_source():
    assert check_template("x" * 30000)[0].code == "too_long"
