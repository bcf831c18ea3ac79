"""The function library: Excel-flavoured, uppercase names (looked up case-insensitively).

Each entry of :data:`FUNCTIONS` is a :class:`Function` with its argument counts, argument
kinds (for compile-time checks), result type, a one-line description in zh-CN and en, and
examples that are evaluated by the test-suite against :data:`EXAMPLE_RECORD`, so the docs
cannot drift from the behaviour.

Functions whose arguments are evaluated lazily or specially (IF, IFS, SWITCH, AND, OR,
COALESCE, ANY, ALL, FILTER, CHANGED, PREVIOUS) have a ``builder`` installed by the compiler.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import re
from decimal import Decimal

from . import typesys as ty
from .errors import ExpressionError, limit_error, type_error
from .schema import FieldInfo, Schema
from .values import (MAX_STRING, State, charge, state_now, state_tz, add_months, as_datetime, check_str, contains, fmt_number,
                     is_blank, kind_of, kind_zh, local_date, num_pair, parse_number,
                     round_half_up, round_to_multiple, to_date_value, to_number, to_text, UTC)


class Function:
    __slots__ = ("name", "impl", "min_args", "max_args", "params", "returns", "category",
                 "en", "zh", "examples", "needs_state", "builder", "pure", "signature")

    def __init__(self, name, impl=None, *, min_args, max_args, params=(), returns=ty.ANY,
                 category, en, zh, examples=(), needs_state=False, pure=True, signature=None):
        self.name = name
        self.impl = impl
        self.min_args = min_args
        self.max_args = max_args          # None = any number
        self.params = tuple(params)       # kinds; the last repeats for variadic functions
        self.returns = returns            # T, or callable(list[T]) -> T
        self.category = category
        self.en = en
        self.zh = zh
        self.examples = tuple(examples)   # (source, expected value)
        self.needs_state = needs_state
        self.builder = None
        self.pure = pure                  # may be folded at compile time when args are constant
        self.signature = signature or name + "(...)"

    def param_kind(self, i: int) -> str:
        if not self.params:
            return "any"
        return self.params[i] if i < len(self.params) else self.params[-1]

    def result_type(self, arg_types) -> ty.T:
        return self.returns(arg_types) if callable(self.returns) else self.returns

    def __repr__(self):
        return f"<Function {self.signature}>"


FUNCTIONS: dict[str, Function] = {}
CATEGORIES = [("logic", "逻辑", "Logic"), ("math", "数学", "Maths"), ("text", "文本", "Text"),
              ("date", "日期", "Dates"), ("null", "空值", "Blanks"),
              ("table", "子表与关联", "Sub-tables and links"), ("hash", "摘要", "Hashes"),
              ("rule", "规则", "Rule conditions")]


def fn(name, *, aliases=(), **kw):
    def deco(impl):
        f = Function(name, impl, **kw)
        FUNCTIONS[name] = f
        for a in aliases:
            FUNCTIONS[a] = f
        return impl
    return deco


def special(name, **kw):
    FUNCTIONS[name] = Function(name, None, **kw)


def _same_as(i):
    def r(ts):
        return ts[i] if len(ts) > i else ty.ANY
    return r


def _unify_from(start, step=1):
    def r(ts):
        return ty.unify(ts[start::step])
    return r


# ---------------------------------------------------------------------------------------
# Logic
# ---------------------------------------------------------------------------------------
special("IF", min_args=2, max_args=3, params=("any",), category="logic",
        signature="IF(condition, value_if_true, [value_if_false])",
        returns=lambda ts: ty.unify(ts[1:3]),
        en="Returns the second argument when the condition holds, else the third (blank if omitted).",
        zh="条件成立时返回第二个参数，否则返回第三个（省略时为空）。",
        examples=[("IF(amount > 300, '大单', '普通')", "大单"), ("IF(amount > 1000, 'big')", None)])
special("IFS", min_args=2, max_args=None, params=("any",), category="logic",
        signature="IFS(condition1, value1, [condition2, value2, ...])",
        returns=_unify_from(1, 2),
        en="Returns the value paired with the first condition that holds; blank if none does.",
        zh="返回第一个成立条件对应的值；都不成立时为空。",
        examples=[("IFS(amount >= 1000, 'A', amount >= 300, 'B', True, 'C')", "B")])
special("AND", min_args=1, max_args=None, params=("any",), returns=ty.BOOLEAN, category="logic",
        signature="AND(a, b, ...)",
        en="True when every argument is true (stops at the first false one).",
        zh="所有参数都为真时返回真（遇到第一个假值即停止）。",
        examples=[("AND(amount > 0, status == '已付款')", True)])
special("OR", min_args=1, max_args=None, params=("any",), returns=ty.BOOLEAN, category="logic",
        signature="OR(a, b, ...)",
        en="True when at least one argument is true.",
        zh="任一参数为真时返回真。",
        examples=[("OR(channel == '抖音', channel == '天猫')", True)])


@fn("NOT", min_args=1, max_args=1, returns=ty.BOOLEAN, category="logic", signature="NOT(value)",
    en="Logical negation; a blank counts as false, so NOT(blank) is true.",
    zh="逻辑取反；空值视为假，所以 NOT(空值) 为真。",
    examples=[("NOT(status == '待付款')", True)])
def _not(v):
    return not v


special("SWITCH", min_args=3, max_args=None, params=("any",), category="logic",
        signature="SWITCH(value, case1, result1, [case2, result2, ...], [default])",
        returns=lambda ts: ty.unify(ts[2::2] + ([ts[-1]] if len(ts) % 2 == 0 else [])),
        en="Compares the value with each case and returns the matching result, else the default.",
        zh="把值依次与各个情形比较，返回匹配的结果；都不匹配时返回默认值。",
        examples=[("SWITCH(channel, '抖音', 'DY', '天猫', 'TM', '其他')", "DY")])

# ---------------------------------------------------------------------------------------
# Maths
# ---------------------------------------------------------------------------------------


def _flat_values(args, s: State | None = None):
    for a in args:
        if type(a) is list or type(a) is tuple:
            if s is not None:
                charge(s, len(a))
            for x in a:
                yield x
        else:
            yield a


def _numbers(args, name, s):
    out = []
    for x in _flat_values(args, s):
        if x is None or (type(x) is str and not x.strip()):
            continue
        n = to_number(x, name)
        if n is not None:
            out.append(n)
    return out


def _sum(nums):
    total = 0
    for n in nums:
        total, n = num_pair(total, n)
        total = total + n
    return total


@fn("SUM", min_args=1, max_args=None, params=("numbers",), returns=ty.NUMBER, category="math",
    needs_state=True, signature="SUM(number_or_list, ...)",
    en="Adds numbers; lists (e.g. a sub-table column) are added up, blanks are skipped.",
    zh="求和；列表（如子表的一列）会逐项相加，空值忽略。",
    examples=[("SUM(items.subtotal)", Decimal("398.00")), ("SUM(1, 2, 3)", 6)])
def _fn_sum(s, *args):
    return _sum(_numbers(args, "SUM", s))


@fn("ROUND", min_args=1, max_args=2, params=("number", "number"), returns=ty.NUMBER,
    category="math", signature="ROUND(number, [digits])",
    en="Rounds half away from zero to the given number of decimal places (default 0).",
    zh="四舍五入到指定的小数位数（默认 0 位）。",
    examples=[("ROUND(2.345, 2)", 2.35), ("ROUND(2.5)", 3.0), ("ROUND(1234, -2)", 1200)])
def _fn_round(x, digits=0):
    x = to_number(x, "ROUND")
    if x is None:
        return None
    return round_half_up(x, to_number(digits, "ROUND") or 0)


@fn("DISTANCE_KM", min_args=4, max_args=4, params=("number", "number", "number", "number"), returns=ty.NUMBER,
    category="math", signature="DISTANCE_KM(lat1, lng1, lat2, lng2)",
    en="Great-circle distance in kilometres between two points (latitude/longitude in degrees); blank if any is blank.",
    zh="两点间的球面距离（公里），参数为纬度/经度（度）；任一为空则为空。",
    examples=[("DISTANCE_KM(30.27, 120.15, 30.25, 120.17)", 2.9)])
def _fn_distance_km(lat1, lng1, lat2, lng2):
    import math

    vals = [to_number(v, "DISTANCE_KM") for v in (lat1, lng1, lat2, lng2)]
    if any(v is None for v in vals):
        return None
    a1, o1, a2, o2 = (math.radians(float(v)) for v in vals)
    h = math.sin((a2 - a1) / 2) ** 2 + math.cos(a1) * math.cos(a2) * math.sin((o2 - o1) / 2) ** 2
    return round(2 * 6371.0088 * math.asin(min(1.0, math.sqrt(h))), 1)


def _minmax(name, pick):
    def impl(s, *args):
        vals = [x for x in _flat_values(args, s) if not is_blank(x)]
        if not vals:
            return None
        vals = [to_number(v, name) if type(v) is str else v for v in vals]
        try:
            return pick(vals)
        except TypeError:
            raise type_error(f"{name}: the values cannot be compared with each other.",
                             f"{name}：这些值之间无法比较大小。") from None
    return impl


fn("MIN", min_args=1, max_args=None, params=("any",), returns=lambda ts: ty.unify(
    [t.elem if t.kind == "list" and t.elem else t for t in ts]), category="math", needs_state=True,
   signature="MIN(value_or_list, ...)",
   en="The smallest value (numbers or dates); blanks are skipped.",
   zh="最小值（数字或日期），忽略空值。",
   examples=[("MIN(items.qty)", 1), ("MIN(5, 3, 8)", 3)])(_minmax("MIN", min))
fn("MAX", min_args=1, max_args=None, params=("any",), returns=lambda ts: ty.unify(
    [t.elem if t.kind == "list" and t.elem else t for t in ts]), category="math", needs_state=True,
   signature="MAX(value_or_list, ...)",
   en="The largest value (numbers or dates); blanks are skipped.",
   zh="最大值（数字或日期），忽略空值。",
   examples=[("MAX(items.subtotal)", Decimal("199.00")), ("MAX(5, 3, 8)", 8)])(_minmax("MAX", max))


@fn("ABS", min_args=1, max_args=1, params=("number",), returns=ty.NUMBER, category="math",
    signature="ABS(number)", en="Absolute value.", zh="绝对值。", examples=[("ABS(-5)", 5)])
def _fn_abs(x):
    x = to_number(x, "ABS")
    return None if x is None else abs(x)


@fn("CEILING", min_args=1, max_args=2, params=("number", "number"), returns=ty.NUMBER,
    category="math", signature="CEILING(number, [significance])",
    en="Rounds up to the next multiple of significance (default 1).",
    zh="向上舍入到 significance 的倍数（默认 1）。",
    examples=[("CEILING(2.1)", 3), ("CEILING(21, 5)", 25)])
def _fn_ceiling(x, sig=1):
    x = to_number(x, "CEILING")
    return None if x is None else round_to_multiple(x, to_number(sig, "CEILING"), "ceiling")


@fn("FLOOR", min_args=1, max_args=2, params=("number", "number"), returns=ty.NUMBER,
    category="math", signature="FLOOR(number, [significance])",
    en="Rounds down to the previous multiple of significance (default 1).",
    zh="向下舍入到 significance 的倍数（默认 1）。",
    examples=[("FLOOR(2.9)", 2), ("FLOOR(23, 5)", 20)])
def _fn_floor(x, sig=1):
    x = to_number(x, "FLOOR")
    return None if x is None else round_to_multiple(x, to_number(sig, "FLOOR"), "floor")


@fn("AVERAGE", aliases=("AVG",), min_args=1, max_args=None, params=("numbers",),
    returns=ty.NUMBER, category="math", needs_state=True, signature="AVERAGE(number_or_list, ...)  (alias AVG)",
    en="The arithmetic mean; blanks are skipped; blank when there is nothing to average.",
    zh="算术平均值，忽略空值；没有可平均的值时为空。",
    examples=[("ROUND(AVG(items.qty), 2)", 1.33), ("AVERAGE(1, 2, 3, 4)", 2.5)])
def _fn_avg(s, *args):
    nums = _numbers(args, "AVERAGE", s)
    if not nums:
        return None
    return _sum(nums) / len(nums)


@fn("COUNT", min_args=1, max_args=None, params=("any",), returns=ty.NUMBER, category="math",
    needs_state=True, signature="COUNT(value_or_list, ...)",
    en="Counts non-blank values; a sub-table or list counts its non-blank items (COUNT(items) = rows).",
    zh="统计非空值的个数；子表或列表按其中非空的项计数（COUNT(items) 即行数）。",
    examples=[("COUNT(items)", 3), ("COUNT(tags)", 2)])
def _fn_count(s, *args):
    return sum(1 for x in _flat_values(args, s) if not is_blank(x))

# ---------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------


@fn("CONCAT", min_args=1, max_args=None, params=("any",), returns=ty.TEXT, category="text",
    needs_state=True, signature="CONCAT(value, ...)",
    en="Joins values as text; blanks become empty text, lists are joined with ', '.",
    zh="把各个值拼接成文本；空值按空文本处理，列表用“, ”连接。",
    examples=[("CONCAT('订单', order_no, '：', amount)", "订单SO-1001：399.00"),
              ("CONCAT(channel, ':', 'ext-9')", "抖音:ext-9")])
def _fn_concat(s, *args):
    total = 0
    parts = []
    for a in args:
        t = to_text(a, s)
        total += len(t)
        if total > MAX_STRING:
            check_str(" " * total)
        parts.append(t)
    return "".join(parts)


@fn("JOIN", min_args=1, max_args=2, params=("list", "text"), returns=ty.TEXT, category="text",
    needs_state=True, signature="JOIN(list, [separator])",
    en="Joins the non-blank items of a list with a separator (default ', ').",
    zh="用分隔符（默认“, ”）连接列表中的非空项。",
    examples=[("JOIN(tags, ' / ')", "加急 / 新客")])
def _fn_join(s, lst, sep=", "):
    if lst is None:
        return ""
    if type(lst) is not list:
        lst = [lst]
    charge(s, len(lst))
    return check_str(to_text(sep, s).join(to_text(x, s) for x in lst if not is_blank(x)))


def _count_arg(n, name):
    n = to_number(n, name)
    if n is None:
        return 0
    if n < 0:
        raise type_error(f"{name}: the number of characters cannot be negative.",
                         f"{name}：字符数不能为负数。")
    return int(n)


@fn("LEFT", min_args=1, max_args=2, params=("text", "number"), returns=ty.TEXT, category="text",
    needs_state=True, signature="LEFT(text, [count])",
    en="The first count characters (default 1).", zh="取左边 count 个字符（默认 1 个）。",
    examples=[("LEFT('浙江省杭州市', 3)", "浙江省"), ("LEFT(order_no, 2)", "SO")])
def _fn_left(s, text, n=1):
    return to_text(text, s)[:_count_arg(n, "LEFT")]


@fn("RIGHT", min_args=1, max_args=2, params=("text", "number"), returns=ty.TEXT, category="text",
    needs_state=True, signature="RIGHT(text, [count])",
    en="The last count characters (default 1).", zh="取右边 count 个字符（默认 1 个）。",
    examples=[("RIGHT('13812345678', 4)", "5678")])
def _fn_right(s, text, n=1):
    n = _count_arg(n, "RIGHT")
    return to_text(text, s)[-n:] if n else ""


@fn("MID", min_args=3, max_args=3, params=("text", "number", "number"), returns=ty.TEXT,
    category="text", needs_state=True, signature="MID(text, start, count)",
    en="count characters starting at position start (the first character is 1).",
    zh="从第 start 个字符（从 1 开始）起取 count 个字符。",
    examples=[("MID('浙江省杭州市西湖区', 4, 3)", "杭州市")])
def _fn_mid(s, text, start, n):
    start = to_number(start, "MID")
    if start is None or start < 1:
        raise type_error("MID: start must be 1 or more.", "MID：起始位置必须大于等于 1。")
    start = int(start) - 1
    return to_text(text, s)[start:start + _count_arg(n, "MID")]


@fn("LEN", min_args=1, max_args=1, params=("any",), returns=ty.NUMBER, category="text",
    needs_state=True, signature="LEN(text_or_list)",
    en="Number of characters of a text (a Chinese character counts as 1), or items of a list.",
    zh="文本的字符数（一个汉字算 1 个），或列表的项数。",
    examples=[("LEN('欧阳娜娜')", 4), ("LEN(tags)", 2)])
def _fn_len(s, v):
    if type(v) is list:
        return len(v)
    return len(to_text(v, s))


@fn("UPPER", min_args=1, max_args=1, params=("text",), returns=ty.TEXT, category="text",
    needs_state=True, signature="UPPER(text)", en="Upper-case.", zh="转为大写。",
    examples=[("UPPER('sku-a1')", "SKU-A1")])
def _fn_upper(s, v):
    return to_text(v, s).upper()


@fn("LOWER", min_args=1, max_args=1, params=("text",), returns=ty.TEXT, category="text",
    needs_state=True, signature="LOWER(text)", en="Lower-case.", zh="转为小写。",
    examples=[("LOWER('ABC@Example.com')", "abc@example.com")])
def _fn_lower(s, v):
    return to_text(v, s).lower()


_SPACES = re.compile(r"[ \t\u3000]+")


@fn("TRIM", min_args=1, max_args=1, params=("text",), returns=ty.TEXT, category="text",
    needs_state=True, signature="TRIM(text)",
    en="Removes leading/trailing spaces (also full-width) and collapses runs of spaces.",
    zh="去掉首尾空格（含全角空格），并把连续空格合并为一个。",
    examples=[("TRIM('  张三   丰 ')", "张三 丰")])
def _fn_trim(s, v):
    return _SPACES.sub(" ", to_text(v, s)).strip(" \t\r\n\u3000")


@fn("CONTAINS", min_args=2, max_args=2, params=("any", "any"), returns=ty.BOOLEAN,
    category="text", needs_state=True, signature="CONTAINS(text_or_list, value)",
    en="True when the text contains the value, or the list has it as an item.",
    zh="文本中包含该值，或列表中有该项时为真。",
    examples=[("CONTAINS(address_text, '杭州')", True), ("CONTAINS(tags, '加急')", True)])
def _fn_contains(s, hay, needle):
    if type(hay) is list:
        charge(s, len(hay))
    return contains(hay, needle)


@fn("REPLACE", min_args=3, max_args=3, params=("text", "text", "text"), returns=ty.TEXT,
    category="text", needs_state=True, signature="REPLACE(text, old, new)",
    en="Replaces every occurrence of old with new (like Excel's SUBSTITUTE).",
    zh="把文本中所有的 old 替换为 new（相当于 Excel 的 SUBSTITUTE）。",
    examples=[("REPLACE('2024/06/01', '/', '-')", "2024-06-01")])
def _fn_replace(s, text, old, new):
    text, old, new = to_text(text, s), to_text(old, s), to_text(new, s)
    if not old:
        return text
    n = text.count(old)
    if len(text) + n * (len(new) - len(old)) > MAX_STRING:
        raise limit_error(f"REPLACE: the result would be too long (over {MAX_STRING:,} characters).",
                          f"REPLACE：结果将会过长（超过 {MAX_STRING:,} 个字符）。")
    return text.replace(old, new)


_MOBILE = re.compile(r"^(\+?86)?(1\d{10})$")


@fn("MASK_PHONE", min_args=1, max_args=1, params=("text",), returns=ty.TEXT, category="text",
    needs_state=True, signature="MASK_PHONE(phone)",
    en="Masks the middle of a phone number: 13812345678 -> 138****5678.",
    zh="隐藏手机号中间四位：13812345678 → 138****5678。",
    examples=[("MASK_PHONE('13812345678')", "138****5678"), ("MASK_PHONE(phone)", "139****0000")])
def _fn_mask_phone(s, v):
    return mask_phone(to_text(v, s))


def mask_phone(text: str) -> str:
    t = re.sub(r"[\s\-]", "", text)
    m = _MOBILE.match(t)
    if m:
        prefix, num = m.group(1) or "", m.group(2)
        return prefix + num[:3] + "****" + num[-4:]
    n = len(t)
    if n >= 8:
        return t[:3] + "*" * (n - 7) + t[-4:]
    if n >= 5:
        return t[:2] + "*" * (n - 4) + t[-2:]
    return "*" * n


@fn("MASK_NAME", min_args=1, max_args=1, params=("text",), returns=ty.TEXT, category="text",
    needs_state=True, signature="MASK_NAME(name)",
    en="Keeps the first character of a name and masks the rest: 张三 -> 张*, 欧阳娜娜 -> 欧***.",
    zh="保留姓名的第一个字，其余用 * 代替：张三 → 张*，欧阳娜娜 → 欧***。",
    examples=[("MASK_NAME('张三')", "张*"), ("MASK_NAME('欧阳娜娜')", "欧***")])
def _fn_mask_name(s, v):
    return mask_name(to_text(v, s))


def mask_name(text: str) -> str:
    t = text.strip()
    if len(t) <= 1:
        return "*" if t else ""
    return t[0] + "*" * (len(t) - 1)


_DATE_TOKENS = re.compile(r"YYYY|YY|MM|M|DD|D|HH|H|mm|ss")


def _format_date(v, fmt: str, s: State) -> str:
    if type(v) is _dt.datetime:
        v = as_datetime(v, s).astimezone(state_tz(s))
    parts = {"YYYY": lambda d: f"{d.year:04d}", "YY": lambda d: f"{d.year % 100:02d}",
             "MM": lambda d: f"{d.month:02d}", "M": lambda d: str(d.month),
             "DD": lambda d: f"{d.day:02d}", "D": lambda d: str(d.day),
             "HH": lambda d: f"{getattr(d, 'hour', 0):02d}", "H": lambda d: str(getattr(d, "hour", 0)),
             "mm": lambda d: f"{getattr(d, 'minute', 0):02d}", "ss": lambda d: f"{getattr(d, 'second', 0):02d}"}
    return _DATE_TOKENS.sub(lambda m: parts[m.group(0)](v), fmt)


def _format_number(n, fmt: str) -> str:
    pct = fmt.endswith("%")
    core = fmt[:-1] if pct else fmt
    d = Decimal(repr(n)) if type(n) is float else Decimal(n)
    if pct:
        d = d * 100
    decimals = min(len(core.split(".", 1)[1]) if "." in core else 0, 20)
    d = round_half_up(d, decimals)
    text = f"{d:,.{decimals}f}" if "," in core else f"{d:.{decimals}f}"
    prefix = core[: len(core) - len(core.lstrip("¥￥$"))]
    return prefix + text + ("%" if pct else "")


@fn("TEXT", min_args=1, max_args=2, params=("any", "text"), returns=ty.TEXT, category="text",
    needs_state=True, signature="TEXT(value, [format])",
    en="Converts to text. Number formats: '0.00', '#,##0.00', '0%', '¥#,##0.00'; "
       "date formats: 'YYYY-MM-DD', 'YYYY年M月D日', 'HH:mm' (tenant timezone).",
    zh="转换为文本。数字格式：'0.00'、'#,##0.00'、'0%'、'¥#,##0.00'；"
       "日期格式：'YYYY-MM-DD'、'YYYY年M月D日'、'HH:mm'（按租户时区）。",
    examples=[("TEXT(1234.5, '#,##0.00')", "1,234.50"), ("TEXT(0.256, '0.0%')", "25.6%"),
              ("TEXT(created, 'YYYY年M月D日 HH:mm')", "2024年6月1日 18:30")])
def _fn_text(s, v, fmt=None):
    if fmt is None or v is None:
        return to_text(v, s)
    fmt = to_text(fmt, s)
    if len(fmt) > 100:
        raise limit_error("TEXT: the format is too long.", "TEXT：格式太长。")
    if type(v) in (_dt.date, _dt.datetime):
        return _format_date(v, fmt, s)
    if type(v) in (int, float, Decimal) and type(v) is not bool:
        return _format_number(v, fmt)
    if type(v) is str:
        n = parse_number(v)
        if n is not None:
            return _format_number(n, fmt)
    return to_text(v, s)


@fn("VALUE", min_args=1, max_args=1, params=("any",), returns=ty.NUMBER, category="text",
    signature="VALUE(text)",
    en="Converts text to a number ('1,234.50', '¥12', '15%'); blank when it is not a number.",
    zh="把文本转换为数字（'1,234.50'、'¥12'、'15%'）；不是数字时为空。",
    examples=[("VALUE('1,234.50')", Decimal("1234.50")), ("VALUE('abc')", None)])
def _fn_value(v):
    t = type(v)
    if t is int or t is float or t is Decimal:
        return v
    if t is bool:
        return int(v)
    if t is str:
        return parse_number(v)
    return None

# ---------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------


@fn("NOW", min_args=0, max_args=0, returns=ty.DATETIME, category="date", needs_state=True,
    pure=False, signature="NOW()",
    en="The current date and time (the same instant throughout one evaluation).",
    zh="当前日期时间（同一次计算中保持不变）。",
    examples=[("NOW()", _dt.datetime(2024, 6, 2, 2, 0, tzinfo=UTC))])
def _fn_now(s):
    return state_now(s)


@fn("TODAY", min_args=0, max_args=0, returns=ty.DATE, category="date", needs_state=True,
    pure=False, signature="TODAY()",
    en="Today's date in the tenant timezone.", zh="租户时区下的今天日期。",
    examples=[("TODAY()", _dt.date(2024, 6, 2))])
def _fn_today(s):
    return state_now(s).astimezone(state_tz(s)).date()


@fn("DATE", min_args=1, max_args=3, params=("any", "number", "number"), returns=ty.DATE,
    category="date", needs_state=True, signature="DATE(text) or DATE(year, month, day)",
    en="A date from ISO text ('2024-06-01') or from year, month, day.",
    zh="由 ISO 文本（'2024-06-01'）或年、月、日得到日期。",
    examples=[("DATE('2024-06-01')", _dt.date(2024, 6, 1)), ("DATE(2024, 2, 29)", _dt.date(2024, 2, 29))])
def _fn_date(s, y, m=None, d=None):
    if m is None and d is None:
        v = to_date_value(y, s, "DATE")
        return None if v is None else local_date(v, s)
    y, m, d = (to_number(x, "DATE") for x in (y, m, d if d is not None else 1))
    if y is None or m is None or d is None:
        return None
    try:
        return _dt.date(int(y), int(m), int(d))
    except ValueError:
        raise type_error(f"DATE: {int(y)}-{int(m)}-{int(d)} is not a valid date.",
                         f"DATE：{int(y)}-{int(m)}-{int(d)} 不是有效日期。") from None


_UNITS = {"day": "days", "days": "days", "d": "days", "天": "days", "日": "days",
          "hour": "hours", "hours": "hours", "h": "hours", "小时": "hours",
          "minute": "minutes", "minutes": "minutes", "m": "minutes", "min": "minutes", "分钟": "minutes",
          "second": "seconds", "seconds": "seconds", "s": "seconds", "秒": "seconds",
          "week": "weeks", "weeks": "weeks", "周": "weeks",
          "month": "months", "months": "months", "月": "months",
          "year": "years", "years": "years", "年": "years"}


def _unit(u, name):
    key = u.strip().lower() if type(u) is str else None
    if key not in _UNITS:
        raise type_error(f"{name}: unknown unit {short_text(u)}; use \"days\", \"hours\", \"minutes\" or \"months\".",
                         f"{name}：未知的单位 {short_text(u)}；请使用 \"days\"、\"hours\"、\"minutes\" 或 \"months\"。")
    return _UNITS[key]


def short_text(u):
    return repr(u)[:30]


@fn("DATEADD", min_args=2, max_args=3, params=("date", "number", "text"), returns=lambda ts: ts[0]
    if ts[0].kind in ("date", "datetime") else ty.ANY, category="date", needs_state=True,
    signature='DATEADD(date, n, [unit])  unit: "days" (default) | "hours" | "minutes" | "weeks" | "months" | "years"',
    en="Adds n units to a date or datetime (months keep the day where possible: Jan 31 + 1 month = Feb 29).",
    zh="在日期或日期时间上加 n 个单位（加月份时尽量保持日期：1 月 31 日加 1 个月 = 2 月 29 日）。",
    examples=[("DATEADD(DATE('2024-01-31'), 1, 'months')", _dt.date(2024, 2, 29)),
              ("DATEADD(created, 2, 'hours')", _dt.datetime(2024, 6, 1, 12, 30, tzinfo=UTC))])
def _fn_dateadd(s, d, n, unit="days"):
    d = to_date_value(d, s, "DATEADD")
    n = to_number(n, "DATEADD")
    if d is None or n is None:
        return None
    unit = _unit(unit, "DATEADD")
    if abs(n) > 3_000_000:
        raise limit_error("DATEADD: the amount is too large.", "DATEADD：数量太大。")
    try:
        if unit in ("months", "years"):
            months = int(n) * (12 if unit == "years" else 1)
            if type(d) is _dt.date:
                return add_months(d, months)
            local = d.astimezone(state_tz(s))
            moved = add_months(local.date(), months)
            return _dt.datetime.combine(moved, local.timetz()).astimezone(UTC)
        if unit in ("days", "weeks"):
            days = n * (7 if unit == "weeks" else 1)
            if type(d) is _dt.date and days == int(days):
                return d + _dt.timedelta(days=int(days))
            return as_datetime(d, s) + _dt.timedelta(days=float(days))
        secs = float(n) * {"hours": 3600, "minutes": 60, "seconds": 1}[unit]
        return as_datetime(d, s) + _dt.timedelta(seconds=secs)
    except OverflowError:
        raise limit_error("DATEADD: the date is out of range.", "DATEADD：日期超出范围。") from None


def _months_between(a: _dt.date, b: _dt.date) -> int:
    sign = 1
    if b < a:
        a, b, sign = b, a, -1
    months = (b.year - a.year) * 12 + b.month - a.month
    if b.day < a.day:
        months -= 1
    return sign * months


def _trunc(x: float) -> int:
    return int(x)


@fn("DATEDIF", min_args=2, max_args=3, params=("date", "date", "text"), returns=ty.NUMBER,
    category="date", needs_state=True,
    signature='DATEDIF(start, end, [unit])  unit: "days" (default) | "hours" | "minutes" | "months" | "years"',
    en="Whole units from start to end (negative if end is earlier). Days, months and years count "
       "calendar days in the tenant timezone; hours and minutes count elapsed time.",
    zh="从 start 到 end 的完整单位数（end 更早时为负数）。天、月、年按租户时区的日历计算；小时、分钟按实际经过的时间计算。",
    examples=[("DATEDIF(DATE('2024-06-01'), DATE('2024-06-08'))", 7),
              ("DATEDIF(created, NOW(), 'hours')", 15)])
def _fn_datedif(s, a, b, unit="days"):
    a, b = to_date_value(a, s, "DATEDIF"), to_date_value(b, s, "DATEDIF")
    if a is None or b is None:
        return None
    unit = _unit(unit, "DATEDIF")
    if unit == "days":
        return (local_date(b, s) - local_date(a, s)).days
    if unit == "weeks":
        return _trunc((local_date(b, s) - local_date(a, s)).days / 7)
    if unit == "months":
        return _months_between(local_date(a, s), local_date(b, s))
    if unit == "years":
        return _trunc(_months_between(local_date(a, s), local_date(b, s)) / 12)
    secs = (as_datetime(b, s) - as_datetime(a, s)).total_seconds()
    return _trunc(secs / {"hours": 3600, "minutes": 60, "seconds": 1}[unit])


def _between(div, name):
    def impl(s, a, b):
        a, b = to_date_value(a, s, name), to_date_value(b, s, name)
        if a is None or b is None:
            return None
        return (as_datetime(b, s) - as_datetime(a, s)).total_seconds() / div
    return impl


fn("HOURS_BETWEEN", min_args=2, max_args=2, params=("date", "date"), returns=ty.NUMBER,
   category="date", needs_state=True, signature="HOURS_BETWEEN(start, end)",
   en="Elapsed hours from start to end, with fractions (e.g. 1.5).",
   zh="从 start 到 end 经过的小时数，含小数（如 1.5）。",
   examples=[("HOURS_BETWEEN(created, NOW())", 15.5)])(_between(3600, "HOURS_BETWEEN"))
fn("MINUTES_BETWEEN", min_args=2, max_args=2, params=("date", "date"), returns=ty.NUMBER,
   category="date", needs_state=True, signature="MINUTES_BETWEEN(start, end)",
   en="Elapsed minutes from start to end, with fractions.",
   zh="从 start 到 end 经过的分钟数，含小数。",
   examples=[("MINUTES_BETWEEN(created, NOW())", 930.0)])(_between(60, "MINUTES_BETWEEN"))


def _date_part(name, part, en, zh, example):
    def impl(s, v):
        v = to_date_value(v, s, name)
        if v is None:
            return None
        if type(v) is _dt.datetime:
            v = as_datetime(v, s).astimezone(state_tz(s))
        return part(v)
    fn(name, min_args=1, max_args=1, params=("date",), returns=ty.NUMBER, category="date",
       needs_state=True, signature=f"{name}(date)", en=en, zh=zh, examples=[example])(impl)


_date_part("WEEKDAY", lambda d: d.isoweekday(),
           "Day of the week, Monday = 1 ... Sunday = 7 (tenant timezone).",
           "星期几：星期一 = 1 …… 星期日 = 7（按租户时区）。", ("WEEKDAY(DATE('2024-06-01'))", 6))
_date_part("YEAR", lambda d: d.year, "The year (tenant timezone).", "年份（按租户时区）。",
           ("YEAR(created)", 2024))
_date_part("MONTH", lambda d: d.month, "The month, 1-12 (tenant timezone).", "月份 1-12（按租户时区）。",
           ("MONTH(created)", 6))
_date_part("DAY", lambda d: d.day, "The day of the month (tenant timezone).", "日（按租户时区）。",
           ("DAY(created)", 1))
_date_part("HOUR", lambda d: getattr(d, "hour", 0), "The hour, 0-23 (tenant timezone).",
           "小时 0-23（按租户时区）。", ("HOUR(created)", 18))
_date_part("MINUTE", lambda d: getattr(d, "minute", 0), "The minute, 0-59.", "分钟 0-59。",
           ("MINUTE(created)", 30))

# ---------------------------------------------------------------------------------------
# Blanks
# ---------------------------------------------------------------------------------------


@fn("ISBLANK", min_args=1, max_args=1, params=("any",), returns=ty.BOOLEAN, category="null",
    signature="ISBLANK(value)",
    en="True for a blank: empty, empty text (or only spaces) or an empty list.",
    zh="值为空时为真：没有值、空文本（或只有空格）、空列表。",
    examples=[("ISBLANK(remark)", True), ("ISBLANK(order_no)", False)])
def _fn_isblank(v):
    return is_blank(v)


special("COALESCE", min_args=1, max_args=None, params=("any",), category="null",
        returns=lambda ts: ty.unify(ts), signature="COALESCE(value1, value2, ...)",
        en="The first argument that is not blank.", zh="返回第一个非空的参数。",
        examples=[("COALESCE(remark, '无备注')", "无备注")])

# ---------------------------------------------------------------------------------------
# Sub-tables and links
# ---------------------------------------------------------------------------------------
special("ANY", min_args=2, max_args=2, params=("list", "text"), returns=ty.BOOLEAN, category="table",
        signature='ANY(sub_table, "condition")',
        en="True when at least one row meets the condition; the condition (in quotes) uses the row's fields.",
        zh="至少有一行满足条件时为真；条件写在引号中，使用该行的字段。",
        examples=[("ANY(items, \"category == '连体衣'\")", True)])
special("ALL", min_args=2, max_args=2, params=("list", "text"), returns=ty.BOOLEAN, category="table",
        signature='ALL(sub_table, "condition")',
        en="True when every row meets the condition (true for an empty sub-table).",
        zh="每一行都满足条件时为真（子表为空时也为真）。",
        examples=[("ALL(items, \"qty > 0\")", True)])
special("FILTER", min_args=2, max_args=2, params=("list", "text"), returns=_same_as(0),
        category="table", signature='FILTER(sub_table, "condition")',
        en="The rows that meet the condition; combine with COUNT, SUM(FILTER(...).field) etc.",
        zh="满足条件的行；可与 COUNT、SUM(FILTER(...).字段) 等组合使用。",
        examples=[("COUNT(FILTER(items, \"is_gift\"))", 1),
                  ("SUM(FILTER(items, \"not is_gift\").subtotal)", Decimal("398.00"))])

# ---------------------------------------------------------------------------------------
# Hashes
# ---------------------------------------------------------------------------------------


@fn("MD5", min_args=1, max_args=1, params=("any",), returns=ty.TEXT, category="hash",
    needs_state=True, signature="MD5(text)",
    en="MD5 of the text (UTF-8) as 32 lowercase hex digits.", zh="文本（UTF-8）的 MD5，32 位小写十六进制。",
    examples=[("MD5('abc')", "900150983cd24fb0d6963f7d28e17f72")])
def _fn_md5(s, v):
    return hashlib.md5(to_text(v, s).encode("utf-8")).hexdigest()


@fn("SHA256", min_args=1, max_args=1, params=("any",), returns=ty.TEXT, category="hash",
    needs_state=True, signature="SHA256(text)",
    en="SHA-256 of the text (UTF-8) as 64 lowercase hex digits, e.g. for global ids.",
    zh="文本（UTF-8）的 SHA-256，64 位小写十六进制，例如用于生成全局编号。",
    examples=[("LEFT(SHA256(CONCAT(channel, ':', 'ext-9')), 12)", "0dc362463f0a")])
def _fn_sha256(s, v):
    return hashlib.sha256(to_text(v, s).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------
# Rule conditions
# ---------------------------------------------------------------------------------------
special("CHANGED", min_args=1, max_args=1, params=("text",), returns=ty.BOOLEAN, category="rule",
        pure=False, signature='changed("field")',
        en="In a rule condition: true when the write changed the field (for a new record: when it has a value).",
        zh="用于规则条件：本次写入修改了该字段时为真（新建记录时：该字段有值即为真）。",
        examples=[("changed('status')", True)])
special("PREVIOUS", min_args=1, max_args=1, params=("text",), returns=ty.ANY, category="rule",
        pure=False, signature='previous("field")',
        en="In a rule condition: the field's value before the write (blank for a new record).",
        zh="用于规则条件：该字段在本次写入之前的值（新建记录时为空）。",
        examples=[("previous('status')", "待付款")])


def result_of_field(name, schema: Schema):
    return ty.of_field(schema[name])


# ---------------------------------------------------------------------------------------
# The sample used by every example above (docs and tests)
# ---------------------------------------------------------------------------------------
EXAMPLE_SCHEMA = Schema({
    "order_no": FieldInfo("text", label="订单编号"),
    "amount": FieldInfo("currency", label="金额"),
    "status": FieldInfo("single_select", options=["待付款", "已付款", "已发货", "已签收"], label="状态"),
    "channel": FieldInfo("single_select", options=["抖音", "天猫", "京东", "微信"], label="渠道"),
    "created": FieldInfo("datetime", label="下单时间"),
    "phone": FieldInfo("phone", label="手机号"),
    "remark": FieldInfo("long_text", label="备注"),
    "address_text": FieldInfo("text", label="收货地址"),
    "tags": FieldInfo("multi_select", options=["加急", "新客", "大客户"], label="标签"),
    "items": FieldInfo("sub_table", label="商品明细", schema=Schema({
        "sku": FieldInfo("text"), "qty": FieldInfo("number"), "subtotal": FieldInfo("currency"),
        "category": FieldInfo("text"), "is_gift": FieldInfo("boolean")})),
    "customer": FieldInfo("link", label="客户", schema=Schema({
        "name": FieldInfo("text"), "level": FieldInfo("single_select", options=["普通", "VIP"])})),
})
EXAMPLE_RECORD = {
    "order_no": "SO-1001", "amount": Decimal("399.00"), "status": "已付款", "channel": "抖音",
    "created": _dt.datetime(2024, 6, 1, 10, 30, tzinfo=UTC),   # 18:30 in Asia/Shanghai
    "phone": "13912340000", "remark": None, "address_text": "浙江省杭州市西湖区",
    "tags": ["加急", "新客"],
    "items": [
        {"sku": "A1", "qty": 2, "subtotal": Decimal("199.00"), "category": "连体衣", "is_gift": False},
        {"sku": "B2", "qty": 1, "subtotal": Decimal("199.00"), "category": "袜子", "is_gift": False},
        {"sku": "G1", "qty": 1, "subtotal": None, "category": "赠品", "is_gift": True},
    ],
    "customer": {"name": "张三", "level": "VIP"},
}
EXAMPLE_NOW = _dt.datetime(2024, 6, 2, 2, 0, tzinfo=UTC)          # 10:00 on 2 June in Shanghai
EXAMPLE_PREVIOUS = dict(EXAMPLE_RECORD, status="待付款")
