"""Number-like field types: number, currency, percent, autonumber."""
from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from sqlalchemy import Float, Numeric, String

from .base import EMPTY_OPS, Ctx, FieldSpec, FieldType, FieldValueError
from .registry import register

NUM_OPS = ("=", "!=", "<", "<=", ">", ">=", "between", "in", "not_in", *EMPTY_OPS)
_STRIP = re.compile(r"[,\s¥$€£￥]")


def parse_number(value, *, percent: bool = False) -> Decimal:
    if isinstance(value, bool):
        raise FieldValueError("must be a number, not true/false", "应为数字,而不是是/否")
    if isinstance(value, (int, Decimal)):
        d = Decimal(value)
    elif isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise FieldValueError("must be a finite number", "应为有限的数字")
        d = Decimal(repr(value))
    elif isinstance(value, str):
        s = _STRIP.sub("", value)
        is_pct = s.endswith("%")
        if is_pct:
            s = s[:-1]
        try:
            d = Decimal(s)
        except InvalidOperation:
            raise FieldValueError(f"{value!r} is not a number", f"{value!r} 不是数字") from None
        if not d.is_finite():
            raise FieldValueError("must be a finite number", "应为有限的数字")
        if is_pct and percent:
            d = d / 100
    else:
        raise FieldValueError("must be a number", "应为数字")
    if abs(d) >= _LIMIT:
        raise FieldValueError("is too large (at most 15 digits)", "数值过大(最多 15 位)")
    return d


_LIMIT = Decimal("1e15")
_LIMIT_INT = 10 ** 15


class NumericBase(FieldType):
    operators = NUM_OPS
    options_schema = {
        "type": "object", "additionalProperties": False,
        "properties": {
            "decimals": {"type": "integer", "minimum": 0, "maximum": 8},
            "min": {"type": "number"},
            "max": {"type": "number"},
        },
    }
    percent = False
    default_decimals = 2

    def decimals(self, spec):
        return spec.options.get("decimals", self.default_decimals)

    def to_storage(self, value, spec: FieldSpec, ctx: Ctx):
        if value is None or value == "":
            return None
        d = parse_number(value, percent=self.percent)
        lo, hi = spec.options.get("min"), spec.options.get("max")
        if lo is not None and d < Decimal(str(lo)):
            raise FieldValueError(f"must be at least {lo}", f"不能小于 {lo}")
        if hi is not None and d > Decimal(str(hi)):
            raise FieldValueError(f"must be at most {hi}", f"不能大于 {hi}")
        return self.store(d, spec)

    def store(self, d: Decimal, spec):
        return float(d)

    def writer(self, spec, ctx):
        """``to_storage`` with the field's options read once (the same checks and results)."""
        if type(self).to_storage is not NumericBase.to_storage:
            return super().writer(spec, ctx)
        lo, hi = spec.options.get("min"), spec.options.get("max")
        lo_d = None if lo is None else Decimal(str(lo))
        hi_d = None if hi is None else Decimal(str(hi))
        percent, store = self.percent, self.store
        plain = type(self).store is NumericBase.store and not percent and lo is None and hi is None
        quantum = None  # a currency without min/max: rounded straight away
        if type(self).store is Currency.store:
            q = Decimal(1).scaleb(-self.decimals(spec))
            store = lambda d, _spec: d.quantize(q, rounding=ROUND_HALF_UP)  # noqa: E731
            if lo is None and hi is None:
                quantum = q

        def write(value):
            if value is None or value == "":
                return None
            tv = type(value)
            if tv is float and -1e15 < value < 1e15:  # finite and in range: parse_number's checks
                if plain:
                    return value  # float(Decimal(repr(x))) is x for a finite float
                d = Decimal(repr(value))
            elif tv is int and -_LIMIT_INT < value < _LIMIT_INT:
                d = Decimal(value)
            else:
                d = parse_number(value, percent=percent)
            if quantum is not None:
                return d.quantize(quantum, rounding=ROUND_HALF_UP)
            if lo_d is not None and d < lo_d:
                raise FieldValueError(f"must be at least {lo}", f"不能小于 {lo}")
            if hi_d is not None and d > hi_d:
                raise FieldValueError(f"must be at most {hi}", f"不能大于 {hi}")
            return store(d, spec)
        return write

    def from_storage(self, value, spec, ctx):
        if value is None:
            return None
        if self.decimals(spec) == 0 and float(value).is_integer():
            return int(value)
        return float(value)

    def reader(self, spec, ctx):
        if self.decimals(spec) == 0:
            return super().reader(spec, ctx)
        return lambda v: None if v is None else float(v)


@register
class Number(NumericBase):
    name = "number"
    label = {"zh-CN": "数字", "en": "Number"}
    default_decimals = 8

    def column_type(self, spec):
        return Float()


@register
class Currency(NumericBase):
    """Money: a decimal, exact to its places (2 by default); never a binary float in the database."""

    name = "currency"
    label = {"zh-CN": "金额", "en": "Currency"}
    options_schema = {
        "type": "object", "additionalProperties": False,
        "properties": {
            "decimals": {"type": "integer", "minimum": 0, "maximum": 4},
            "symbol": {"type": "string", "maxLength": 8},
            "min": {"type": "number"},
            "max": {"type": "number"},
        },
    }

    def column_type(self, spec):
        return Numeric(18, self.decimals(spec), asdecimal=True)

    def store(self, d, spec):
        q = Decimal(1).scaleb(-self.decimals(spec))
        return d.quantize(q, rounding=ROUND_HALF_UP)

    def filter_value(self, value, spec, ctx):
        v = super().filter_value(value, spec, ctx)
        return v


@register
class Percent(NumericBase):
    """Stored as a fraction (0.25); input accepts 0.25 or "25%"."""

    name = "percent"
    label = {"zh-CN": "百分比", "en": "Percent"}
    percent = True
    default_decimals = 4

    def column_type(self, spec):
        return Float()


SEQ_RE = re.compile(r"\{seq(?::0?(\d+))?\}")
DATE_TOKENS = {"YYYYMMDD": "%Y%m%d", "YYMMDD": "%y%m%d", "YYYYMM": "%Y%m", "YYYY": "%Y", "YY": "%y", "MM": "%m", "DD": "%d"}
TOKEN_RE = re.compile(r"\{(YYYYMMDD|YYMMDD|YYYYMM|YYYY|YY|MM|DD)\}")


def render_autonumber(pattern: str, when_local: datetime, seq: int) -> str:
    text = TOKEN_RE.sub(lambda m: when_local.strftime(DATE_TOKENS[m.group(1)]), pattern)

    def _seq(m):
        width = int(m.group(1) or 0)
        return str(seq).zfill(width)

    return SEQ_RE.sub(_seq, text)


def autonumber_renderer(pattern: str, when_local: datetime):
    """seq -> render_autonumber(pattern, when_local, seq), with the date part worked out once."""
    text = TOKEN_RE.sub(lambda m: when_local.strftime(DATE_TOKENS[m.group(1)]), pattern)
    parts = SEQ_RE.split(text)  # [text, width, text, width, ..., text]
    if len(parts) != 3:
        return lambda seq: render_autonumber(pattern, when_local, seq)
    head, width, tail = parts[0], int(parts[1] or 0), parts[2]
    return lambda seq: f"{head}{str(seq).zfill(width)}{tail}"


def autonumber_parts(pattern: str, when_local: datetime):
    """(head, width, tail) such that the number ``seq`` renders as head + str(seq).zfill(width)
    + tail (as ``autonumber_renderer`` does), or None for a pattern with more than one {seq}."""
    text = TOKEN_RE.sub(lambda m: when_local.strftime(DATE_TOKENS[m.group(1)]), pattern)
    parts = SEQ_RE.split(text)
    if len(parts) != 3:
        return None
    return parts[0], int(parts[1] or 0), parts[2]


def autonumber_period(pattern: str, when_local: datetime) -> str:
    """The part of the pattern that restarts the sequence when it changes (the date part)."""
    return "".join(when_local.strftime(DATE_TOKENS[t]) for t in TOKEN_RE.findall(pattern)) or "-"


@register
class Autonumber(FieldType):
    """Numbers like SO20261121-00042: the sequence restarts when the date part changes and is
    allocated from a counter row inside the insert's transaction, so it never repeats."""

    name = "autonumber"
    label = {"zh-CN": "自动编号", "en": "Autonumber"}
    computed = True
    searchable = True
    operators = ("=", "!=", "contains", "starts_with", "in", "not_in", "<", ">", *EMPTY_OPS)
    options_schema = {
        "type": "object", "additionalProperties": False,
        "properties": {
            "pattern": {
                "type": "string", "maxLength": 64,
                "pattern": "^[^{}]*(\\{(YYYYMMDD|YYMMDD|YYYYMM|YYYY|YY|MM|DD|seq(:0?[1-9][0-9]?)?)\\}[^{}]*)*$",
                "description": "text with {YYYYMMDD} {YYYY} {MM} {DD} and {seq} or {seq:05} such as SO{YYYYMMDD}{seq:05}",
            }
        },
    }

    def pattern(self, spec) -> str:
        return spec.options.get("pattern") or "{seq}"

    def check_definition(self, spec, table_fields):
        if "{seq" not in self.pattern(spec):
            return [("/options/pattern", "the pattern needs {seq} so that numbers never repeat", "编号规则必须包含 {seq},否则编号会重复")]
        return []

    def column_type(self, spec):
        return String(100)

    def to_storage(self, value, spec, ctx):
        if value is None:
            return None
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise FieldValueError("must be text", "应为文本")
        return str(value)

    def filter(self, col, op, value, spec, ctx):
        from .text import TEXT_OPS, TextType

        if op in ("contains", "starts_with"):
            return TextType.filter(self, col, op, value, spec, ctx)
        return super().filter(col, op, value, spec, ctx)

    @staticmethod
    def local_now(ctx: Ctx) -> datetime:
        now = ctx.now or datetime.now(timezone.utc).replace(tzinfo=None)
        return now.replace(tzinfo=timezone.utc).astimezone(ctx.tz)
