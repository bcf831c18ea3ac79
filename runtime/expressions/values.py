"""Runtime semantics shared by operators and functions: blanks, numbers, text, dates, limits.

Blank semantics (documented in docs/expressions.md):

* a value is *blank* when it is ``None``, ``""`` (or only whitespace) or an empty list;
* arithmetic treats a blank as 0 (``None + 1 == 1``), or as ``""`` next to text;
* dividing by zero (or by a blank) gives blank (``None``), never an error;
* ``==`` / ``!=`` treat all blanks as equal (``status == ''`` is true when status is empty);
* ordering comparisons (``<``, ``>=`` ...) with a blank, or between values that cannot be
  ordered (text vs number), are false -- never a TypeError;
* ``Decimal`` and ``float`` mix: the float is converted exactly as printed (``0.1`` ->
  ``Decimal("0.1")``) and the result is a Decimal.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import time
from decimal import Decimal, InvalidOperation, ROUND_HALF_UP, ROUND_CEILING, ROUND_FLOOR
from zoneinfo import ZoneInfo

from .errors import ExpressionError, limit_error, type_error

UTC = _dt.timezone.utc

# ---------------------------------------------------------------------------------------
# Limits (module constants so tests and docs can refer to them)
# ---------------------------------------------------------------------------------------
MAX_SOURCE_LENGTH = 4000      # characters of source text
MAX_NODES = 1000              # AST nodes per expression (sub-expressions included)
MAX_DEPTH = 50                # AST nesting depth
MAX_BRACKET_DEPTH = 40        # nested ( [ before the parser even runs
MAX_SUB_DEPTH = 3             # ANY(items, "ANY(...)") nesting of sub-expressions
MAX_STRING = 100_000          # characters in any text value an expression builds
MAX_LIST = 10_000             # items in any list an expression builds
MAX_INT_BITS = 4096           # integers an expression builds by * and ** (~1233 digits)
MAX_EXPONENT = 10_000         # |exponent| in x ** y
DEFAULT_MAX_STEPS = 1_000_000  # work units (rows visited, list items touched) per evaluation
DEFAULT_TIMEOUT = 1.0         # seconds per evaluation (checked while doing counted work)

NUMBER_TYPES = (int, float, Decimal)


class EvalContext:
    """Everything an evaluation may need besides the record.

    ``now``      aware datetime (UTC) used by NOW()/TODAY(); defaults to the wall clock,
                 read once per evaluation.
    ``tz``       tenant timezone name for TODAY(), YEAR() of datetimes, date text, etc.
    ``previous`` the record's values before the change (rule conditions); ``None`` for a
                 newly created record.
    ``changed_fields`` names of fields changed by the write, when the caller knows them.
    ``max_steps`` / ``timeout`` the per-evaluation work budget.
    """

    __slots__ = ("now", "tz", "previous", "changed_fields", "max_steps", "timeout", "_tzinfo")

    def __init__(self, now: _dt.datetime | None = None, tz: str = "Asia/Shanghai",
                 previous: dict | None = None, changed_fields=None,
                 max_steps: int = DEFAULT_MAX_STEPS, timeout: float = DEFAULT_TIMEOUT):
        if now is not None and now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        self.now = now
        self.tz = tz
        self.previous = previous
        self.changed_fields = set(changed_fields) if changed_fields is not None else None
        self.max_steps = max_steps
        self.timeout = timeout
        self._tzinfo = None

    @property
    def tzinfo(self):
        if self._tzinfo is None:
            try:
                self._tzinfo = ZoneInfo(self.tz or "UTC")
            except Exception:
                raise ExpressionError("eval_error", f"Unknown timezone {self.tz!r}.",
                                      f"未知的时区“{self.tz}”。") from None
        return self._tzinfo

    def __repr__(self):
        return (f"EvalContext(now={self.now!r}, tz={self.tz!r}, previous={'...' if self.previous else None}, "
                f"changed_fields={self.changed_fields!r})")


DEFAULT_CONTEXT = EvalContext()


# Per-evaluation state is a plain list -- the cheapest object to create per call:
#   [ctx, steps, next_time_check, deadline, now]
_CTX, _STEPS, _NEXT, _DEADLINE, _NOW = range(5)


def State(ctx: EvalContext) -> list:
    """A fresh per-evaluation state (context, work counter, deadline, cached 'now')."""
    return [ctx, 0, 0, None, None]


def charge(s: list, n: int = 1) -> None:
    """Count ``n`` units of work; raise a limit error when over budget or over time."""
    steps = s[1] = s[1] + n
    ctx = s[0]
    if steps > ctx.max_steps:
        raise limit_error("The expression did too much work (step limit reached).",
                          "表达式计算量过大（超出步数上限）。")
    if steps >= s[2]:
        now = time.monotonic()
        if s[3] is None:
            s[3] = now + ctx.timeout
        elif now > s[3]:
            raise limit_error("The expression took too long to evaluate.", "表达式计算超时。")
        s[2] = steps + 2000


def state_now(s: list) -> _dt.datetime:
    """NOW(): the context's time, or the wall clock read once per evaluation."""
    if s[4] is None:
        s[4] = s[0].now or _dt.datetime.now(UTC)
    return s[4]


def state_tz(s: list):
    return s[0].tzinfo


# ---------------------------------------------------------------------------------------
# Blanks and type names
# ---------------------------------------------------------------------------------------

def is_blank(v) -> bool:
    if v is None:
        return True
    t = type(v)
    if t is str:
        return not v.strip()
    if t is list or t is tuple:
        return len(v) == 0
    return False


def kind_of(v) -> str:
    t = type(v)
    if v is None:
        return "blank"
    if t is bool:
        return "boolean"
    if t is int or t is float or t is Decimal:
        return "number"
    if t is str:
        return "text"
    if t is _dt.datetime:
        return "datetime"
    if t is _dt.date:
        return "date"
    if t is list or t is tuple:
        return "list"
    if t is dict:
        return "record"
    return "unsupported"


KIND_ZH = {"blank": "空值", "boolean": "布尔值", "number": "数字", "text": "文本",
           "datetime": "日期时间", "date": "日期", "list": "列表", "record": "记录",
           "any": "任意值", "records": "记录列表", "unsupported": "不支持的值"}


def kind_zh(kind: str) -> str:
    return KIND_ZH.get(kind, kind)


def check_value(v):
    """Values from outside (records) must be plain data; anything else is refused."""
    return kind_of(v) != "unsupported"


# ---------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------

def is_number(v) -> bool:
    t = type(v)
    return t is int or t is float or t is Decimal or t is bool


def _to_decimal(v) -> Decimal:
    if type(v) is float:
        return Decimal(repr(v))
    return Decimal(v)


def parse_number(text: str):
    """'1,234.50' -> Decimal('1234.50'); '12' -> 12; '15%' -> Decimal('0.15'); junk -> None."""
    s = text.strip().replace(",", "").replace("，", "")
    for sym in ("¥", "￥", "$", "元", "RMB", "CNY"):
        s = s.replace(sym, "")
    s = s.strip()
    pct = s.endswith("%")
    if pct:
        s = s[:-1].strip()
    if not s or len(s) > 100:
        return None
    try:
        if pct:
            return Decimal(s) / 100
        if s.lstrip("+-").isdigit():
            return int(s)
        d = Decimal(s)
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite():
        return None
    return d


def to_number(v, fn: str = ""):
    """Coerce for a function argument: blank -> None, numeric text -> number, else error."""
    t = type(v)
    if t is int or t is float or t is Decimal:
        return v
    if v is None:
        return None
    if t is bool:
        return int(v)
    if t is str:
        if not v.strip():
            return None
        n = parse_number(v)
        if n is not None:
            return n
    raise type_error(f"{fn + ': ' if fn else ''}expected a number, got {kind_of(v)} {short(v)}.",
                     f"{fn + '：' if fn else ''}需要数字，但得到的是{kind_zh(kind_of(v))} {short(v)}。")


def short(v, n=30) -> str:
    try:
        s = repr(v) if not isinstance(v, str) else "'" + v + "'"
    except Exception:
        s = "?"
    return s if len(s) <= n else s[: n - 1] + "…"


def num_pair(a, b):
    """Make a and b combinable: float + Decimal -> Decimal."""
    ta, tb = type(a), type(b)
    if ta is Decimal and tb is float:
        return a, _to_decimal(b)
    if ta is float and tb is Decimal:
        return _to_decimal(a), b
    return a, b


def check_int(v):
    if type(v) is int and v.bit_length() > MAX_INT_BITS:
        raise limit_error("The number is too large.", "数字太大。")
    return v


def finite(v):
    if type(v) is float and not math.isfinite(v):
        raise limit_error("The number is too large (overflow).", "数字太大（溢出）。")
    if type(v) is Decimal and not v.is_finite():
        raise limit_error("The number is not finite.", "数字不是有限值。")
    return v


def round_half_up(x, digits: int = 0):
    """Spreadsheet rounding (2.5 -> 3, -2.5 -> -3), keeping the input's number type."""
    digits = int(digits)
    if digits > 15 or digits < -15:
        raise limit_error("ROUND: digits must be between -15 and 15.", "ROUND：小数位数须在 -15 到 15 之间。")
    q = Decimal(1).scaleb(-digits)
    t = type(x)
    if t is bool:
        x, t = int(x), int
    d = _to_decimal(x).quantize(q, rounding=ROUND_HALF_UP) if digits >= 0 else \
        (_to_decimal(x) / q).quantize(Decimal(1), rounding=ROUND_HALF_UP) * q
    if t is Decimal:
        return d
    if t is int:
        return int(d)
    return float(d)


def round_to_multiple(x, sig, mode):
    t = type(x)
    if t is bool:
        x, t = int(x), int
    if sig is None:
        sig = 1
    if sig == 0:
        return 0
    dx, ds = _to_decimal(x), abs(_to_decimal(sig))
    q = (dx / ds).quantize(Decimal(1), rounding=ROUND_CEILING if mode == "ceiling" else ROUND_FLOOR)
    d = q * ds
    if t is Decimal or type(sig) is Decimal:
        return d
    if d == d.to_integral_value():
        return int(d)
    return float(d)


# ---------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------

def fmt_number(v) -> str:
    t = type(v)
    if t is int:
        return str(v)
    if t is float:
        if v.is_integer() and abs(v) < 1e16:
            return str(int(v))
        return repr(v)
    if t is Decimal:
        return format(v, "f")
    return str(v)


def to_text(v, s: State | None = None) -> str:
    t = type(v)
    if t is str:
        return v
    if v is None:
        return ""
    if t is bool:
        return "TRUE" if v else "FALSE"
    if t is int or t is float or t is Decimal:
        return fmt_number(v)
    if t is _dt.datetime:
        tz = state_tz(s) if s is not None else UTC
        if v.tzinfo is None:
            v = v.replace(tzinfo=UTC)
        return v.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    if t is _dt.date:
        return v.isoformat()
    if t is list or t is tuple:
        out = ", ".join(to_text(x, s) for x in v)
        check_str(out)
        return out
    if t is dict:
        out = json.dumps(v, ensure_ascii=False, default=str, sort_keys=True)
        check_str(out)
        return out
    raise type_error(f"Cannot turn {kind_of(v)} into text.", f"无法把{kind_zh(kind_of(v))}转换为文本。")


def check_str(v: str) -> str:
    if len(v) > MAX_STRING:
        raise limit_error(f"The text is too long (over {MAX_STRING:,} characters).",
                          f"文本过长（超过 {MAX_STRING:,} 个字符）。")
    return v


def check_list(v: list) -> list:
    if len(v) > MAX_LIST:
        raise limit_error(f"The list is too long (over {MAX_LIST:,} items).",
                          f"列表过长（超过 {MAX_LIST:,} 项）。")
    return v


# ---------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------

def parse_datetime_text(v: str, s: State):
    v = v.strip()
    if not v:
        return None
    try:
        if len(v) <= 10:
            return _dt.date.fromisoformat(v)
        d = _dt.datetime.fromisoformat(v.replace("Z", "+00:00").replace("/", "-"))
    except ValueError:
        try:
            return _dt.date.fromisoformat(v.replace("/", "-"))
        except ValueError:
            raise type_error(f"{short(v)} is not a date (use 2024-06-01 or 2024-06-01 10:30).",
                             f"{short(v)} 不是有效日期（请写成 2024-06-01 或 2024-06-01 10:30）。") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=state_tz(s))
    return d.astimezone(UTC)


def to_date_value(v, s: State, fn: str = ""):
    """Accept date / aware datetime / ISO text; blank -> None."""
    t = type(v)
    if t is _dt.datetime:
        return v if v.tzinfo is not None else as_datetime(v, s)
    if t is _dt.date:
        return v
    if v is None:
        return None
    if t is str:
        return parse_datetime_text(v, s)
    raise type_error(f"{fn + ': ' if fn else ''}expected a date, got {kind_of(v)} {short(v)}.",
                     f"{fn + '：' if fn else ''}需要日期，但得到的是{kind_zh(kind_of(v))} {short(v)}。")


def as_datetime(v, s: State) -> _dt.datetime:
    """A date becomes midnight of that day in the tenant timezone; a datetime without a
    timezone (e.g. the literal '2024-06-01 20:00') is tenant local time."""
    if type(v) is _dt.date:
        return _dt.datetime(v.year, v.month, v.day, tzinfo=state_tz(s)).astimezone(UTC)
    if v.tzinfo is None:
        return v.replace(tzinfo=state_tz(s)).astimezone(UTC)
    return v


def local_date(v, s: State) -> _dt.date:
    if type(v) is _dt.datetime:
        return as_datetime(v, s).astimezone(state_tz(s)).date()
    return v


def add_months(d: _dt.date, n: int) -> _dt.date:
    import calendar
    m = d.month - 1 + n
    y = d.year + m // 12
    m = m % 12 + 1
    if not 1 <= y <= 9999:
        raise limit_error("The date is out of range.", "日期超出范围。")
    return d.replace(year=y, month=m, day=min(d.day, calendar.monthrange(y, m)[1]))


# ---------------------------------------------------------------------------------------
# Operators (fast path in the compiler, slow paths here)
# ---------------------------------------------------------------------------------------

def _blank_for(other):
    t = type(other)
    if t is str:
        return ""
    if t is list:
        return []
    return 0


def op_add(a, b, s):
    if a is None:
        if b is None:
            return 0
        a = _blank_for(b)
    elif b is None:
        b = _blank_for(a)
    ta, tb = type(a), type(b)
    if (ta is _dt.date or ta is _dt.datetime) and is_number(b) and tb is not bool:
        return add_days(a, b, s)
    if (tb is _dt.date or tb is _dt.datetime) and is_number(a) and ta is not bool:
        return add_days(b, a, s)
    if is_number(a) and is_number(b):
        a, b = num_pair(a, b)
        return a + b
    if ta is str and tb is str:
        return check_str(a + b)
    if ta is list and tb is list:
        return check_list(a + b)
    raise type_error(f"Cannot add {kind_of(a)} and {kind_of(b)}"
                     + ("; use CONCAT(...) to join text." if "text" in (kind_of(a), kind_of(b)) else "."),
                     f"不能把{kind_zh(kind_of(a))}和{kind_zh(kind_of(b))}相加"
                     + ("；拼接文本请用 CONCAT(...)。" if "text" in (kind_of(a), kind_of(b)) else "。"))


def add_days(d, n, s):
    if type(d) is _dt.date:
        if n == int(n):
            return d + _dt.timedelta(days=int(n))
        d = as_datetime(d, s)
    return d + _dt.timedelta(days=float(n))


def op_sub(a, b, s):
    if a is None:
        a = 0 if b is None or is_number(b) else a
    if b is None:
        b = 0
    ta, tb = type(a), type(b)
    if (ta is _dt.date or ta is _dt.datetime) and is_number(b) and tb is not bool:
        return add_days(a, -b, s)
    if (ta is _dt.date or ta is _dt.datetime) and (tb is _dt.date or tb is _dt.datetime):
        if ta is _dt.date and tb is _dt.date:
            return (a - b).days
        return (as_datetime(a, s) - as_datetime(b, s)).total_seconds() / 86400
    if is_number(a) and is_number(b):
        a, b = num_pair(a, b)
        return a - b
    raise type_error(f"Cannot subtract {kind_of(b)} from {kind_of(a)}.",
                     f"不能用{kind_zh(kind_of(a))}减去{kind_zh(kind_of(b))}。")


def _nested_len(seq, budget: int) -> int:
    """Items in a list counting those of nested lists, stopping past ``budget``."""
    total, stack = 0, [seq]
    while stack and total <= budget:
        v = stack.pop()
        total += len(v)
        stack.extend(x for x in v if type(x) is list)
    return max(total, 1) if seq else 0


def op_mul(a, b, s):
    if a is None:
        a = 0
    if b is None:
        b = 0
    ta, tb = type(a), type(b)
    if ta is str or ta is list or tb is str or tb is list:
        seq, n = (a, b) if (ta is str or ta is list) else (b, a)
        if type(n) is not int and type(n) is not bool:
            raise type_error(f"Cannot multiply {kind_of(a)} by {kind_of(b)}.",
                             f"不能用{kind_zh(kind_of(a))}乘以{kind_zh(kind_of(b))}。")
        # For lists the size counts nested items too: [[0]*10**4]*10**4 is 10**8 elements.
        unit = len(seq) if type(seq) is str else _nested_len(seq, MAX_LIST + 1)
        if unit * max(int(n), 0) > (MAX_STRING if type(seq) is str else MAX_LIST):
            if type(seq) is str:
                raise limit_error(f"The text would be too long (over {MAX_STRING:,} characters).",
                                  f"文本将会过长（超过 {MAX_STRING:,} 个字符）。")
            raise limit_error(f"The list would be too long (over {MAX_LIST:,} items).",
                              f"列表将会过长（超过 {MAX_LIST:,} 项）。")
        return seq * n
    if is_number(a) and is_number(b):
        if ta is int and tb is int and a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise limit_error("The number is too large.", "数字太大。")
        a, b = num_pair(a, b)
        return finite(a * b)
    raise type_error(f"Cannot multiply {kind_of(a)} by {kind_of(b)}.",
                     f"不能用{kind_zh(kind_of(a))}乘以{kind_zh(kind_of(b))}。")


def _div_operands(a, b, name_en, name_zh):
    if a is None:
        a = 0
    if not (is_number(a) and (b is None or is_number(b))):
        raise type_error(f"Cannot {name_en} {kind_of(a)} by {kind_of(b)}.",
                         f"不能对{kind_zh(kind_of(a))}和{kind_zh(kind_of(b))}做{name_zh}。")
    return num_pair(a, b)


def op_div(a, b, s):
    a, b = _div_operands(a, b, "divide", "除法")
    if b is None or b == 0:
        return None
    return finite(a / b)


def op_floordiv(a, b, s):
    a, b = _div_operands(a, b, "divide", "整除")
    if b is None or b == 0:
        return None
    return finite(a // b)


def op_mod(a, b, s):
    # Text % ... (printf-style formatting) is deliberately not supported.
    a, b = _div_operands(a, b, "take the remainder of", "取余")
    if b is None or b == 0:
        return None
    return a % b


def op_pow(a, b, s):
    if a is None:
        a = 0
    if b is None:
        b = 0
    if not (is_number(a) and is_number(b)):
        raise type_error(f"Cannot raise {kind_of(a)} to the power of {kind_of(b)}.",
                         f"不能对{kind_zh(kind_of(a))}和{kind_zh(kind_of(b))}做乘方。")
    if abs(b) > MAX_EXPONENT:
        if not (a == 0 or a == 1 or (a == -1 and type(b) is int)):
            raise limit_error(f"The exponent is too large (limit {MAX_EXPONENT:,}).",
                              f"指数太大（上限 {MAX_EXPONENT:,}）。")
    if type(a) is int and type(b) is int and b > 0 and a.bit_length() * b > MAX_INT_BITS:
        raise limit_error("The result of the power is too large.", "乘方结果太大。")
    a, b = num_pair(a, b)
    try:
        r = a ** b
    except ZeroDivisionError:
        return None
    except OverflowError:
        raise limit_error("The result of the power is too large.", "乘方结果太大。") from None
    if type(r) is complex:
        raise type_error("The power has no real result (negative number to a fractional power).",
                         "乘方没有实数结果（负数的小数次方）。")
    return finite(r)


def _ord_fallback(a, b, s):
    """Called when a < b raised TypeError; returns a comparable pair or None."""
    if a is None or b is None:
        return None
    ta, tb = type(a), type(b)
    if (ta is _dt.date and tb is _dt.datetime) or (ta is _dt.datetime and tb is _dt.date):
        return as_datetime(a, s), as_datetime(b, s)
    if ta is _dt.datetime and tb is _dt.datetime:
        return as_datetime(a, s), as_datetime(b, s)
    if is_number(a) and is_number(b):
        return num_pair(a, b)
    return None


def cmp_lt(a, b, s):
    p = _ord_fallback(a, b, s)
    return p is not None and p[0] < p[1]


def cmp_le(a, b, s):
    p = _ord_fallback(a, b, s)
    return p is not None and p[0] <= p[1]


def cmp_gt(a, b, s):
    p = _ord_fallback(a, b, s)
    return p is not None and p[0] > p[1]


def cmp_ge(a, b, s):
    p = _ord_fallback(a, b, s)
    return p is not None and p[0] >= p[1]


def values_equal(a, b) -> bool:
    if a is None or b is None or a == "" or b == "" or a == [] or b == []:
        return is_blank(a) and is_blank(b)
    try:
        return bool(a == b)
    except Exception:
        return False


def contains(container, item) -> bool:
    """`item in container` for lists (membership) and text (substring); never raises."""
    t = type(container)
    if container is None:
        return False
    if t is str:
        if item is None:
            return False
        if type(item) is not str:
            item = to_text(item)
        return item in container
    if t is list or t is tuple or t is frozenset:
        try:
            return item in container
        except TypeError:
            return any(values_equal(item, x) for x in container)
    return False


def index_value(v, k):
    """`v[k]`: list/text index (negative from the end) or dict key; out of range -> blank."""
    if v is None or k is None:
        return None
    tv, tk = type(v), type(k)
    if tv is dict:
        if tk is not str:
            return None
        if "__" in k:
            raise ExpressionError("not_allowed", "Keys containing '__' are not allowed.",
                                  "不允许使用包含“__”的键。")
        return v.get(k)
    if tv is list or tv is str:
        if tk is bool or not is_number(k):
            raise type_error(f"A list or text position must be a whole number, not {kind_of(k)}.",
                             f"列表或文本的位置必须是整数，而不是{kind_zh(kind_of(k))}。")
        if k != int(k):
            raise type_error("A position must be a whole number.", "位置必须是整数。")
        try:
            return v[int(k)]
        except IndexError:
            return None
    raise type_error(f"Cannot take an item of {kind_of(v)}.", f"不能从{kind_zh(kind_of(v))}中取元素。")


def walk_path(v, keys, s):
    """Follow field keys through link dicts and lists (sub-tables / many-links), flattening."""
    for k in keys:
        if v is None:
            return None
        t = type(v)
        if t is dict:
            v = v.get(k)
        elif t is list:
            charge(s, len(v))
            out = []
            for item in v:
                if type(item) is dict:
                    x = item.get(k)
                    if type(x) is list:
                        out.extend(x)
                    else:
                        out.append(x)
                else:                       # keep positions: a blank row gives a blank
                    out.append(None)
            v = out
        else:
            return None
    return v
